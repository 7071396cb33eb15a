"""The threads a stage driver runs its callbacks on: a pool reused across life-cycles.

Each callback (``prepare``, an ``execute`` attempt, ``cleanup``) runs on a worker thread
so that the supervisor can stop waiting for one that is stuck (the stage timeout). A
:class:`Call` is one callback running: the supervisor waits on its ``done`` event, then
reads its value or error (:func:`failure` says what the callback came to).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datacatalog.driver.values import DriverAbort
from datacatalog.threads import Workers

WORKERS = Workers("datacatalog-driver-worker")


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
