"""Clocks that move only when a test (or the code under test, by sleeping) moves them.

:class:`FakeClock` stands for the wall clock and ``sleep`` of the workflow runner;
:class:`FakeMonotonic` for a monotonic clock read by calling it (and its ``sleep``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


class FakeClock:
    """Time that moves only when the runner sleeps."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 1, 1, tzinfo=timezone.utc)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.moment += timedelta(seconds=seconds)


class FakeMonotonic:
    """A monotonic clock at ``start`` that moves only by :meth:`advance` or :meth:`sleep`."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.now += seconds
