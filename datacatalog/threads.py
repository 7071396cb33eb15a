"""Daemon threads reused from one task to the next.

Starting a thread waits until the new thread runs, which on a busy host costs a context
switch or more; handing a task to a thread that is already waiting costs a fraction of
that. The stage driver runs its supervisors and callbacks on such threads, and lease
heartbeats their renewals.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable


class Workers:
    """Daemon threads named ``name`` that run tasks, reused from one task to the next.

    A task gets an idle thread when there is one, else a new thread, up to ``limit``
    threads (None: no limit; at the limit a task waits for the first thread free); a thread
    idle for ``linger`` seconds ends. Without a limit a stuck task only keeps its own
    thread (daemon: it never keeps the process alive). A child process made by ``fork``
    starts with none.
    """

    def __init__(
        self, name: str = "datacatalog-worker", linger: float = 30.0, limit: int | None = None
    ) -> None:
        self._name = name
        self._linger = linger
        self._limit = limit
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for work, less the work handed to them
        self._threads = 0
        self._backlog = 0  # tasks waiting for a busy thread (at the limit)
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_threads)

    def _forget_threads(self) -> None:
        """In a forked child: the parent's threads are not there."""
        self._lock = threading.Lock()
        self._idle = self._threads = self._backlog = 0
        self._tasks = queue.SimpleQueue()

    def submit(self, work: Callable[[], None]) -> None:
        """Run ``work()`` on one of the threads (what it raises is its own to handle)."""
        with self._lock:
            spawn = False
            if self._idle > 0:
                self._idle -= 1
            elif self._limit is None or self._threads < self._limit:
                spawn = True
                self._threads += 1
            else:
                self._backlog += 1
        self._tasks.put(work)
        if spawn:
            threading.Thread(target=self._loop, name=self._name, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                work = self._tasks.get(timeout=self._linger)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # no work was handed to this thread: it ends
                        self._idle -= 1
                        self._threads -= 1
                        return
                continue  # work was handed over just now: take it
            work()
            with self._lock:
                if self._backlog > 0:  # a task waits for this thread
                    self._backlog -= 1
                else:
                    self._idle += 1


__all__ = ["Workers"]
