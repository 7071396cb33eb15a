"""Parsing command-line values: JSON options and JSON/YAML documents from files.

A malformed value is refused before the catalog is opened, so nothing is
written; the error names the option or the file and exits with the
invalid-request code (2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from datacatalog.errors import InvalidRequestError
from datacatalog.freeform import bounded_parse, parse_json

if TYPE_CHECKING:
    # Imported by the one function reading a YAML file, not by every command.
    import yaml


def json_object(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> dict[str, Any] | None:
    """Option callback: parse a JSON object (``--data '{"k": 1}'``).

    Raises:
        InvalidRequestError: The value is not valid JSON or not an object; the
            message names the option.
    """
    if value is None:
        return None
    where = _option_name(param)
    try:
        parsed = parse_json(value, where=where)
    except InvalidRequestError as exc:
        raise InvalidRequestError(exc.message, option=where) from None
    if not isinstance(parsed, dict):
        raise InvalidRequestError(
            f"{where} must be a JSON object, not {type(parsed).__name__}", option=where
        )
    return parsed


def _option_name(param: click.Parameter) -> str:
    longest = max(param.opts, key=len) if param.opts else (param.name or "value")
    return longest


def read_document(path: Path) -> Any:
    """Read a JSON (``.json``) or YAML file.

    Raises:
        InvalidRequestError: The file cannot be read or parsed.
    """
    import yaml

    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc}", path=str(path)) from exc
    try:
        if path.suffix.lower() == ".json":
            return parse_json(content, where=str(path))
        return bounded_parse(lambda: yaml.safe_load(content), where=str(path))
    except InvalidRequestError as exc:
        raise InvalidRequestError(exc.message, path=str(path)) from None
    except yaml.YAMLError as exc:
        raise InvalidRequestError(
            f"{path} is not valid YAML: {_yaml_problem(exc)}", path=str(path)
        ) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, in one line (PyYAML's own text quotes the source)."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        what = f"{exc.context}, {exc.problem}" if exc.context else exc.problem
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{what}{where}"
    return " ".join(str(exc).split())
