"""Typed UUID5 identifiers, compatible with catalogs made by the SD2E data catalog.

A *typed UUID* is a UUID5 whose first three hex digits are replaced by a prefix
naming what it identifies, so the kind of any identifier can be read from it::

    typed_uuid("measurement.tacc.0x00000000", "measurement")
    == "10452d7e-7f0a-59df-a1a3-c5bb44e07f2f"
        ^^^ 104 = measurement

Identifiers are pure functions of what they identify:

* metadata entity: ``typed_uuid(canonical id, kind)``
* pipeline: ``typed_uuid(id + ":" + canonical_json(components), "pipeline")``
* job: ``typed_uuid(":".join(sorted([pipeline_uuid, repr(sorted(child_of)),
  canonical_json(data)])), "pipelinejob")``
* file: ``typed_uuid(normalized absolute path, "file")``
"""

from __future__ import annotations

import json
import posixpath
import re
import uuid
from collections.abc import Iterable
from typing import Any

from datacatalog.errors import InvalidRequestError

DEFAULT_NAMESPACE_DOMAIN = "sd2e.org"

KIND_PREFIXES: dict[str, str] = {
    "generic": "100",
    "challenge_problem": "101",
    "experiment": "102",
    "sample": "103",
    "measurement": "104",
    "file": "105",
    "pipeline": "106",
    "pipelinejob": "107",
    "pipelinejob_event": "108",
    "reference": "109",
    "product": "110",
    "upload": "111",
    "experiment_design": "114",
    "fixity": "116",
    "process": "117",
}
PREFIX_KINDS: dict[str, str] = {prefix: kind for kind, prefix in KIND_PREFIXES.items()}

# Used with fullmatch: a "$" anchor would also accept a trailing newline.
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def namespace(domain: str = DEFAULT_NAMESPACE_DOMAIN) -> uuid.UUID:
    """The UUID5 namespace: ``uuid3(NAMESPACE_DNS, domain)``."""
    return uuid.uuid3(uuid.NAMESPACE_DNS, domain)


_DEFAULT_NAMESPACE = namespace()


def typed_uuid(text: str, kind: str, *, domain: str | None = None) -> str:
    """Return the typed UUID5 of ``text`` for ``kind``.

    Args:
        text: The string identified (a canonical id, a path, a serialization).
        kind: One of :data:`KIND_PREFIXES`.
        domain: Namespace domain; the default keeps SD2E compatibility.
    """
    if kind not in KIND_PREFIXES:
        raise InvalidRequestError(
            f"unknown identifier kind {kind!r}; known kinds: {', '.join(KIND_PREFIXES)}",
            kind=kind,
        )
    if not isinstance(text, str):
        raise InvalidRequestError(f"identifier text must be a string, not {type(text).__name__}")
    ns = _DEFAULT_NAMESPACE if domain is None else namespace(domain)
    value = str(uuid.uuid5(ns, text))
    return KIND_PREFIXES[kind] + value[3:]


def is_uuid(value: object) -> bool:
    """True if ``value`` is a lowercase 36-character UUID string."""
    return isinstance(value, str) and _UUID_TEXT.fullmatch(value) is not None


def uuid_kind(value: object) -> str:
    """Return the kind of a typed UUID; raise if ``value`` is not one."""
    if not is_uuid(value):
        raise InvalidRequestError(f"{value!r} is not a typed UUID", value=str(value))
    assert isinstance(value, str)
    try:
        return PREFIX_KINDS[value[:3]]
    except KeyError:
        raise InvalidRequestError(
            f"{value!r} is a UUID without a known kind prefix", value=value
        ) from None


def kind_of(value: object) -> str | None:
    """Return the kind of ``value`` if it is a typed UUID, else None."""
    try:
        return uuid_kind(value)
    except InvalidRequestError:
        return None


def require_kind(value: object, kind: str, *, what: str = "identifier") -> str:
    """Return ``value`` if it is a typed UUID of ``kind``; raise naming it otherwise."""
    actual = uuid_kind(value)
    if actual != kind:
        raise InvalidRequestError(
            f"{what} {value!r} is a {actual} UUID, expected a {kind} UUID",
            value=str(value),
            expected=kind,
            actual=actual,
        )
    assert isinstance(value, str)
    return value


def canonical_json(value: Any) -> str:
    """Serialize ``value`` as canonical JSON (sorted keys, no spaces).

    Raises:
        InvalidRequestError: ``value`` holds something JSON cannot represent.
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"value is not JSON-serializable: {exc}") from exc


def pipeline_uuid(pipeline_id: str, components: list[Any]) -> str:
    """The UUID of a pipeline: its id and its exact component list."""
    if not isinstance(pipeline_id, str):
        raise InvalidRequestError(
            f"a pipeline id must be a string, not {type(pipeline_id).__name__}"
        )
    if not isinstance(components, list):
        raise InvalidRequestError(
            f"pipeline components must be a list, not {type(components).__name__}"
        )
    return typed_uuid(pipeline_id + ":" + canonical_json(components), "pipeline")


def uuid_strings(child_of: Iterable[str]) -> list[str]:
    """``child_of`` as a list of strings; a bare string (whose characters would be
    taken for UUIDs) or a non-string item is refused."""
    if isinstance(child_of, (str, bytes)):
        raise InvalidRequestError("child_of must be a list of UUIDs, not a single string")
    items = list(child_of)
    if not all(isinstance(c, str) for c in items):
        raise InvalidRequestError("child_of must be a list of UUID strings")
    return items


def child_of_literal(child_of: Iterable[str]) -> str:
    """The sorted ``child_of`` list written as a Python list literal of quoted strings."""
    return repr(sorted(uuid_strings(child_of)))


def job_uuid(pipeline_uuid: str, child_of: Iterable[str], data: dict[str, Any] | None) -> str:
    """The UUID of a job: what is computed (pipeline, upstream metadata, parameters)."""
    if not isinstance(pipeline_uuid, str):
        raise InvalidRequestError(
            f"a pipeline UUID must be a string, not {type(pipeline_uuid).__name__}"
        )
    parts = sorted(
        [pipeline_uuid, child_of_literal(child_of), canonical_json({} if data is None else data)]
    )
    return typed_uuid(":".join(parts), "pipelinejob")


def normalize_path(path: str) -> str:
    """Normalize an absolute catalog path; reject relative paths and ``..`` components."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidRequestError(f"path {path!r} must be absolute", path=str(path))
    if "\x00" in path:
        raise InvalidRequestError("path contains a NUL character", path=path)
    if ".." in path.split("/"):
        raise InvalidRequestError(f"path {path!r} must not contain '..'", path=path)
    return posixpath.normpath(path)


def file_uuid(path: str) -> str:
    """The UUID of a file record: its normalized absolute path."""
    return typed_uuid(normalize_path(path), "file")


def random_uuid(kind: str) -> str:
    """A random typed UUID (events, audit records)."""
    return typed_uuid(str(uuid.uuid4()), kind)
