"""Running attempts on a pool of threads in the runner's process."""

from __future__ import annotations

import threading

from datacatalog.clock import utc_now
from datacatalog.orchestrator.executors.base import Finished, Started
from datacatalog.orchestrator.executors.pool import PoolExecutor, check_pool_size
from datacatalog.orchestrator.worker import Invocation, run_attempt

__all__ = ["ThreadExecutor", "check_pool_size"]


class ThreadExecutor(PoolExecutor):
    """Attempts run on ``pool_size`` threads; the cancel flag is a ``threading.Event``."""

    def __init__(self, pool_size: int = 8) -> None:
        super().__init__(pool_size, threading.Event())

    def describe(self) -> str:
        """``thread(pool_size=N)``."""
        return f"thread(pool_size={self.pool_size})"

    def run(self, invocation: Invocation) -> None:
        """Run the attempt on this pool thread."""
        self.emit(
            Started(invocation.task, invocation.attempt, utc_now(), threading.current_thread().name)
        )
        self.emit(Finished(run_attempt(invocation, self._cancel.is_set)))
