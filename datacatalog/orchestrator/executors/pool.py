"""The bookkeeping shared by executors that run attempts from a local thread pool.

Each attempt is one call of :meth:`PoolExecutor.run` on a pool thread. The pool keeps
the attempts still queued so that :meth:`PoolExecutor.cancel` can drop them, and the
cancel flag is the one operations poll. Subclasses choose the flag (a thread event, or a
process-shared one) and what :meth:`PoolExecutor.run` does with an attempt.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from datacatalog.errors import InvalidRequestError
from datacatalog.orchestrator.executors.base import Emit, Executor
from datacatalog.orchestrator.worker import Invocation


def check_pool_size(pool_size: object, what: str) -> int:
    """``pool_size`` as a positive integer; InvalidRequestError otherwise."""
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
        raise InvalidRequestError(
            f"{what}: pool_size must be an integer of at least 1, not {pool_size!r}"
        )
    return pool_size


class PoolExecutor(Executor):
    """Attempts run from ``pool_size`` threads; queued ones can be dropped on cancel."""

    #: The prefix of the pool threads' names.
    thread_name_prefix = "datacatalog-task"

    def __init__(self, pool_size: int, cancel_flag: Any) -> None:
        self.pool_size = check_pool_size(pool_size, type(self).__name__)
        self._cancel = cancel_flag
        self._pool: ThreadPoolExecutor | None = None
        self._queued: dict[Future[None], tuple[str, int]] = {}
        self._lock = threading.Lock()

    def start(self, execution_id: str, emit: Emit) -> None:
        """Clear the cancel flag and start the pool."""
        super().start(execution_id, emit)
        self._cancel.clear()
        self._pool = ThreadPoolExecutor(self.pool_size, thread_name_prefix=self.thread_name_prefix)

    def submit(self, invocation: Invocation) -> None:
        """Queue one attempt on the pool."""
        assert self._pool is not None, "start() first"
        future = self._pool.submit(self.run, invocation)
        with self._lock:
            self._queued[future] = (invocation.task, invocation.attempt)
        future.add_done_callback(self._forget)

    @abstractmethod
    def run(self, invocation: Invocation) -> None:
        """Run one attempt on a pool thread, reporting ``Started`` and ``Finished``."""

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._queued.pop(future, None)

    def cancel(self) -> list[tuple[str, int]]:
        """Raise the flag operations poll and drop the attempts still queued."""
        self._cancel.set()
        dropped = []
        with self._lock:
            queued = list(self._queued.items())
        for future, which in queued:
            if future.cancel():
                dropped.append(which)
        return dropped

    def close(self) -> None:
        """Wait for running attempts and stop the pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
