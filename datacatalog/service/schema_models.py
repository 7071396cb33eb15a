"""Response models built from the bundled JSON Schemas of stored documents.

A stored document kind's schema (``schemas/<kind>.json``) already lists the fields a
record has and their JSON types, so the model the service documents for it is derived
from there instead of being written out once more: :func:`model_from_schema`.

Only the JSON types are carried over (string, integer, number, boolean, object, array
of them; ``null`` where allowed), not the patterns and bounds a write is checked
against: a response is what the store already holds, and the OpenAPI document keeps
describing it the way it always has. The document's bookkeeping fields (those starting
with ``_``) are left out. A field the schema does not require is ``null`` in a response
when the document lacks it, unless it is an array (an empty one then).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from datacatalog.schemas.loading import document_schema

_SCALARS: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "object": dict[str, Any],
}


def model_from_schema(
    kind: str,
    *,
    name: str,
    doc: str,
    order: type | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> type[BaseModel]:
    """A pydantic model of the public fields of a ``kind`` document.

    Args:
        kind: The document kind (``file``, ...), one of :data:`datacatalog.schemas.KINDS`.
        name: The model's name, which is its name in the OpenAPI document.
        doc: The model's description.
        order: A dataclass whose field order the model follows (the order of the record
            the route returns); fields it lacks come after, in the schema's order.
        descriptions: A description per field, for the OpenAPI document.

    Returns:
        A model that accepts extra fields (a newer core may add some).
    """
    schema = document_schema(kind)
    required = set(schema.get("required", ()))
    public = {k: v for k, v in schema["properties"].items() if not k.startswith("_")}
    notes = descriptions or {}
    fields: dict[str, Any] = {
        field: (
            _python_type(public[field], required=field in required),
            Field(description=notes.get(field)),
        )
        for field in _ordered(public, order)
    }
    return create_model(name, __config__=ConfigDict(extra="allow"), __doc__=doc, **fields)


def _ordered(public: Mapping[str, Any], order: type | None) -> list[str]:
    first = [f.name for f in dataclasses.fields(order)] if order is not None else []
    return [f for f in first if f in public] + [f for f in public if f not in first]


def _python_type(schema: Mapping[str, Any], *, required: bool) -> Any:
    """The Python type of a (inlined) property schema, ``| None`` where it may be null."""
    types = _json_types(schema)
    nullable = "null" in types or (not required and "array" not in types)
    kinds = sorted(types - {"null"})
    if len(kinds) != 1:
        raise ValueError(f"a property of JSON types {sorted(types)} has no one Python type")
    if kinds[0] == "array":
        python: Any = list[_python_type(schema.get("items", {}), required=True)]  # type: ignore[misc]
    else:
        python = _SCALARS[kinds[0]]
    return python | None if nullable else python


def _json_types(schema: Mapping[str, Any]) -> set[str]:
    """The JSON types a schema allows, looking into ``allOf`` (an inlined ``$ref``)."""
    declared = schema.get("type")
    if declared is not None:
        return {declared} if isinstance(declared, str) else set(declared)
    return _intersect(_json_types(part) for part in schema.get("allOf", ()))


def _intersect(sets: Iterable[set[str]]) -> set[str]:
    found: set[str] | None = None
    for types in sets:
        if types:
            found = types if found is None else found & types
    return found or set()
