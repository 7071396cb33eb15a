"""Running each attempt in a child process of its own.

A child that dies (``os._exit``, a signal, running out of memory) ends that attempt as
failed with an error naming its exit code; the runner and the other attempts go on. At
most ``pool_size`` children run at once. Operations and their arguments travel by pickle,
so operations must be importable (defined at module level).

Each child leads a process group of its own and runs with the runner's environment as it
is when the attempt is sent (so a plugin loaded since the worker server started is on its
``PATH`` and ``PYTHONPATH``). A cancel is cooperative first (``ctx.cancel_requested``);
an attempt still running ``cancel_grace`` seconds later has its process group terminated
(SIGTERM, then SIGKILL :data:`KILL_GRACE` seconds later), so what the operation started
with ``subprocess`` stops too.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Any

from datacatalog.clock import utc_now
from datacatalog.errors import InvalidRequestError
from datacatalog.orchestrator.executors.base import Finished, Started
from datacatalog.orchestrator.executors.pool import PoolExecutor, check_pool_size
from datacatalog.orchestrator.worker import Invocation, failure, run_attempt

START_METHODS = ("spawn", "forkserver", "fork")

KILL_GRACE = 2.0
"""Seconds between the SIGTERM and the SIGKILL sent to a cancelled attempt's process group."""


def _child(conn: Connection, invocation: Invocation, cancel: Any, environ: dict[str, str]) -> None:
    if hasattr(os, "setsid"):
        os.setsid()  # its own process group: a hard cancel stops what the operation started
    os.environ.clear()
    os.environ.update(environ)
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
        cancel_grace: Seconds running attempts get after a cancel before their process
            group is terminated (None: never, the cancel stays cooperative).
    """

    pickles = True
    thread_name_prefix = "datacatalog-child"

    def __init__(
        self,
        pool_size: int = 4,
        start_method: str | None = None,
        *,
        cancel_grace: float | None = 5.0,
    ) -> None:
        check_pool_size(pool_size, "ProcessExecutor")
        if cancel_grace is not None and (
            isinstance(cancel_grace, bool)
            or not isinstance(cancel_grace, (int, float))
            or not cancel_grace >= 0
        ):
            raise InvalidRequestError(
                f"ProcessExecutor: cancel_grace must be a number of seconds >= 0 or None, "
                f"not {cancel_grace!r}"
            )
        self.cancel_grace = cancel_grace
        method = start_method or ("forkserver" if sys.platform.startswith("linux") else "spawn")
        if method not in START_METHODS:
            raise InvalidRequestError(
                f"ProcessExecutor: start_method must be one of {', '.join(START_METHODS)}, "
                f"not {method!r}"
            )
        self.start_method = method
        self._context: Any = multiprocessing.get_context(method)
        super().__init__(pool_size, self._context.Event())
        self._children: dict[tuple[str, int], Any] = {}  # running attempts' processes
        self._terminated: set[tuple[str, int]] = set()
        self._timers: list[threading.Timer] = []

    def start(self, execution_id: str, emit: Any) -> None:
        """Start the pool; no attempt is terminated yet."""
        super().start(execution_id, emit)
        with self._lock:
            self._terminated = set()

    def cancel(self) -> list[tuple[str, int]]:
        """Raise the flag, drop queued attempts, and terminate the running ones after the grace."""
        dropped = super().cancel()
        if self.cancel_grace is not None:
            self._later(self.cancel_grace, self._terminate_running)
        return dropped

    def _later(self, seconds: float, action: Any) -> None:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    def _terminate_running(self) -> None:
        """SIGTERM to the process group of every attempt still running; SIGKILL later."""
        with self._lock:
            running = dict(self._children)
            self._terminated.update(running)
        groups = []
        for child in running.values():
            if child.exitcode is None and child.pid is not None:
                groups.append(child.pid)
                _signal_group(child, signal.SIGTERM)
        if groups:
            self._later(KILL_GRACE, lambda: _kill_groups(groups))

    def close(self) -> None:
        """Wait for running attempts, stop the pool and the pending terminations."""
        super().close()
        with self._lock:
            timers, self._timers = self._timers, []
            self._children.clear()
        for timer in timers:
            timer.cancel()

    def describe(self) -> str:
        """``process(pool_size=N, start_method=M)``."""
        return f"process(pool_size={self.pool_size}, start_method={self.start_method})"

    def run(self, invocation: Invocation) -> None:
        """Run the attempt in a child process and watch it from this pool thread."""
        started = utc_now()
        receiver, sender = self._context.Pipe(duplex=False)
        which = (invocation.task, invocation.attempt)
        child = self._context.Process(
            target=_child,
            args=(sender, invocation, self._cancel, dict(os.environ)),
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
        with self._lock:
            self._children[which] = child
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
            with self._lock:
                self._children.pop(which, None)
                terminated = which in self._terminated
        if not finished and terminated:
            self.emit(
                Finished(
                    failure(
                        invocation,
                        {
                            "type": "AttemptTerminated",
                            "message": (
                                f"task {invocation.task} attempt {invocation.attempt} was still "
                                f"running {self.cancel_grace:g} s after the execution was "
                                f"cancelled: its process group (pid {child.pid}) was terminated "
                                f"(exit code {child.exitcode})"
                            ),
                            "traceback": None,
                        },
                        started=started,
                    )
                )
            )
        elif not finished:
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


def _signal_group(child: Any, signum: int) -> None:
    """Send ``signum`` to the child's process group (to the child alone where it has none)."""
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError, AttributeError):
        # Not yet a group leader (it had not reached setsid), or no process groups here.
        with suppress(ProcessLookupError, PermissionError, OSError):
            os.kill(child.pid, signum)


def _kill_groups(pids: list[int]) -> None:
    """SIGKILL what is left of the process groups ``pids`` (stragglers ignoring SIGTERM)."""
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError, AttributeError):
            os.killpg(pid, signal.SIGKILL)
