"""The runner's time: a :class:`Clock` it reads and sleeps on (tests inject a fake one)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

from datacatalog.clock import utc_now


class Clock(Protocol):
    """The runner's time: ``now()`` and ``sleep(seconds)`` (tests inject a fake one)."""

    def now(self) -> datetime:
        """The current UTC time."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        """The current UTC time, at millisecond precision."""
        return utc_now()

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        time.sleep(max(0.0, seconds))
