"""Task-record writes off the runner's loop.

While a graph runs, the runner is the only writer of its task records (it holds the
job's execution lease), so it knows what a guarded move leaves in the store without
reading it back. :class:`TaskWriter` applies a move to the in-memory record at once and
sends the guarded update to the store from a few writer threads, so the loop goes on
receiving outcomes and submitting attempts while the database answers. Moves of one task
always go through the same thread, in order; :meth:`TaskWriter.flush` waits for every
write sent so far and raises the first error one of them met.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from datacatalog.orchestrator.model import TaskRecord
from datacatalog.orchestrator.records import ExecutionRecords

log = logging.getLogger(__name__)

WRITERS = 4
"""Writer threads: enough to overlap round trips, few enough to stay light on the server."""


class TaskWriter:
    """Applies task moves to the records in memory and writes them in the background.

    Args:
        records: Where the task records are stored.
        writers: Writer threads (each task's moves all go through one of them).
    """

    def __init__(self, records: ExecutionRecords, writers: int = WRITERS) -> None:
        self._records = records
        self._pools = [
            ThreadPoolExecutor(1, thread_name_prefix=f"datacatalog-records-{n}")
            for n in range(writers)
        ]
        self._pending: list[Future[None]] = []

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
        pool = self._pools[zlib.crc32(task.name.encode()) % len(self._pools)]
        self._pending.append(
            pool.submit(self._write, stored, status, attempt, sources, dict(fields))
        )
        if len(self._pending) > 4 * len(self._pools):
            self._pending = [f for f in self._pending if not f.done() or f.exception()]

    def _write(
        self,
        stored: TaskRecord,
        status: str,
        attempt: Mapping[str, Any] | None,
        sources: tuple[str, ...] | None,
        fields: dict[str, Any],
    ) -> None:
        if not self._records.move_task(stored, status, attempt=attempt, sources=sources, **fields):
            # Only another writer of this task's record gets here; as before, the move
            # is skipped (the store keeps what that writer wrote).
            log.warning(
                "task %s of execution %s: its stored record could not move to %s",
                stored.name,
                stored.execution_id,
                status,
            )

    def flush(self) -> None:
        """Wait for every write sent so far; raise the first error one of them met."""
        pending, self._pending = self._pending, []
        error: BaseException | None = None
        for future in pending:
            exc = future.exception()
            if exc is not None and error is None:
                error = exc
        if error is not None:
            raise error

    def close(self) -> None:
        """Wait for the writes and stop the threads (errors are :meth:`flush`'s to raise)."""
        for pool in self._pools:
            pool.shutdown(wait=True)
