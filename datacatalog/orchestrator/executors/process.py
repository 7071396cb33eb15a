"""Running each attempt in a child process of its own.

A child that dies (``os._exit``, a signal, running out of memory) ends that attempt as
failed with an error naming its exit code; the runner and the other attempts go on. At
most ``pool_size`` children run at once. Operations and their arguments travel by pickle,
so operations must be importable (defined at module level).
"""

from __future__ import annotations

import multiprocessing
import sys
from multiprocessing.connection import Connection
from typing import Any

from datacatalog.clock import utc_now
from datacatalog.errors import InvalidRequestError
from datacatalog.orchestrator.executors.base import Finished, Started
from datacatalog.orchestrator.executors.pool import PoolExecutor, check_pool_size
from datacatalog.orchestrator.worker import Invocation, failure, run_attempt

START_METHODS = ("spawn", "forkserver", "fork")


def _child(conn: Connection, invocation: Invocation, cancel: Any) -> None:
    conn.send(("started", utc_now()))
    outcome = run_attempt(invocation, cancel.is_set)
    conn.send(("finished", outcome))
    conn.close()


class ProcessExecutor(PoolExecutor):
    """Attempts run in child processes, ``pool_size`` at a time.

    Args:
        pool_size: Children running at once.
        start_method: ``spawn``, ``forkserver`` or ``fork`` (default: ``forkserver`` on
            Linux, else ``spawn``; ``fork`` is unsafe in a process with threads).
    """

    pickles = True
    thread_name_prefix = "datacatalog-child"

    def __init__(self, pool_size: int = 4, start_method: str | None = None) -> None:
        check_pool_size(pool_size, "ProcessExecutor")
        method = start_method or ("forkserver" if sys.platform.startswith("linux") else "spawn")
        if method not in START_METHODS:
            raise InvalidRequestError(
                f"ProcessExecutor: start_method must be one of {', '.join(START_METHODS)}, "
                f"not {method!r}"
            )
        self.start_method = method
        self._context: Any = multiprocessing.get_context(method)
        super().__init__(pool_size, self._context.Event())

    def describe(self) -> str:
        """``process(pool_size=N, start_method=M)``."""
        return f"process(pool_size={self.pool_size}, start_method={self.start_method})"

    def run(self, invocation: Invocation) -> None:
        """Run the attempt in a child process and watch it from this pool thread."""
        started = utc_now()
        receiver, sender = self._context.Pipe(duplex=False)
        child = self._context.Process(
            target=_child,
            args=(sender, invocation, self._cancel),
            name=f"datacatalog-{invocation.task}-{invocation.attempt}",
            daemon=True,
        )
        try:
            child.start()
        except Exception as exc:
            self.emit(
                Finished(
                    failure(
                        invocation,
                        {
                            "type": type(exc).__name__,
                            "message": f"could not start a worker process for task "
                            f"{invocation.task}: {exc}",
                            "traceback": None,
                        },
                        started=started,
                    )
                )
            )
            return
        sender.close()
        finished = False
        try:
            while True:
                try:
                    kind, payload = receiver.recv()
                except (EOFError, OSError):
                    break
                if kind == "started":
                    self.emit(
                        Started(invocation.task, invocation.attempt, payload, f"pid {child.pid}")
                    )
                else:
                    finished = True
                    self.emit(Finished(payload))
        finally:
            receiver.close()
            child.join()
        if not finished:
            code = child.exitcode
            self.emit(
                Finished(
                    failure(
                        invocation,
                        {
                            "type": "WorkerProcessDied",
                            "message": (
                                f"the worker process (pid {child.pid}) running task "
                                f"{invocation.task} attempt {invocation.attempt} exited with "
                                f"code {code} before reporting "
                                "an outcome"
                            ),
                            "traceback": None,
                        },
                        started=started,
                    )
                )
            )
