"""The store: every read and write of the catalog's documents goes through here.

The store is addressed by document *kind* (``"job"``, ``"file"``, ...), never by
raw collection. It

* creates each collection's indexes once per process, idempotently
  (:mod:`~datacatalog.store.kinds`);
* stamps ``_properties`` (created/modified dates, revision) on every write;
* validates every write against the kind's JSON Schema right before sending it
  (whole documents on insert, the written fragments on update);
* returns plain dicts without ``_id`` and with timezone-aware UTC datetimes
  (:mod:`~datacatalog.store.documents`);
* sends many writes in one round trip (:mod:`~datacatalog.store.bulk`);
* translates driver errors into :mod:`datacatalog.errors` by their structure
  (a duplicate key is recognized by ``details["keyPattern"]``, not by message;
  :mod:`~datacatalog.store.failures`).

The same code runs on every engine: a real MongoDB, the in-memory engine, and
the embedded local catalog (the in-memory engine persisted to a file). Engines
differ only in their :class:`~datacatalog.store.engines.Backend`.

The store reads the clock (:func:`~datacatalog.clock.utc_now`) here, once per document
written, and hands it to the pure conversions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo import errors as mongo_errors

from datacatalog import schemas
from datacatalog.clock import utc_now
from datacatalog.errors import ConflictError, InvalidRequestError
from datacatalog.store.bulk import (
    BulkResult,
    OrderedBulkResult,
    Upsert,
    added,
    as_inserted,
    counts,
    refusal,
    taken_keys,
)
from datacatalog.store.documents import Document, clean, stamped, with_bookkeeping
from datacatalog.store.engines import SERVER_NOW, Backend, DatabaseBackend, with_now
from datacatalog.store.failover import RetryPolicy
from datacatalog.store.failures import key_pattern, translated
from datacatalog.store.kinds import (
    COLLECTIONS,
    INDEXES,
    SEQUENCES_COLLECTION,
    collection_name,
    ensure_indexes,
    forget_indexes,
)

# The names this module has always offered, wherever they live now.
__all__ = [
    "COLLECTIONS",
    "INDEXES",
    "SEQUENCES_COLLECTION",
    "SERVER_NOW",
    "Backend",
    "BulkResult",
    "DatabaseBackend",
    "Document",
    "OrderedBulkResult",
    "Store",
    "Upsert",
]


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
        return clean(found) if found is not None else None

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
            return [clean(d) for d in cursor]

    def count(self, kind: str, query: Mapping[str, Any]) -> int:
        """Count the documents matching ``query``."""
        with self._op(kind, write=False) as coll:
            return int(coll.count_documents(dict(query)))

    def aggregate(self, kind: str, pipeline: Sequence[Mapping[str, Any]]) -> list[Document]:
        """Run an aggregation pipeline."""
        with self._op(kind, write=False) as coll:
            return [clean(d) for d in coll.aggregate([dict(s) for s in pipeline])]

    # -- writes -----------------------------------------------------------------------------

    def insert(self, kind: str, document: Mapping[str, Any]) -> Document:
        """Validate and insert a new document; a taken unique key is a ConflictError."""
        doc = stamped(document, utc_now())
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
        doc = stamped(document, utc_now())
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
                    if existing is None and key_pattern(exc) != {k: 1 for k in key}:
                        raise
                else:
                    return doc, True
            if existing is not None:
                return clean(existing), False
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
        prepared = [stamped(d, utc_now()) for d in documents]
        for doc in prepared:
            schemas.validate(kind, doc)
        with self._op(kind, write=True) as coll:
            try:
                coll.bulk_write([InsertOne(dict(d)) for d in prepared], ordered=False)
            except mongo_errors.BulkWriteError as exc:
                taken = taken_keys(exc, list(range(len(prepared))))
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
        change = with_bookkeeping(kind, update, utc_now())
        with self._op(kind, write=True) as coll:
            after = coll.find_one_and_update(
                dict(query),
                change,
                projection=dict(projection) if projection else None,
                upsert=upsert,
                return_document=ReturnDocument.AFTER,
            )
        return clean(after) if after is not None else None

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
            change = with_now(change, now)
            filter_ = with_now(filter_, now)
        with self._op(kind, write=True) as coll:
            after = coll.find_one_and_update(
                filter_,
                change,
                projection=dict(projection) if projection else None,
                upsert=upsert,
                return_document=ReturnDocument.AFTER,
            )
        return clean(after) if after is not None else None

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
            with self._backend.operation(write=True), translated(self.description):
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
        change = with_bookkeeping(kind, update, utc_now())
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
                prepared.append(UpdateOne(dict(query), with_bookkeeping(kind, update, utc_now())))
            except InvalidRequestError as exc:
                return OrderedBulkResult(refused=index, error=exc)
        with self._op(kind, write=True) as coll:
            try:
                result = coll.bulk_write(prepared, ordered=True)
            except mongo_errors.BulkWriteError as exc:
                refused = refusal(exc, kind, len(prepared))
                if refused is None:
                    raise
                return refused
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
        prepared = [(op, with_bookkeeping(kind, op.update, utc_now())) for op in operations]
        total = BulkResult()
        for start in range(0, len(prepared), batch_size):
            chunk = prepared[start : start + batch_size]
            if expect_new:
                total = added(total, self._insert_then_upsert(kind, chunk))
                continue
            with self._op(kind, write=True) as coll:
                result = coll.bulk_write(
                    [UpdateOne(op.query, change, upsert=True) for op, change in chunk],
                    ordered=False,
                )
            total = added(total, counts(result, batches=1))
        return total

    def _insert_then_upsert(
        self, kind: str, chunk: Sequence[tuple[Upsert, Document]]
    ) -> BulkResult:
        """Insert each upsert's new document; re-send those whose key exists as upserts."""
        documents = [as_inserted(op.query, change) for op, change in chunk]
        again = [i for i, doc in enumerate(documents) if doc is None]
        fresh = [(i, doc) for i, doc in enumerate(documents) if doc is not None]
        inserted = batches = 0
        if fresh:
            with self._op(kind, write=True) as coll:
                try:
                    coll.bulk_write([InsertOne(doc) for _i, doc in fresh], ordered=False)
                    inserted = len(fresh)
                except mongo_errors.BulkWriteError as exc:
                    taken = taken_keys(exc, [i for i, _doc in fresh])
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
        upserts = counts(result, batches=1)
        return added(upserts, BulkResult(upserted=inserted, batches=batches))

    def delete_many(self, kind: str, query: Mapping[str, Any]) -> int:
        """Delete every matching document; return how many went."""
        if not query:
            raise InvalidRequestError(f"refusing to delete every {kind} document")
        with self._op(kind, write=True) as coll:
            return int(coll.delete_many(dict(query)).deleted_count)

    # -- lifecycle --------------------------------------------------------------------------

    def drop_database(self) -> None:
        """Drop the whole database (tests and throw-away catalogs only)."""
        with self._backend.operation(write=True), translated(self.description):
            self._db.client.drop_database(self._db.name)
        forget_indexes(self._db.client, self._db.name)

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
        name = collection_name(kind)
        with self._backend.operation(write=write), translated(self.description):
            coll = self._db[name]
            ensure_indexes(self._db, kind, coll)
            yield coll
