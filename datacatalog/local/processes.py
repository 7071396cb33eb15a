"""The process of a mongod: whether it lives, whether it runs on given data files, stopping it.

A pid read from a pid file or a lock file may be stale, or recycled by an unrelated
process: a process is signalled only while its command line names the data files. The
process table is read through psutil, so a process that ends while it is looked at
counts as gone, and it works where there is no ``/proc`` (macOS). psutil is imported
only here and only when a process is looked at: attaching to a running server never is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from datacatalog.waiting import Clock, Sleep, wait_until

KILL_GRACE = 10.0
"""Seconds a process gets to exit after SIGKILL before it is reported as surviving."""


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped counts as gone)."""
    import psutil  # type: ignore[import-untyped]

    try:
        return bool(psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD))
    except psutil.NoSuchProcess:  # ended, now or earlier
        return False
    except psutil.AccessDenied:  # someone else's, and there
        return True


def runs_on(pid: int, dbpath: Path) -> bool:
    """Whether ``pid`` is a process whose arguments name ``dbpath`` (a recycled pid is not)."""
    import psutil

    try:
        arguments = psutil.Process(pid).cmdline()
    except psutil.Error:  # gone, a zombie, or not ours to read
        return False
    return str(dbpath) in arguments


def wait_exited(
    pid: int | None,
    timeout: float,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; whether it did (no pid: it did)."""
    if pid is None:
        return True
    return wait_until(
        lambda: not alive(pid), timeout=timeout, interval=0.02, clock=clock, sleep=sleep
    )


def terminate(pid: int | None, dbpath: Path, *, grace: float = 10.0) -> bool:
    """Stop a mongod of ``dbpath``: SIGTERM, then SIGKILL if it outlives ``grace`` seconds.

    A pid that is gone, or that runs something else, is left alone.

    Returns:
        Whether no mongod of ``dbpath`` is left under ``pid``.
    """
    if pid is None or not runs_on(pid, dbpath):
        return True
    send(pid, signal.SIGTERM)
    if wait_exited(pid, grace):
        return True
    return kill(pid)


def kill(pid: int, *, timeout: float = KILL_GRACE) -> bool:
    """SIGKILL ``pid`` (no shutdown at all); whether it exited within ``timeout`` s."""
    send(pid, signal.SIGKILL)
    return wait_exited(pid, timeout)


def send(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid``; a process that has already gone is not an error."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
