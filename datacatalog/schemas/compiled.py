"""Compiled validators: each schema is compiled once (``jsonschema-rs``) and reused.

Three shapes of write are validated, each with one call of :func:`check` per written
document:

* a whole document (an insert or a replace): :func:`document_validator`;
* one value for one dotted field: :func:`fragment_validator`;
* a whole update (``$set``, ``$setOnInsert``, ``$push``, ``$addToSet``): the schemas
  of every field it writes are put together into one schema of the update itself,
  compiled once per *shape* (which operator writes which fields, and whether as
  ``$each`` lists), see :func:`update_validator`. An indexing run writes thousands of
  file records of the same shape, so each is checked in one call instead of one per
  field.

The compiled validators say only *whether* a value is valid; the error of a refused
one comes from :mod:`datacatalog.schemas.messages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from datacatalog.schemas import loading

if TYPE_CHECKING:
    import jsonschema_rs

Shape = tuple[tuple[str, str, str], ...]
"""``(operator, field path, mode)`` of every validated part of an update, in the
update's order (the code that builds an update always builds it in the same order).

The mode is ``value`` (``$set``/``$setOnInsert``), ``item`` (one pushed element) or
``each`` (a ``{"$each": [...]}`` list of pushed elements).
"""

FRAGMENT_OPERATORS = ("$set", "$setOnInsert")
"""Update operators whose values are validated against their field's schema."""

ITEM_OPERATORS = ("$push", "$addToSet")
"""Update operators whose values are validated as items of their (array) field."""

# The compiled date-time format accepts a leap second (hh:mm:60), which RFC 3339
# allows but Python's datetime (and so the precise path) does not: the seconds must
# start with 0-5, so both paths accept exactly the same timestamps.
_NO_LEAP_SECOND = "^.{17}[0-5]"


def check(validator: jsonschema_rs.Validator, instance: Any) -> bool:
    """Run one compiled validation (every write's validation goes through here)."""
    return bool(validator.is_valid(instance))


@cache
def document_validator(kind: str) -> jsonschema_rs.Validator:
    """The compiled validator of whole ``kind`` documents."""
    return _compile(loading.document_schema(kind))


@lru_cache(maxsize=1024)
def fragment_validator(kind: str, field_path: str, item: bool) -> jsonschema_rs.Validator:
    """The compiled validator of a value for ``field_path`` (an item of it, with ``item``).

    Raises:
        InvalidRequestError: The field does not exist in a closed schema.
    """
    return _compile(loading.fragment_schema(kind, field_path, item))


def shape_of(update: Mapping[str, Mapping[str, Any]]) -> Shape:
    """The :data:`Shape` of an update (its validated operators only)."""
    parts: list[tuple[str, str, str]] = []
    for op in FRAGMENT_OPERATORS:
        parts.extend((op, path, "value") for path in update.get(op, ()))
    for op in ITEM_OPERATORS:
        for path, value in update.get(op, {}).items():
            each = isinstance(value, dict) and "$each" in value
            parts.append((op, path, "each" if each else "item"))
    return tuple(parts)


@lru_cache(maxsize=1024)
def update_validator(kind: str, shape: Shape) -> jsonschema_rs.Validator:
    """The compiled validator of updates of ``kind`` that have this ``shape``.

    Raises:
        InvalidRequestError: A field of the shape does not exist in a closed schema.
    """
    operators: dict[str, dict[str, Any]] = {}
    for op, path, mode in shape:
        field = loading.fragment_schema(kind, path, mode != "value")
        if mode == "each":
            field = {
                "type": "object",
                "properties": {"$each": {"type": "array", "items": field}},
            }
        operators.setdefault(op, {"type": "object", "properties": {}})["properties"][path] = field
    return _compile({"type": "object", "properties": operators})


def _compile(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    # Imported on the first write: a command that only reads never loads it.
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(_without_leap_seconds(schema), validate_formats=True)


def _without_leap_seconds(node: Any) -> Any:
    """A copy of ``node`` whose ``date-time`` formats also refuse a leap second."""
    if isinstance(node, list):
        return [_without_leap_seconds(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _without_leap_seconds(value) for key, value in node.items()}
    if out.get("format") == "date-time":
        if "pattern" in out:
            return {"allOf": [out, {"pattern": _NO_LEAP_SECOND}]}
        out["pattern"] = _NO_LEAP_SECOND
    return out
