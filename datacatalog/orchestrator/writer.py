"""Task-record writes off the runner's loop.

While a graph runs, the runner is the only writer of its task records (it holds the
job's execution lease), so it knows what a guarded move leaves in the store without
reading it back. :class:`TaskWriter` applies a move to the in-memory record at once and
queues the guarded update; one writer thread sends whatever has queued up as one ordered
bulk write, so the loop goes on receiving outcomes and submitting attempts while the
database answers, and a burst of moves costs one round trip instead of one each. Moves
are written in the order they were made; :meth:`TaskWriter.flush` waits for every move
made so far and raises the first error a write met.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from datacatalog.orchestrator.model import TaskRecord
from datacatalog.orchestrator.records import ExecutionRecords, TaskMove

log = logging.getLogger(__name__)

MAX_BATCH = 1000
"""Most moves in one bulk write."""

GATHER_SECONDS = 0.01
"""How long the writer lets moves queue up before it sends them."""


class TaskWriter:
    """Applies task moves to the records in memory and writes them in the background.

    Args:
        records: Where the task records are stored.
    """

    def __init__(self, records: ExecutionRecords) -> None:
        self._records = records
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="datacatalog-records")
        self._queue: list[TaskMove] = []
        self._draining = False
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()

    def move(
        self,
        task: TaskRecord,
        status: str,
        *,
        attempt: Mapping[str, Any] | None = None,
        sources: tuple[str, ...] | None = None,
        **fields: Any,
    ) -> None:
        """Move ``task`` to ``status`` in memory now and in the store soon (a guarded move)."""
        # The store's copy of the record before this move, for the guarded update.
        stored = TaskRecord(**{**task.__dict__, "attempt_log": list(task.attempt_log)})
        task.status = status
        for name, value in fields.items():
            setattr(task, name, value)
        if attempt is not None:
            task.attempt_log.append(dict(attempt))
        queued = TaskMove(stored, status, dict(attempt) if attempt else None, sources, fields)
        with self._lock:
            self._queue.append(queued)
            if self._draining:
                return  # the running drain takes it with the next batch
            self._draining = True
        self._pool.submit(self._drain)

    def _drain(self) -> None:
        while True:
            time.sleep(GATHER_SECONDS)  # let a burst of moves gather into one write
            with self._lock:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                if not batch:
                    self._draining = False
                    return
            try:
                written = self._records.move_tasks(batch)
            except BaseException as exc:  # the whole write failed (the server is gone)
                with self._lock:
                    self._errors.append(exc)
                continue
            if written.refused is not None:
                # That one move is lost (its error is flush()'s to raise); the moves not
                # sent because of it go first in the next write.
                with self._lock:
                    self._errors.append(written.error or RuntimeError("a move was refused"))
                    self._queue[:0] = written.unsent
            for move in written.missed:
                # Only another writer of this task's record gets here; as before, the move
                # is skipped (the store keeps what that writer wrote).
                log.warning(
                    "task %s of execution %s: its stored record could not move to %s",
                    move.task.name,
                    move.task.execution_id,
                    move.status,
                )

    def flush(self) -> None:
        """Wait for every move made so far to be written; raise the first error met."""
        # The drain runs until the queue is empty, and the pool has one thread: a marker
        # submitted now runs after it.
        self._pool.submit(_nothing).result()
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Wait for the writes and stop the thread (errors are :meth:`flush`'s to raise)."""
        self._pool.shutdown(wait=True)


def _nothing() -> None:
    """A flush marker."""
