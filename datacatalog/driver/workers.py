"""The threads a stage driver runs its callbacks on: a pool reused across life-cycles.

Each callback (``prepare``, an ``execute`` attempt, ``cleanup``) runs on a worker thread
so that the supervisor can stop waiting for one that is stuck (the stage timeout). A
:class:`Call` is one callback running: the supervisor waits on its ``done`` event, then
reads its value or error (:func:`failure` says what the callback came to).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datacatalog.driver.values import DriverAbort


class Workers:
    """Daemon threads that run callbacks, reused from one life-cycle to the next.

    A callback gets an idle thread when there is one, else a new thread; a thread idle
    for ``linger`` seconds ends. Starting a thread costs about 0.1 ms, handing work to a
    waiting one a sixth of that; a stuck callback only keeps its own thread (daemon: it
    never keeps the process alive).
    """

    def __init__(self, linger: float = 30.0) -> None:
        self._linger = linger
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for work, less the work handed to them
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def submit(self, work: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._tasks.put(work)
        if spawn:
            threading.Thread(
                target=self._loop, name="datacatalog-driver-worker", daemon=True
            ).start()

    def _loop(self) -> None:
        while True:
            try:
                work = self._tasks.get(timeout=self._linger)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # no work was handed to this thread: it ends
                        self._idle -= 1
                        return
                continue  # work was handed over just now: take it
            work()
            with self._lock:
                self._idle += 1


WORKERS = Workers()


@dataclass
class Call:
    """One callback running on its worker thread."""

    phase: str
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


def spawn(phase: str, body: Callable[[], Any], wake: threading.Event) -> Call:
    """Run ``body`` on a worker thread; ``wake`` is set when it ends."""
    call = Call(phase)

    def work() -> None:
        try:
            call.value = body()
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: end cleanly
            call.error = exc
        finally:
            call.done.set()
            wake.set()

    # On a daemon thread: a callback that never returns must not keep the process alive.
    WORKERS.submit(work)
    return call


def failure(call: Call) -> str | None:
    """The reason a finished callback failed, or None for success."""
    if call.error is not None:
        return "aborted" if isinstance(call.error, DriverAbort) else "callback_raised"
    return "callback_returned_false" if call.value is False else None


__all__ = ["WORKERS", "Call", "Workers", "failure", "spawn"]
