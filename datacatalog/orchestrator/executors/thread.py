"""Running attempts on a pool of threads in the runner's process."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from datacatalog.clock import utc_now
from datacatalog.errors import InvalidRequestError
from datacatalog.orchestrator.executors.base import Emit, Executor, Finished, Started
from datacatalog.orchestrator.worker import Invocation, run_attempt


def check_pool_size(pool_size: object, what: str) -> int:
    """``pool_size`` as a positive integer; InvalidRequestError otherwise."""
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
        raise InvalidRequestError(
            f"{what}: pool_size must be an integer of at least 1, not {pool_size!r}"
        )
    return pool_size


class ThreadExecutor(Executor):
    """Attempts run on ``pool_size`` threads; the cancel flag is a ``threading.Event``."""

    def __init__(self, pool_size: int = 8) -> None:
        self.pool_size = check_pool_size(pool_size, "ThreadExecutor")
        self._pool: ThreadPoolExecutor | None = None
        self._cancel = threading.Event()
        self._queued: dict[Future[None], tuple[str, int]] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        """``thread(pool_size=N)``."""
        return f"thread(pool_size={self.pool_size})"

    def start(self, execution_id: str, emit: Emit) -> None:
        """Start the pool."""
        super().start(execution_id, emit)
        self._cancel.clear()
        self._pool = ThreadPoolExecutor(self.pool_size, thread_name_prefix="datacatalog-task")

    def submit(self, invocation: Invocation) -> None:
        """Queue one attempt on the pool."""
        assert self._pool is not None, "start() first"
        future = self._pool.submit(self._run, invocation)
        with self._lock:
            self._queued[future] = (invocation.task, invocation.attempt)
        future.add_done_callback(self._forget)

    def _run(self, invocation: Invocation) -> None:
        self.emit(
            Started(invocation.task, invocation.attempt, utc_now(), threading.current_thread().name)
        )
        self.emit(Finished(run_attempt(invocation, self._cancel.is_set)))

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._queued.pop(future, None)

    def cancel(self) -> list[tuple[str, int]]:
        """Raise the flag and drop queued attempts."""
        self._cancel.set()
        dropped = []
        with self._lock:
            queued = list(self._queued.items())
        for future, which in queued:
            if future.cancel():
                dropped.append(which)
        return dropped

    def close(self) -> None:
        """Wait for running attempts and stop the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
