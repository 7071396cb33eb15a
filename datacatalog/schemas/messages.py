"""The precise error path: which field of a refused document is wrong, and why.

The compiled validators (:mod:`datacatalog.schemas.compiled`) only answer *whether*
a document is valid. When one is not, the ``jsonschema`` package validates it again
to pick the most relevant error (``best_match``) and phrase it as the catalog has
always phrased it, e.g. ``job document is invalid at history/3/name: 'bogus' is not
one of [...]``. It is imported on first use, so a command that writes nothing
invalid never loads it.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from datacatalog.errors import InvalidRequestError
from datacatalog.schemas import loading

if TYPE_CHECKING:
    from jsonschema import (  # type: ignore[import-untyped, unused-ignore]
        Draft202012Validator,
        FormatChecker,
    )
    from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]
        ValidationError,
    )

MAX_REASON = 500
"""Longest reason kept in an error message (longer ones are cut, with a marker)."""

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
    r"(?:[Zz]|[+-](\d{2}):(\d{2}))$",
    re.ASCII,
)


def is_date_time(instance: object) -> bool:
    """RFC 3339 ``date-time``: a full date and time with an offset (no leap second)."""
    if not isinstance(instance, str):
        return True
    match = _RFC3339.match(instance)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    offset_hour, offset_minute = (int(part or 0) for part in match.groups()[6:])
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return offset_hour < 24 and offset_minute < 60


def format_checker() -> FormatChecker:
    """A format checker that also checks ``date-time`` (without optional dependencies)."""
    from jsonschema import FormatChecker

    checker = FormatChecker()
    checker.checks("date-time")(is_date_time)
    return checker


@cache
def validator_for(kind: str) -> Draft202012Validator:
    """The (cached) ``jsonschema`` validator of ``kind``'s whole documents."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(loading.document_schema(kind), format_checker=format_checker())


@lru_cache(maxsize=1024)
def _fragment_validator(kind: str, field_path: str, item: bool) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    schema = loading.fragment_schema(kind, field_path, item)
    return Draft202012Validator(schema, format_checker=format_checker())


def document_error(kind: str, instance: Any) -> InvalidRequestError | None:
    """The error naming what is wrong with a whole document (None if nothing is)."""
    from jsonschema.exceptions import best_match

    error = best_match(validator_for(kind).iter_errors(instance))
    return None if error is None else invalid(kind, (), error)


def fragment_error(
    kind: str, field_path: str, instance: Any, *, item: bool
) -> InvalidRequestError | None:
    """The error naming what is wrong with a value for one field (None if nothing is)."""
    from jsonschema.exceptions import best_match

    validator = _fragment_validator(kind, field_path, item)
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    prefix = tuple(field_path.split(".")) + (("-",) if item else ())
    return invalid(kind, prefix, error)


def invalid(kind: str, prefix: tuple[str, ...], error: ValidationError) -> InvalidRequestError:
    """The catalog's error for one ``jsonschema`` error found under ``prefix``."""
    return refusal(kind, [*prefix, *(str(part) for part in error.absolute_path)], error.message)


def refusal(kind: str, path_parts: list[str], reason: str) -> InvalidRequestError:
    """``<kind> document is invalid at <path>: <reason>``, with ``details``."""
    path = "/".join(path_parts)
    if len(reason) > MAX_REASON:
        reason = reason[:MAX_REASON] + "... (truncated)"
    where = f" at {path}" if path else ""
    return InvalidRequestError(
        f"{kind} document is invalid{where}: {reason}", kind=kind, path=path, reason=reason
    )
