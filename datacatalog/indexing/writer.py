"""The batch writer: a run's file records, one bulk write per batch.

A run hands :class:`BatchWriter` one batch at a time. Every batch but the last is written
on the writer's own thread while the run hashes the next one; the last (or only) batch is
written in the run's thread, without a handoff between threads. The writer thread starts
with the first batch that can overlap with another.

Each batch is one bulk write of upserts keyed by file UUID, links added to sets: writing a
batch again is safe, so a batch that fails as ``unavailable`` (a replica set electing a
new primary) is written again within the store's failover budget. After each batch the
job is read again (:func:`~datacatalog.indexing.completion.check_still_indexing`), unless
the run ends in a write conditional on the job's lease.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from datacatalog.indexing.completion import check_still_indexing
from datacatalog.store import Store, Upsert

Written = tuple[list[str], int, bool]
"""What writing one batch gives: the UUIDs written, the round trips it took and whether
none of the records was stored before."""


class BatchWriter:
    """Write a run's batches of file records in order, one in flight at a time.

    Args:
        store: The store.
        job_uuid: The job the records are ``generated_by``.
        check_state: Read the job after each batch and stop unless it is still INDEXING.
        settled: Called with ``(seen, matched)`` as they were when a batch was handed
            over, once that batch is written.

    Attributes:
        written: The UUIDs of the records written so far, in order.
        batches: The bulk writes sent so far.
    """

    def __init__(
        self,
        store: Store,
        job_uuid: str,
        *,
        check_state: bool,
        settled: Callable[[int, int], None],
    ) -> None:
        self.store = store
        self.job_uuid = job_uuid
        self.check_state = check_state
        self.settled = settled
        self.written: list[str] = []
        self.batches = 0
        # Records are inserted while batches keep finding none of theirs stored.
        self._expect_new = True
        # The batch being written while the next one is hashed, with the counts it ends.
        self._in_flight: tuple[Future[Written], int, int] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def submit(
        self, operations: Sequence[Upsert], uuids: list[str], *, last: bool, at: tuple[int, int]
    ) -> None:
        """Write one batch: the one before it is waited for first.

        Args:
            operations: The batch's upserts.
            uuids: The UUIDs of their records.
            last: No batch follows: write it here, in the calling thread.
            at: ``(seen, matched)`` of the run when the batch was made.
        """
        self.settle()
        write = partial(self._write, operations, uuids, expect_new=self._expect_new)
        if last:
            done: Future[Written] = Future()
            done.set_result(write())
            self._in_flight = (done, *at)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="datacatalog-index-writer")
        self._in_flight = (self._pool.submit(write), *at)

    def settle(self) -> None:
        """Wait for the batch in flight; its conflict, if any, is raised here."""
        if self._in_flight is None:
            return
        future, at_seen, at_matched = self._in_flight
        self._in_flight = None
        uuids, sent, all_new = future.result()
        self.written.extend(uuids)
        self.batches += sent
        self._expect_new = all_new
        self.settled(at_seen, at_matched)

    def _write(
        self, operations: Sequence[Upsert], uuids: list[str], *, expect_new: bool
    ) -> Written:
        """Upsert one batch in one bulk write, then check the job is still INDEXING.

        With ``expect_new`` the records are sent as inserts, and only those already
        stored as upserts (:meth:`Store.bulk_upsert`): a first run costs the server much
        less, and a second one costs one more round trip, for its first batch only.
        """
        if not operations:
            return [], 0, expect_new
        job_uuid = self.job_uuid

        def write() -> Written:
            result = self.store.bulk_upsert(
                "file", operations, batch_size=len(operations), expect_new=expect_new
            )
            if self.check_state:
                check_still_indexing(self.store, job_uuid)
            return uuids, result.batches, result.matched == 0

        # Upserts keyed by file UUID, links added to sets: writing the batch again is safe.
        return self.store.failover.call(
            write, what=f"indexing job {job_uuid}: a batch of {len(operations)} file records"
        )
