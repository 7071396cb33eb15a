"""The store: every read and write of the catalog's documents goes through here.

The store is addressed by document *kind* (``"job"``, ``"file"``, ...), never by
raw collection. It

* creates each collection's indexes once per process (idempotently);
* stamps ``_properties`` (created/modified dates, revision) on every write;
* validates every write against the kind's JSON Schema right before sending it
  (whole documents on insert, the written fragments on update);
* returns plain dicts without ``_id`` and with timezone-aware UTC datetimes;
* translates driver errors into :mod:`datacatalog.errors` by their structure
  (a duplicate key is recognized by ``details["keyPattern"]``, not by message).

The same code runs on every engine: a real MongoDB, the in-memory engine, and
the embedded local catalog (the in-memory engine persisted to a file). Engines
differ only in their :class:`Backend`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bson import errors as bson_errors
from pymongo import IndexModel, InsertOne, ReturnDocument, UpdateOne
from pymongo import errors as mongo_errors
from pymongo.database import Database

from datacatalog import schemas
from datacatalog.clock import as_utc, truncate, utc_now
from datacatalog.errors import (
    ConflictError,
    DataCatalogError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnavailableError,
)
from datacatalog.store.failover import RetryPolicy

Document = dict[str, Any]

COLLECTIONS: dict[str, str] = {
    "pipeline": "pipelines",
    "job": "jobs",
    "file": "files",
    "reference": "references",
    "experiment_design": "experiment_designs",
    "experiment": "experiments",
    "sample": "samples",
    "measurement": "measurements",
    "audit": "audit",
    "workflow_execution": "workflow_executions",
    "workflow_task": "workflow_tasks",
    "workflow_log": "workflow_logs",
    "plugin": "plugins",
}

# (keys, options) per kind; every kind also gets a unique index on ``uuid``. The link
# fields (child_of, generated_by, acted_on, acted_using, derived_from, derived_using) are
# arrays, so their indexes are multikey: they answer the lineage graph's reverse lookups
# ("what links to these UUIDs?") without a collection scan.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "pipeline": [([("id", 1)], {})],
    "job": [
        ([("state", 1)], {}),
        ([("pipeline_uuid", 1)], {}),
        ([("child_of", 1)], {}),
        ([("generated_by", 1)], {}),
        ([("acted_on", 1)], {}),
        ([("acted_using", 1)], {}),
        ([("agent", 1)], {}),
        ([("_properties.created_date", -1)], {}),
        # The dashboard's keyset paging: each sort order (and the common filters with
        # it) read from one index, ending in uuid, the tie-breaker of every order.
        ([("_properties.created_date", -1), ("uuid", 1)], {}),
        ([("_properties.modified_date", -1), ("uuid", 1)], {}),
        ([("state", 1), ("_properties.created_date", -1), ("uuid", 1)], {}),
        ([("pipeline_uuid", 1), ("_properties.created_date", -1), ("uuid", 1)], {}),
        ([("agent", 1), ("_properties.created_date", -1), ("uuid", 1)], {}),
        ([("archive_system", 1), ("archive_path", 1)], {"unique": True}),
    ],
    "file": [
        ([("generated_by", 1)], {}),
        ([("derived_from", 1)], {}),
        ([("derived_using", 1)], {}),
        ([("storage_system", 1), ("name", 1)], {}),
    ],
    "reference": [([("uri", 1)], {}), ([("name", 1)], {})],
    "experiment_design": [
        ([("experiment_design_id", 1)], {"unique": True}),
        ([("child_of", 1)], {}),
    ],
    "experiment": [([("experiment_id", 1)], {"unique": True}), ([("child_of", 1)], {})],
    "sample": [([("sample_id", 1)], {"unique": True}), ([("child_of", 1)], {})],
    "measurement": [([("measurement_id", 1)], {"unique": True}), ([("child_of", 1)], {})],
    "audit": [([("job_uuid", 1), ("seq", -1)], {}), ([("seq", -1)], {})],
    "workflow_execution": [([("job_uuid", 1), ("status", 1)], {}), ([("created_at", -1)], {})],
    "workflow_task": [([("execution_id", 1), ("name", 1)], {"unique": True})],
    "workflow_log": [([("execution_id", 1), ("seq", 1)], {})],
    "plugin": [([("package_name", 1), ("package_version", 1)], {"unique": True})],
}

# The store's own collection of named counters (see Store.next_sequence); not a kind.
SEQUENCES_COLLECTION = "sequences"

_KNOWN_OPERATORS = {
    "$set",
    "$setOnInsert",
    "$push",
    "$addToSet",
    "$inc",
    "$pull",
    "$unset",
    "$pullAll",
}


# In an update pipeline or an ``$expr``: the database server's clock (see Store.update_pipeline).
SERVER_NOW = "$$NOW"


class Backend(Protocol):
    """What an engine provides to the store."""

    database: Database[Document]
    description: str
    # False on the in-memory engine, which has no server clock to evaluate ``$$NOW`` with.
    evaluates_now: bool

    def operation(self, *, write: bool) -> AbstractContextManager[object]:
        """Bracket one store operation (the embedded engine locks and persists here)."""

    def close(self) -> None:
        """Release the engine's resources."""


@dataclass
class DatabaseBackend:
    """A backend over a pymongo (or in-memory engine) database.

    A server makes each operation atomic, so there is nothing to bracket. The in-memory
    engine is not safe for threads (two increments of one field can both read the old
    value), so it is given ``serialized=True``: one operation at a time, as a server would
    appear to run them.
    """

    database: Database[Document]
    description: str
    owns_client: bool = False
    serialized: bool = False
    evaluates_now: bool = True
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def operation(self, *, write: bool) -> AbstractContextManager[object]:
        """Bracket one operation: nothing on a server, a lock on the in-memory engine."""
        return self._lock if self.serialized else nullcontext()

    def close(self) -> None:
        """Close the client if this backend created it."""
        if self.owns_client:
            self.database.client.close()


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


@dataclass
class _IndexRegistry:
    """Which (database, collection) pairs had their indexes created, per client.

    Clients are told apart by identity, not equality: clients compare equal by
    address, and every in-memory client claims the same one while holding its own
    data and indexes.
    """

    done: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def created(self, client: Any) -> set[tuple[str, str]]:
        """The pairs done on ``client`` (call with :attr:`lock` held)."""
        key = id(client)
        found = self.done.get(key)
        if found is None:
            found = self.done[key] = set()
            # Forget the client when it goes, before its id can be reused.
            weakref.finalize(client, self.done.pop, key, None)
        return found


_INDEXES_CREATED = _IndexRegistry()


class Store:
    """Kind-addressed access to the catalog's documents on one database.

    Args:
        backend: The engine.
        failover: How callers resend what is safe to resend while the database is
            unavailable (:mod:`datacatalog.store.failover`); the store itself never
            resends a write.
    """

    def __init__(self, backend: Backend, *, failover: RetryPolicy | None = None) -> None:
        self._backend = backend
        self._db = backend.database
        self.failover = failover or RetryPolicy()

    # -- identity ---------------------------------------------------------------------------

    @property
    def database_name(self) -> str:
        """Name of the database."""
        return str(self._db.name)

    @property
    def description(self) -> str:
        """Where the store is (a URI without its password, or a file path)."""
        return self._backend.description

    def __repr__(self) -> str:
        return f"Store({self.description!r}, database={self.database_name!r})"

    # -- reads ------------------------------------------------------------------------------

    def get(self, kind: str, query: Mapping[str, Any]) -> Document | None:
        """Return one document matching ``query``, or None."""
        with self._op(kind, write=False) as coll:
            found = coll.find_one(dict(query))
        return _clean(found) if found is not None else None

    def find(
        self,
        kind: str,
        query: Mapping[str, Any],
        *,
        sort: Sequence[tuple[str, int]] | None = None,
        skip: int = 0,
        limit: int = 0,
        projection: Mapping[str, Any] | None = None,
    ) -> list[Document]:
        """Return the documents matching ``query``."""
        with self._op(kind, write=False) as coll:
            cursor = coll.find(dict(query), dict(projection) if projection else None)
            if sort:
                cursor = cursor.sort(list(sort))
            if skip:
                cursor = cursor.skip(skip)
            if limit:
                cursor = cursor.limit(limit)
            return [_clean(d) for d in cursor]

    def count(self, kind: str, query: Mapping[str, Any]) -> int:
        """Count the documents matching ``query``."""
        with self._op(kind, write=False) as coll:
            return int(coll.count_documents(dict(query)))

    def aggregate(self, kind: str, pipeline: Sequence[Mapping[str, Any]]) -> list[Document]:
        """Run an aggregation pipeline."""
        with self._op(kind, write=False) as coll:
            return [_clean(d) for d in coll.aggregate([dict(s) for s in pipeline])]

    # -- writes -----------------------------------------------------------------------------

    def insert(self, kind: str, document: Mapping[str, Any]) -> Document:
        """Validate and insert a new document; a taken unique key is a ConflictError."""
        doc = _stamped(document)
        schemas.validate(kind, doc)
        with self._op(kind, write=True) as coll:
            coll.insert_one(dict(doc))
        return doc

    def insert_if_absent(
        self, kind: str, document: Mapping[str, Any], *, key: Sequence[str] = ("uuid",)
    ) -> tuple[Document, bool]:
        """Insert ``document`` unless one with the same ``key`` fields exists.

        Atomic: racing callers end with one document. Returns the stored document
        and whether this call created it. The existing document is never changed.
        One round trip when the document is new: a plain insert, which the unique index
        on ``key`` refuses when the document exists (a cheaper command than an upsert);
        then one read fetches the existing document.
        """
        doc = _stamped(document)
        schemas.validate(kind, doc)
        query = {k: doc[k] for k in key}
        for _attempt in range(3):
            with self._op(kind, write=True) as coll:
                try:
                    coll.insert_one(dict(doc))
                except mongo_errors.DuplicateKeyError as exc:
                    # A document with the key exists: attach to it. The server names one
                    # of the unique indexes the insert broke, not necessarily the key's,
                    # so the key decides; when nothing holds the key, another unique
                    # field is taken: a real conflict.
                    existing = coll.find_one(query)
                    if existing is None and _key_pattern(exc) != {k: 1 for k in key}:
                        raise
                else:
                    return doc, True
            if existing is not None:
                return _clean(existing), False
            # The holder was removed between the two commands: try the insert again.
        raise ConflictError(f"could not insert or find the {kind} with {query}", kind=kind)

    def insert_many(self, kind: str, documents: Sequence[Mapping[str, Any]]) -> list[int]:
        """Validate and insert new documents in one unordered round trip.

        A document whose unique key is taken already is left as stored (the others are
        inserted all the same); any other refusal is raised. Returns the indexes (into
        ``documents``) of those that were not inserted for that reason, so a caller can
        read the existing ones.
        """
        if not documents:
            return []
        prepared = [_stamped(d) for d in documents]
        for doc in prepared:
            schemas.validate(kind, doc)
        with self._op(kind, write=True) as coll:
            try:
                coll.bulk_write([InsertOne(dict(d)) for d in prepared], ordered=False)
            except mongo_errors.BulkWriteError as exc:
                taken = _taken_keys(exc, list(range(len(prepared))))
                if taken is None:
                    raise
                return sorted(taken)
        return []

    def update(
        self,
        kind: str,
        query: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        upsert: bool = False,
        projection: Mapping[str, Any] | None = None,
    ) -> Document | None:
        """Atomically update one document and return it as it is after the update.

        Returns None when nothing matched (and ``upsert`` is false). ``projection``
        limits the fields returned (e.g. ``{"history": 0}``).
        """
        change = _with_bookkeeping(kind, update)
        with self._op(kind, write=True) as coll:
            after = coll.find_one_and_update(
                dict(query),
                change,
                projection=dict(projection) if projection else None,
                upsert=upsert,
                return_document=ReturnDocument.AFTER,
            )
        return _clean(after) if after is not None else None

    def update_pipeline(
        self,
        kind: str,
        query: Mapping[str, Any],
        stages: Sequence[Mapping[str, Any]],
        *,
        fragments: Mapping[str, Any],
        projection: Mapping[str, Any] | None = None,
        upsert: bool = False,
    ) -> Document | None:
        """Atomically update one document with an update pipeline; return it after.

        The query (in ``$expr``) and the stages may read the database server's clock as
        :data:`SERVER_NOW` (``"$$NOW"``), so that hosts whose clocks disagree still agree on
        what time it is. The in-memory engine has no server: there ``$$NOW`` is the process
        clock (:func:`datacatalog.clock.utc_now`), read once for the whole operation.

        A pipeline writes expressions, not values, so the caller names in ``fragments``
        (field path → value) what its stages write, with any date standing for a date the
        server computes; they are validated against the kind's schema before anything is
        sent. The modified date (the server's) and revision are kept as by :meth:`update`.
        Returns None when nothing matched. With ``upsert`` a document is inserted when
        nothing matches (the stages then build it whole); when the query's unique key is
        taken by a document that does not match, that is a :class:`ConflictError`.
        """
        for path, value in fragments.items():
            schemas.validate_fragment(kind, path, value)
        bookkeeping = {
            "$set": {
                "_properties.modified_date": SERVER_NOW,
                "_properties.revision": {"$add": ["$_properties.revision", 1]},
            }
        }
        change: list[Any] = [dict(stage) for stage in stages] + [bookkeeping]
        filter_: Any = dict(query)
        if not self._backend.evaluates_now:
            now = utc_now()
            change = _with_now(change, now)
            filter_ = _with_now(filter_, now)
        with self._op(kind, write=True) as coll:
            after = coll.find_one_and_update(
                filter_,
                change,
                projection=dict(projection) if projection else None,
                upsert=upsert,
                return_document=ReturnDocument.AFTER,
            )
        return _clean(after) if after is not None else None

    def next_sequence(self, name: str) -> int:
        """Take the next value (1, 2, ...) of the catalog-wide counter ``name``.

        One atomic increment on the server: values are strictly increasing in the order the
        calls reached the database, across threads and processes, and never repeat. Records
        read back "in the order it happened" sort by such a value, since their dates (at
        millisecond precision) tie when several are written within one millisecond.
        """
        if not name:
            raise InvalidRequestError("a sequence needs a name")
        coll = self._db[SEQUENCES_COLLECTION]
        for _attempt in range(3):
            with self._backend.operation(write=True), _translated(self.description):
                try:
                    after = coll.find_one_and_update(
                        {"_id": name},
                        {"$inc": {"value": 1}},
                        upsert=True,
                        return_document=ReturnDocument.AFTER,
                    )
                except mongo_errors.DuplicateKeyError:
                    # Two first increments raced to create the counter: the loser increments
                    # the winner's document on the next try.
                    continue
            if after is not None:  # an upsert returning the document after always has one
                return int(after["value"])
        raise ConflictError(f"could not take the next value of the sequence {name!r}")

    def update_many(self, kind: str, query: Mapping[str, Any], update: Mapping[str, Any]) -> int:
        """Update every matching document; return how many changed."""
        change = _with_bookkeeping(kind, update)
        with self._op(kind, write=True) as coll:
            return int(coll.update_many(dict(query), change).modified_count)

    def bulk_update(
        self, kind: str, updates: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
    ) -> OrderedBulkResult:
        """Apply ``(query, update)`` pairs in one round trip, in order.

        Each update changes the one document its query matches (none: nothing happens,
        nothing is inserted). Every update is validated before anything is sent. An update
        that fails validation, or that the server refuses, is reported in the result
        (which says what was applied) rather than raised, so that the caller can send the
        others again; a failure of the whole write (the server unreachable) is raised.
        """
        if not updates:
            return OrderedBulkResult()
        prepared = []
        for index, (query, update) in enumerate(updates):
            try:
                prepared.append(UpdateOne(dict(query), _with_bookkeeping(kind, update)))
            except InvalidRequestError as exc:
                return OrderedBulkResult(refused=index, error=exc)
        with self._op(kind, write=True) as coll:
            try:
                result = coll.bulk_write(prepared, ordered=True)
            except mongo_errors.BulkWriteError as exc:
                failures = (exc.details or {}).get("writeErrors") or []
                at = failures[0].get("index") if failures else None
                if exc.timeout or not isinstance(at, int) or not 0 <= at < len(prepared):
                    raise
                refusal = DataCatalogError(
                    f"the database refused update {at} of a bulk update of {kind} "
                    f"documents: {failures[0].get('errmsg', 'no reason given')}",
                    kind=kind,
                    code=failures[0].get("code"),
                )
                return OrderedBulkResult(
                    matched=int((exc.details or {}).get("nMatched", 0)),
                    applied=at,
                    refused=at,
                    error=refusal,
                )
        return OrderedBulkResult(matched=int(result.matched_count), applied=len(prepared))

    def bulk_upsert(
        self,
        kind: str,
        operations: Sequence[Upsert],
        *,
        batch_size: int = 1000,
        expect_new: bool = False,
    ) -> BulkResult:
        """Apply many upserts, ``batch_size`` per round trip, unordered.

        With ``expect_new`` the caller expects the documents not to exist yet (a first
        indexing run): each upsert is sent as the insert of the very document it would
        create, which costs the server a fraction of an upsert, and only those whose key
        is taken already are sent again, as upserts, in a second round trip.
        """
        prepared = [(op, _with_bookkeeping(kind, op.update)) for op in operations]
        total = BulkResult()
        for start in range(0, len(prepared), batch_size):
            chunk = prepared[start : start + batch_size]
            if expect_new:
                total = _added(total, self._insert_then_upsert(kind, chunk))
                continue
            with self._op(kind, write=True) as coll:
                result = coll.bulk_write(
                    [UpdateOne(op.query, change, upsert=True) for op, change in chunk],
                    ordered=False,
                )
            total = _added(total, _counts(result, batches=1))
        return total

    def _insert_then_upsert(
        self, kind: str, chunk: Sequence[tuple[Upsert, Document]]
    ) -> BulkResult:
        """Insert each upsert's new document; re-send those whose key exists as upserts."""
        documents = [_as_inserted(op.query, change) for op, change in chunk]
        again = [i for i, doc in enumerate(documents) if doc is None]
        fresh = [(i, doc) for i, doc in enumerate(documents) if doc is not None]
        inserted = batches = 0
        if fresh:
            with self._op(kind, write=True) as coll:
                try:
                    coll.bulk_write([InsertOne(doc) for _i, doc in fresh], ordered=False)
                    inserted = len(fresh)
                except mongo_errors.BulkWriteError as exc:
                    taken = _taken_keys(exc, [i for i, _doc in fresh])
                    if taken is None:
                        raise
                    inserted = len(fresh) - len(taken)
                    again.extend(taken)
            batches = 1
        if not again:
            return BulkResult(upserted=inserted, batches=batches)
        with self._op(kind, write=True) as coll:
            result = coll.bulk_write(
                [UpdateOne(chunk[i][0].query, chunk[i][1], upsert=True) for i in sorted(again)],
                ordered=False,
            )
        upserts = _counts(result, batches=1)
        return _added(upserts, BulkResult(upserted=inserted, batches=batches))

    def delete_many(self, kind: str, query: Mapping[str, Any]) -> int:
        """Delete every matching document; return how many went."""
        if not query:
            raise InvalidRequestError(f"refusing to delete every {kind} document")
        with self._op(kind, write=True) as coll:
            return int(coll.delete_many(dict(query)).deleted_count)

    # -- lifecycle --------------------------------------------------------------------------

    def drop_database(self) -> None:
        """Drop the whole database (tests and throw-away catalogs only)."""
        with self._backend.operation(write=True), _translated(self.description):
            self._db.client.drop_database(self._db.name)
        with _INDEXES_CREATED.lock:
            done = _INDEXES_CREATED.created(self._db.client)
            done.difference_update({d for d in done if d[0] == self._db.name})

    def close(self) -> None:
        """Release the connection (when the store created it)."""
        self._backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    @contextmanager
    def _op(self, kind: str, *, write: bool) -> Iterator[Any]:
        name = _collection_name(kind)
        with self._backend.operation(write=write), _translated(self.description):
            coll = self._db[name]
            self._ensure_indexes(kind, coll)
            yield coll

    def _ensure_indexes(self, kind: str, coll: Any) -> None:
        client = self._db.client
        marker = (str(self._db.name), str(coll.name))
        with _INDEXES_CREATED.lock:
            done = _INDEXES_CREATED.created(client)
            if marker in done:
                return
            # One round trip for all of the collection's indexes.
            coll.create_indexes(
                [
                    IndexModel([("uuid", 1)], unique=True, name="uuid_unique"),
                    *(IndexModel(keys, **options) for keys, options in INDEXES.get(kind, [])),
                ]
            )
            done.add(marker)


def _collection_name(kind: str) -> str:
    try:
        return COLLECTIONS[kind]
    except KeyError:
        raise InvalidRequestError(
            f"unknown document kind {kind!r}; known kinds: {', '.join(COLLECTIONS)}"
        ) from None


def _stamped(document: Mapping[str, Any]) -> Document:
    doc = {k: _as_stored(v) for k, v in document.items() if k != "_id"}
    now = utc_now()
    props = dict(doc.get("_properties") or {})
    props.setdefault("created_date", now)
    props.setdefault("modified_date", props["created_date"])
    props.setdefault("revision", 0)
    doc["_properties"] = props
    return doc


_PLAIN = frozenset({str, int, float, bool, type(None)})
"""Types stored as they are (checked by exact type: the walk runs on every insert)."""


def _as_stored(value: Any) -> Any:
    """``value`` as the database will hold it: datetimes in UTC at millisecond precision.

    The document an insert returns is then equal to the one read back later.
    """
    # Plain values are taken without a call of their own, and exact type checks come
    # before the ABC ones (``Mapping``), which cost more than the rest of the walk.
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {k: v if type(v) in _PLAIN else _as_stored(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [v if type(v) in _PLAIN else _as_stored(v) for v in value]
    if isinstance(value, datetime):
        return truncate(value)
    if isinstance(value, Mapping):
        return {k: _as_stored(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_stored(v) for v in value]
    return value


def _with_bookkeeping(kind: str, update: Mapping[str, Any]) -> Document:
    """Validate an update's written fragments and add the modified date and revision."""
    change: Document = {op: dict(args) for op, args in update.items()}
    unknown = set(change) - _KNOWN_OPERATORS
    if unknown:
        raise InvalidRequestError(f"unsupported update operator(s): {', '.join(sorted(unknown))}")
    # One compiled validation for everything the update writes.
    schemas.validate_update(kind, change)
    set_on_insert = change.get("$setOnInsert", {})
    if "_properties" not in set_on_insert and not any(
        p.startswith("_properties") for p in change.get("$set", {})
    ):
        now = utc_now()
        change.setdefault("$set", {})["_properties.modified_date"] = now
        change.setdefault("$inc", {})["_properties.revision"] = 1
        # Always: an upsert without $setOnInsert must still create a complete document.
        change.setdefault("$setOnInsert", {})["_properties.created_date"] = now
    return change


def _with_now(value: Any, now: datetime) -> Any:
    """``value`` with every :data:`SERVER_NOW` replaced by ``now`` (for the in-memory engine)."""
    if isinstance(value, str):
        return now if value == SERVER_NOW else value
    if isinstance(value, Mapping):
        if "$literal" in value:
            return dict(value)
        return {k: _with_now(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_now(v, now) for v in value]
    return value


def _counts(result: Any, *, batches: int) -> BulkResult:
    return BulkResult(
        matched=result.matched_count,
        modified=result.modified_count,
        upserted=result.upserted_count,
        batches=batches,
    )


def _added(one: BulkResult, other: BulkResult) -> BulkResult:
    return BulkResult(
        matched=one.matched + other.matched,
        modified=one.modified + other.modified,
        upserted=one.upserted + other.upserted,
        batches=one.batches + other.batches,
    )


_INSERTABLE = frozenset({"$set", "$setOnInsert", "$addToSet", "$push", "$inc"})


def _as_inserted(query: Mapping[str, Any], change: Mapping[str, Any]) -> Document | None:
    """The document an upsert of ``change`` would create when nothing matches ``query``.

    None when that is not worked out here (a query that is not plain equality, an
    operator or modifier other than the ones an upsert of a new document needs): the
    caller then sends the upsert itself.
    """
    if set(change) - _INSERTABLE:
        return None
    if any(
        isinstance(value, Mapping) or "." in key or key.startswith("$")
        for key, value in query.items()
    ):
        return None
    document: Document = dict(query)
    for op in ("$setOnInsert", "$set", "$inc"):
        for path, value in change.get(op, {}).items():
            if path in query and query[path] == value and op == "$setOnInsert":
                continue  # the query's own key, set again on insert
            if not _put(document, path, value):
                return None
    for op in ("$addToSet", "$push"):
        for path, value in change.get(op, {}).items():
            if isinstance(value, Mapping):
                if set(value) != {"$each"}:
                    return None
                items = list(value["$each"])
            else:
                items = [value]
            if op == "$addToSet":
                unique: list[Any] = []
                for item in items:
                    if item not in unique:
                        unique.append(item)
                items = unique
            if not _put(document, path, items):
                return None
    return document


def _put(document: Document, path: str, value: Any) -> bool:
    """Set the dotted ``path`` of ``document`` to ``value``, making parents as needed.

    False (and nothing set) when ``path`` is already written, or crosses a value that
    is not a document: the server would refuse such an update, and the caller lets it.
    """
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


def _taken_keys(exc: mongo_errors.BulkWriteError, sent: Sequence[int]) -> list[int] | None:
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


def _clean(document: Mapping[str, Any]) -> Document:
    return {k: _aware(v) for k, v in document.items() if k != "_id"}


def _aware(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, dict):
        return {k: _aware(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_aware(v) for v in value]
    return value


def _key_pattern(exc: mongo_errors.DuplicateKeyError) -> dict[str, Any]:
    details = exc.details or {}
    pattern = details.get("keyPattern")
    return dict(pattern) if isinstance(pattern, Mapping) else {}


@contextmanager
def _translated(where: str) -> Iterator[None]:
    """Turn driver errors into the project's errors, by structure."""
    try:
        yield
    except DataCatalogError:
        raise
    except mongo_errors.DuplicateKeyError as exc:
        pattern = _key_pattern(exc)
        value = (exc.details or {}).get("keyValue")
        fields = ", ".join(pattern) or "a unique key"
        raise ConflictError(
            f"a document with the same {fields} already exists"
            + (f" ({_plain_value(value)})" if value else ""),
            key=list(pattern),
        ) from exc
    except mongo_errors.BulkWriteError as exc:
        if exc.timeout:
            raise _timed_out(where, exc) from exc
        if _transient(exc):
            raise _no_primary(where, exc) from exc
        failures = (exc.details or {}).get("writeErrors") or []
        if failures and all(f.get("code") == 11000 for f in failures):
            found = failures[0].get("keyPattern")
            pattern = dict(found) if isinstance(found, Mapping) else {}
            fields = ", ".join(pattern) or "a unique key"
            raise ConflictError(
                f"{len(failures)} write(s) of a bulk write collide with existing documents "
                f"on {fields}; the other writes were applied",
                key=list(pattern),
                failed=len(failures),
            ) from exc
        raise DataCatalogError(f"bulk write failed at {where}: {exc}") from exc
    except mongo_errors.DocumentTooLarge as exc:
        raise PayloadTooLargeError(f"document too large for the database: {exc}") from exc
    except (mongo_errors.ConnectionFailure, mongo_errors.ServerSelectionTimeoutError) as exc:
        raise UnavailableError(
            f"cannot reach the database at {where}: {type(exc).__name__} (no answer within "
            "the timeout, DATACATALOG_MONGODB_TIMEOUT; retrying later may work)"
        ) from exc
    except mongo_errors.OperationFailure as exc:
        if exc.timeout:  # the call's time (timeoutMS) ran out on the server's side
            raise _timed_out(where, exc) from exc
        if _transient(exc):
            raise _no_primary(where, exc) from exc
        if exc.code in (10334, 17419, 17420):  # BSONObjectTooLarge and friends
            raise PayloadTooLargeError(f"document too large for the database: {exc}") from exc
        raise DataCatalogError(
            f"database operation failed at {where}: {exc}", code=exc.code
        ) from exc
    except mongo_errors.PyMongoError as exc:
        if exc.timeout:
            raise _timed_out(where, exc) from exc
        raise DataCatalogError(f"database error at {where}: {exc}") from exc
    except (OverflowError, bson_errors.InvalidDocument) as exc:
        # The driver could not encode the document as BSON (an integer wider than 64 bits,
        # for instance), so nothing was sent: the request is at fault.
        raise InvalidRequestError(f"the document cannot be stored as BSON: {exc}") from exc


# What a replica set answers while it has no primary, or while its primary steps down or
# shuts down: nothing is wrong with the request, and another member will take writes soon.
_NO_PRIMARY_CODES = frozenset(
    {
        91,  # ShutdownInProgress
        189,  # PrimarySteppedDown
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)


def _transient(exc: mongo_errors.OperationFailure) -> bool:
    """Whether the server refused because of a failover, not because of the request.

    The driver labels such errors (``RetryableWriteError``, after its own retry); a
    write-concern error of a bulk write carries only its code.
    """
    if exc.has_error_label("RetryableWriteError") or exc.code in _NO_PRIMARY_CODES:
        return True
    details = exc.details or {}
    concern = details.get("writeConcernError") or {}
    concerns = details.get("writeConcernErrors") or ([concern] if concern else [])
    return any(isinstance(c, Mapping) and c.get("code") in _NO_PRIMARY_CODES for c in concerns)


def _no_primary(where: str, exc: Exception) -> UnavailableError:
    return UnavailableError(
        f"the database at {where} has no primary to write to: {type(exc).__name__} "
        f"({exc}); a replica set elects a new one within seconds, retrying then may work"
    )


def _timed_out(where: str, exc: Exception) -> UnavailableError:
    return UnavailableError(
        f"the database did not answer in time at {where}: {type(exc).__name__} "
        "(DATACATALOG_MONGODB_TIMEOUT; retrying later may work)"
    )


def _plain_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v!r}" for k, v in value.items())
    return repr(value)
