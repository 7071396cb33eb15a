"""Waiting for a condition, up to a deadline.

Starting and stopping a server is mostly waiting: for a lock to be released, a process
to exit, a member to become primary. :func:`wait_until` is the one loop that does it. It
takes its clock and its sleep as arguments, so a test drives it without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar, overload

_T = TypeVar("_T")

Clock = Callable[[], float]
"""A monotonic clock, in seconds."""

Sleep = Callable[[float], None]
"""Sleeps for a number of seconds."""


@overload
def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = ...,
    clock: Clock = ...,
    sleep: Sleep = ...,
) -> bool: ...


@overload
def wait_until(
    condition: Callable[[], _T | None],
    *,
    timeout: float,
    interval: float = ...,
    clock: Clock = ...,
    sleep: Sleep = ...,
) -> _T | None: ...


def wait_until(
    condition: Callable[[], object],
    *,
    timeout: float,
    interval: float = 0.05,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> object:
    """Call ``condition`` until it is met or ``timeout`` seconds have passed.

    The condition is not met while it returns ``None`` or ``False``; anything else ends
    the wait and is returned (so a condition may return what it found, an index 0 too).
    It is called at once, every ``interval`` seconds, and a last time once the time is up.

    Args:
        condition: What to check; it should not raise.
        timeout: Seconds to wait at most (0: check once).
        interval: Seconds between checks.
        clock: Where the time comes from.
        sleep: How to wait between checks.

    Returns:
        The first value that met the condition, else the last value it returned.
    """
    deadline = clock() + timeout
    while True:
        value = condition()
        if value is not None and value is not False:
            return value
        left = deadline - clock()
        if left <= 0:
            return value
        sleep(min(interval, left))
