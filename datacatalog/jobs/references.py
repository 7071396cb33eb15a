"""Input references: which strings in a job's inputs and data name files or references.

A file is named by a file UUID, an absolute path or a storage URI; a reference by a
reference UUID or a web/DOI address. The job links the UUIDs they resolve to as
``acted_on`` (files) and ``acted_using`` (references).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from datacatalog.errors import InvalidRequestError
from datacatalog.identifiers import file_uuid, is_uuid, kind_of, require_kind, typed_uuid

FILE_SCHEMES = ("agave://", "file://", "s3://", "gs://", "memory://", "sftp://")
REFERENCE_SCHEMES = ("http://", "https://", "ftp://", "doi:")


def is_file_reference(value: str) -> bool:
    """True for strings naming a file: a file UUID, an absolute path, a storage URI."""
    if is_uuid(value):
        return kind_of(value) == "file"
    return value.startswith("/") or value.startswith(FILE_SCHEMES)


def is_reference(value: str) -> bool:
    """True for strings naming a reference: a reference UUID or a web/DOI address."""
    if is_uuid(value):
        return kind_of(value) == "reference"
    return value.startswith(REFERENCE_SCHEMES)


def file_reference_uuid(value: str) -> str:
    """The file UUID a file reference names (UUIDs pass through)."""
    if is_uuid(value):
        return require_kind(value, "file", what="input")
    if "://" in value:
        rest = value.split("://", 1)[1]
        value = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return file_uuid(value)


def reference_uuid(value: str) -> str:
    """The reference UUID a reference names (UUIDs pass through)."""
    if is_uuid(value):
        return require_kind(value, "reference", what="reference")
    return typed_uuid(value, "reference")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def references_in(
    data: Mapping[str, Any] | None, inputs: Sequence[Any] | None = None, *, store: str = "files"
) -> list[str]:
    """Strings in ``inputs``, ``data["inputs"]`` and ``data["parameters"]`` that name files
    (``store="files"``) or references (``store="references"``), in order, without repeats.

    Values of any JSON type are tolerated; only strings can be references.
    """
    if store not in ("files", "references"):
        raise InvalidRequestError(f"store must be 'files' or 'references', not {store!r}")
    test = is_file_reference if store == "files" else is_reference
    sources: list[Any] = [inputs or []]
    if data:
        sources += [data.get("inputs"), data.get("parameters")]
    seen: dict[str, None] = {}
    for source in sources:
        for text in _strings(source):
            if test(text):
                seen.setdefault(text, None)
    return list(seen)
