"""Documents as the store writes and returns them.

One place converts between what callers hand the store and what the database holds:

* a new document is *stamped* (:func:`stamped`): its ``_properties`` (created and
  modified dates, revision) filled in, its datetimes in UTC at millisecond precision, as
  the database will hold them, so the document an insert returns equals the one read
  back later;
* an update gets its *bookkeeping* (:func:`with_bookkeeping`): the modified date and
  revision, and its written fragments validated against the kind's JSON Schema;
* a document read is *cleaned* (:func:`clean`): without ``_id``, its datetimes
  timezone-aware in UTC.

The functions are pure: the store reads the clock and hands them ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from datacatalog import schemas
from datacatalog.clock import as_utc, truncate
from datacatalog.errors import InvalidRequestError

Document = dict[str, Any]

KNOWN_OPERATORS = frozenset(
    {"$set", "$setOnInsert", "$push", "$addToSet", "$inc", "$pull", "$unset", "$pullAll"}
)
"""The update operators the store accepts."""

_PLAIN = frozenset({str, int, float, bool, type(None)})
"""Types stored as they are (checked by exact type: the walk runs on every insert)."""


def stamped(document: Mapping[str, Any], now: datetime) -> Document:
    """``document`` as it is inserted: without ``_id``, stored values, ``_properties`` set."""
    doc = {k: as_stored(v) for k, v in document.items() if k != "_id"}
    props = dict(doc.get("_properties") or {})
    props.setdefault("created_date", now)
    props.setdefault("modified_date", props["created_date"])
    props.setdefault("revision", 0)
    doc["_properties"] = props
    return doc


def as_stored(value: Any) -> Any:
    """``value`` as the database will hold it: datetimes in UTC at millisecond precision.

    The document an insert returns is then equal to the one read back later.
    """
    # Plain values are taken without a call of their own, and exact type checks come
    # before the ABC ones (``Mapping``), which cost more than the rest of the walk.
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {k: v if type(v) in _PLAIN else as_stored(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [v if type(v) in _PLAIN else as_stored(v) for v in value]
    if isinstance(value, datetime):
        return truncate(value)
    if isinstance(value, Mapping):
        return {k: as_stored(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_stored(v) for v in value]
    return value


def with_bookkeeping(kind: str, update: Mapping[str, Any], now: datetime) -> Document:
    """Validate an update's written fragments and add the modified date and revision."""
    change: Document = {op: dict(args) for op, args in update.items()}
    unknown = set(change) - KNOWN_OPERATORS
    if unknown:
        raise InvalidRequestError(f"unsupported update operator(s): {', '.join(sorted(unknown))}")
    # One compiled validation for everything the update writes.
    schemas.validate_update(kind, change)
    set_on_insert = change.get("$setOnInsert", {})
    if "_properties" not in set_on_insert and not any(
        p.startswith("_properties") for p in change.get("$set", {})
    ):
        change.setdefault("$set", {})["_properties.modified_date"] = now
        change.setdefault("$inc", {})["_properties.revision"] = 1
        # Always: an upsert without $setOnInsert must still create a complete document.
        change.setdefault("$setOnInsert", {})["_properties.created_date"] = now
    return change


def clean(document: Mapping[str, Any]) -> Document:
    """A document read from the database as callers get it: no ``_id``, aware datetimes."""
    return {k: _aware(v) for k, v in document.items() if k != "_id"}


def _aware(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, dict):
        return {k: _aware(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_aware(v) for v in value]
    return value
