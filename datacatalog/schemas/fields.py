"""The top-level fields a kind's schema declares, and a record's values read by them.

A value class over stored documents (:class:`~datacatalog.indexing.FileRecord`) lists its
fields for the type checker, and nothing more: which field a document must have, which
is a list and which a date is read here from the kind's schema, so that converting a
document to the record and the record to JSON follows the schema instead of restating
it. Fields starting with ``_`` (``_properties``, ``_visible``) are the store's
bookkeeping, and no record carries them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from datacatalog.schemas.loading import document_schema, schema_types


@dataclass(frozen=True)
class Field:
    """One top-level field of a kind, as its schema declares it.

    Attributes:
        name: The field's name.
        required: Every document has it.
        array: Its value is a list (read as ``[]`` when absent or null).
        date_time: Its value is a date (a ``datetime``, written out as ISO 8601).
    """

    name: str
    required: bool
    array: bool
    date_time: bool

    def read(self, document: Mapping[str, Any]) -> Any:
        """This field's value in ``document``: a new list for an array, None if absent.

        Raises:
            KeyError: A required field that is not an array is missing.
        """
        if self.array:
            return list(document.get(self.name) or [])
        return document[self.name] if self.required else document.get(self.name)

    def json(self, value: Any) -> Any:
        """``value`` JSON-ready: a date as ISO 8601, a list copied."""
        if self.array:
            return list(value)
        if self.date_time and isinstance(value, datetime):
            return value.isoformat()
        return value


@cache
def fields_of(kind: str) -> dict[str, Field]:
    """The top-level fields of ``kind`` but the bookkeeping ones, by name, in schema order.

    Raises:
        InvalidRequestError: ``kind`` has no schema.
    """
    schema = document_schema(kind)
    required = set(schema.get("required", ()))
    found: dict[str, Field] = {}
    for name, sub in schema.get("properties", {}).items():
        if name.startswith("_"):
            continue
        parts = list(_parts(sub))
        found[name] = Field(
            name=name,
            required=name in required,
            array=any("array" in schema_types(part) for part in parts),
            date_time=any(part.get("format") == "date-time" for part in parts),
        )
    return found


def record_values(kind: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a record of ``kind`` in a stored document, by field name."""
    return {name: field.read(document) for name, field in fields_of(kind).items()}


def json_values(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A record's values JSON-ready, in the order given.

    Raises:
        KeyError: A value names no field of ``kind``.
    """
    fields = fields_of(kind)
    return {name: fields[name].json(value) for name, value in values.items()}


def _parts(schema: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The schema and every schema it is the ``allOf`` of (an inlined ``$ref`` is one)."""
    yield schema
    for part in schema.get("allOf", ()):
        yield from _parts(part)
