"""Bulk writes: what is sent in one round trip, and what came back.

:class:`Upsert` is one upsert of :meth:`Store.bulk_upsert
<datacatalog.store.core.Store.bulk_upsert>`; :class:`BulkResult` and
:class:`OrderedBulkResult` say what a bulk write did. A first indexing run sends its
upserts as the inserts of the documents they would create (:func:`as_inserted`), which
cost the server a fraction of an upsert; the inserts refused on a taken key
(:func:`taken_keys`) are sent again as the upserts they stand for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import errors as mongo_errors

from datacatalog.errors import DataCatalogError
from datacatalog.store.documents import Document


@dataclass(frozen=True)
class Upsert:
    """One upsert of a bulk write: match ``query``, apply ``update`` (inserting if absent)."""

    query: Document
    update: Document


@dataclass(frozen=True)
class BulkResult:
    """Counts from a bulk write."""

    matched: int = 0
    modified: int = 0
    upserted: int = 0
    batches: int = 0


@dataclass(frozen=True)
class OrderedBulkResult:
    """What an ordered bulk update did.

    When ``refused`` is None every update was applied. Otherwise the update at that index
    was refused with ``error``: the ``applied`` updates before it were applied (all of
    them when the server refused it; none when it did not pass validation, and then
    nothing was sent), and the ones after it were not sent.
    """

    matched: int = 0
    applied: int = 0
    refused: int | None = None
    error: DataCatalogError | None = None


def counts(result: Any, *, batches: int) -> BulkResult:
    """The counts of the driver's bulk write ``result``, sent in ``batches`` round trips."""
    return BulkResult(
        matched=result.matched_count,
        modified=result.modified_count,
        upserted=result.upserted_count,
        batches=batches,
    )


def added(one: BulkResult, other: BulkResult) -> BulkResult:
    """The counts of two bulk writes together."""
    return BulkResult(
        matched=one.matched + other.matched,
        modified=one.modified + other.modified,
        upserted=one.upserted + other.upserted,
        batches=one.batches + other.batches,
    )


def refusal(exc: mongo_errors.BulkWriteError, kind: str, sent: int) -> OrderedBulkResult | None:
    """What an ordered bulk update of ``sent`` updates did when the server refused one.

    None when ``exc`` does not name the update refused (or the write timed out): then the
    whole write failed, and that error stands.
    """
    details = exc.details or {}
    failures = details.get("writeErrors") or []
    at = failures[0].get("index") if failures else None
    if exc.timeout or not isinstance(at, int) or not 0 <= at < sent:
        return None
    error = DataCatalogError(
        f"the database refused update {at} of a bulk update of {kind} "
        f"documents: {failures[0].get('errmsg', 'no reason given')}",
        kind=kind,
        code=failures[0].get("code"),
    )
    return OrderedBulkResult(
        matched=int(details.get("nMatched", 0)), applied=at, refused=at, error=error
    )


def taken_keys(exc: mongo_errors.BulkWriteError, sent: Sequence[int]) -> list[int] | None:
    """Which of the ``sent`` inserts failed on a duplicate key.

    Those are sent again as the upserts they stand for, which then do exactly what
    they would have done in the first place (update the stored document, or fail on
    another unique key). None when any failure is something else: that error stands.
    """
    details = exc.details or {}
    taken = []
    for failure in details.get("writeErrors") or []:
        index = failure.get("index")
        if failure.get("code") != 11000 or not isinstance(index, int):
            return None
        if not 0 <= index < len(sent):
            return None
        taken.append(sent[index])
    return taken


_INSERTABLE = frozenset({"$set", "$setOnInsert", "$addToSet", "$push", "$inc"})


def as_inserted(query: Mapping[str, Any], change: Mapping[str, Any]) -> Document | None:
    """The document an upsert of ``change`` would create when nothing matches ``query``.

    None when that is not worked out here (a query that is not plain equality, an
    operator or modifier other than the ones an upsert of a new document needs): the
    caller then sends the upsert itself.
    """
    if set(change) - _INSERTABLE or not _plain_equality(query):
        return None
    document: Document = dict(query)
    for op in ("$setOnInsert", "$set", "$inc"):
        for path, value in change.get(op, {}).items():
            if op == "$setOnInsert" and path in query and query[path] == value:
                continue  # the query's own key, set again on insert
            if not _put(document, path, value):
                return None
    for op in ("$addToSet", "$push"):
        for path, value in change.get(op, {}).items():
            items = _array_of(value, unique=op == "$addToSet")
            if items is None or not _put(document, path, items):
                return None
    return document


def _plain_equality(query: Mapping[str, Any]) -> bool:
    """Whether ``query`` matches top-level fields to plain values (no operator, no path)."""
    return not any(
        isinstance(value, Mapping) or "." in key or key.startswith("$")
        for key, value in query.items()
    )


def _array_of(value: Any, *, unique: bool) -> list[Any] | None:
    """The array an ``$addToSet`` (``unique``) or ``$push`` of ``value`` makes from none.

    None for a modifier other than ``$each``.
    """
    if isinstance(value, Mapping):
        if set(value) != {"$each"}:
            return None
        items = list(value["$each"])
    else:
        items = [value]
    if not unique:
        return items
    kept: list[Any] = []
    for item in items:
        if item not in kept:
            kept.append(item)
    return kept


def _put(document: Document, path: str, value: Any) -> bool:
    """Set the dotted ``path`` of ``document`` to ``value``, making parents as needed.

    False (and nothing set) when ``path`` is already written, or crosses a value that
    is not a document: the server would refuse such an update, and the caller lets it.
    """
    if "." not in path:  # a top-level field, the usual case
        if path in document:
            return False
        document[path] = value
        return True
    *parents, last = path.split(".")
    node = document
    for name in parents:
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            return False
    if last in node:
        return False
    node[last] = value
    return True
