"""The JSON Schemas of stored documents, and validating writes against them.

Every kind of document the store writes (a job, a file record, a pipeline, ...) has a
JSON Schema (draft 2020-12) in the top-level ``schemas/`` folder, one file per kind,
plus ``definitions.json`` for what they share (typed UUIDs, ``_properties``, the job
state and event enums); :mod:`~datacatalog.schemas.loading` reads them.

Schemas are data, validated as JSON: the store hands over a *JSON projection* of the
document, where datetimes are ISO-8601 strings (:func:`to_json_compatible`, applied
here). ``format`` is enforced: a ``date-time`` must be an RFC 3339 timestamp with an
offset.

Three entry points serve the store, each one compiled validation per written document
(:mod:`~datacatalog.schemas.compiled`, ``jsonschema-rs``):

* :func:`validate` checks a whole document before an insert or replace;
* :func:`validate_update` checks every value an update writes (``$set``,
  ``$setOnInsert``, and the elements ``$push`` / ``$addToSet`` append) against the
  sub-schemas of the fields they go to, in one call;
* :func:`validate_fragment` checks one value for one (dotted) field.

A refused write raises :class:`~datacatalog.errors.InvalidRequestError` naming the kind
and the failing field path, e.g. ``job document is invalid at history/3/name: 'bogus'
is not one of [...]`` (:mod:`~datacatalog.schemas.messages` words it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from datacatalog.schemas import compiled, messages
from datacatalog.schemas.loading import (
    DEFINITIONS,
    EMBEDDED_KINDS,
    KINDS,
    SCHEMA_BASE_URI,
    STORED_KINDS,
    registry,
    schema_directory,
    schema_for,
    schema_uri,
)
from datacatalog.schemas.messages import format_checker, validator_for

__all__ = [
    "DEFINITIONS",
    "EMBEDDED_KINDS",
    "KINDS",
    "SCHEMA_BASE_URI",
    "STORED_KINDS",
    "format_checker",
    "registry",
    "schema_directory",
    "schema_for",
    "schema_uri",
    "to_json_compatible",
    "validate",
    "validate_fragment",
    "validate_update",
    "validator_for",
]


def validate(kind: str, document: Mapping[str, Any]) -> None:
    """Check a whole document of ``kind`` against its schema.

    Raises:
        InvalidRequestError: the document does not match; the message names the kind
            and the failing field path, and ``details`` has ``kind``, ``path``, ``reason``.
    """
    instance = to_json_compatible(document)
    if compiled.check(compiled.document_validator(kind), instance):
        return
    raise messages.document_error(kind, instance) or _disagreement(kind, instance)


def validate_fragment(kind: str, field_path: str, value: Any, *, item: bool = False) -> None:
    """Check a value about to be written to the dotted field ``field_path`` of ``kind``.

    Args:
        kind: The document kind.
        field_path: A dotted field, as in a MongoDB update (``"state"``,
            ``"_properties.modified_date"``, ``"history.3.name"``).
        value: The value to be written.
        item: Validate ``value`` as one element of the array field (a ``$push``).

    Raises:
        InvalidRequestError: the field does not exist in a closed schema, or the value
            does not match the field's schema.
    """
    validator = compiled.fragment_validator(kind, field_path, item)
    instance = to_json_compatible(value)
    if compiled.check(validator, instance):
        return
    error = messages.fragment_error(kind, field_path, instance, item=item)
    raise error or _disagreement(kind, instance, validator)


def validate_update(kind: str, update: Mapping[str, Mapping[str, Any]]) -> None:
    """Check every value a MongoDB update of a ``kind`` document writes, in one call.

    ``$set`` / ``$setOnInsert`` values are checked against their field's schema;
    ``$push`` / ``$addToSet`` values (or each element of their ``$each`` list) as
    items of their array field. Other operators (``$inc``, ``$pull``, ...) are not
    checked here.

    Raises:
        InvalidRequestError: a field does not exist in a closed schema, or a value does
            not match; the message names the kind and the failing field path (the
            operator's field path, then the path inside the value).
    """
    validator = compiled.update_validator(kind, compiled.shape_of(update))
    instance = to_json_compatible(update)
    if compiled.check(validator, instance):
        return
    # The error path: find the first refused value and word its error precisely.
    for op in compiled.FRAGMENT_OPERATORS:
        for path, value in instance.get(op, {}).items():
            error = messages.fragment_error(kind, path, value, item=False)
            if error is not None:
                raise error
    for op in compiled.ITEM_OPERATORS:
        for path, value in instance.get(op, {}).items():
            each = isinstance(value, dict) and "$each" in value
            if each and not isinstance(value["$each"], list):
                raise messages.refusal(kind, [*path.split("."), "$each"], "is not a list")
            for item in value["$each"] if each else [value]:
                error = messages.fragment_error(kind, path, item, item=True)
                if error is not None:
                    raise error
    raise _disagreement(kind, instance, validator)


_PLAIN = frozenset({str, int, float, bool, type(None)})
"""Types copied as they are (checked by exact type: the walk runs on every write)."""


def to_json_compatible(value: Any) -> Any:
    """Deep copy of ``value`` with datetimes as ISO-8601 UTC strings (ms, ``Z``).

    Naive datetimes are taken to be UTC (that is how BSON dates come back).
    Tuples become lists; every other value is returned unchanged.
    """
    # Plain values are taken without a call of their own, and exact type checks
    # come before the ABC ones (``Mapping``), which cost more than the rest of the walk.
    kind = type(value)
    if kind is dict:
        return {
            key: item if type(item) in _PLAIN else to_json_compatible(item)
            for key, item in value.items()
        }
    if kind is list or kind is tuple:
        return [item if type(item) in _PLAIN else to_json_compatible(item) for item in value]
    if kind in _PLAIN:
        return value
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Mapping):
        return {key: to_json_compatible(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_compatible(item) for item in value]
    return value


def _iso(moment: datetime) -> str:
    if moment.tzinfo is timezone.utc:  # the usual case (utc_now): nothing to convert
        return moment.isoformat(timespec="milliseconds")[:-6] + "Z"
    utc = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
    text = utc.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


def _disagreement(kind: str, instance: Any, validator: Any = None) -> Exception:
    """The refusal when the precise path found nothing the compiled one refused.

    Both paths read the same schemas, so this means the two validators disagree on
    some value; the compiled validator's own error is the best account of it.
    """
    chosen = validator if validator is not None else compiled.document_validator(kind)
    for error in chosen.iter_errors(instance):
        parts = [str(part) for part in error.instance_path]
        return messages.refusal(kind, parts, error.message)
    return messages.refusal(kind, [], "refused by the schema")
