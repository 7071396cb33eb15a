"""The idle watcher: stops the managed server after a while without clients.

Started detached (``python -m datacatalog.local.watcher <mongo folder>``) by the process
that starts or attaches to the server. At most one runs per server: it holds an exclusive
``flock`` on ``watcher.lock``. It polls the server's connections, ignoring the manager's
own, records what it saw in ``idle.json`` (for ``datacatalog local status``), and once
the idle time recorded in ``state.json`` has passed with no client, it takes the start
lock, checks once more and sends the ``shutdown`` command. It exits when the server is gone.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from datacatalog.errors import UnavailableError
from datacatalog.local.layout import (
    Layout,
    exclusive,
    lock_is_held,
    read_state,
    try_exclusive,
    wait_released,
    write_json,
)
from datacatalog.store.admin import AdminClient


class IdleTracker:
    """Decides when a server has been idle long enough.

    Args:
        timeout: Seconds without clients before the server should stop.
        clock: A monotonic clock (seconds).
    """

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self.idle_since: float | None = None

    def observe(self, clients: int) -> bool:
        """Record how many clients there are now; return whether to stop the server."""
        now = self._clock()
        if clients > 0:
            self.idle_since = None
            return False
        if self.idle_since is None:
            self.idle_since = now
        return now - self.idle_since >= self.timeout

    def idle_for(self) -> float:
        """Seconds idle so far (0 while clients are connected)."""
        return 0.0 if self.idle_since is None else self._clock() - self.idle_since


def poll_interval(timeout: float) -> float:
    """How often to look: a twentieth of the timeout, between 0.1 and 5 seconds."""
    return min(5.0, max(0.1, timeout / 20))


def watch(layout: Layout) -> None:
    """Watch the server of ``layout`` until it is gone (stopping it once idle)."""
    state = read_state(layout)
    if state is None:
        return
    tracker = IdleTracker(state.idle_timeout)
    recorded: tuple[int, bool] | None = None
    with AdminClient(state.uri, role="watch", timeout=5.0) as admin:
        while lock_is_held(layout.mongod_lock):
            try:
                clients = admin.client_count()
            except UnavailableError:  # stopping, or busy: look again
                time.sleep(poll_interval(tracker.timeout))
                continue
            stop = tracker.observe(clients)
            seen = (clients, tracker.idle_since is not None)
            if seen != recorded:
                idle_since = None
                if tracker.idle_since is not None:
                    idle_since = time.time() - tracker.idle_for()
                write_json(layout.idle, {"clients": clients, "idle_since": idle_since})
                recorded = seen
            if stop and _stop_if_still_idle(layout, admin):
                return
            time.sleep(poll_interval(tracker.timeout))


def _stop_if_still_idle(layout: Layout, admin: AdminClient) -> bool:
    """Under the start lock, shut the server down if it still has no client."""
    try:
        with exclusive(layout.start_lock, 5.0, "idle stop"):
            if admin.client_count() > 0:
                return False
            admin.shutdown()
            wait_released(layout.mongod_lock, 30.0)
            write_json(layout.idle, {"clients": 0, "idle_since": None, "stopped_at": time.time()})
            return True
    except (UnavailableError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    """Detach, take the watcher lock and watch; the parent returns at once."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m datacatalog.local.watcher <mongo folder>", file=sys.stderr)
        return 2
    layout = Layout(Path(args[0]))
    if os.fork() > 0:
        return 0  # the starter waits for this one only
    os.setsid()
    os.chdir("/")  # never keep a folder or mount busy
    lock = try_exclusive(layout.watcher_lock)
    if lock is None:
        os._exit(0)  # another watcher has it
    try:
        watch(layout)
    finally:
        with contextlib.suppress(OSError):
            lock.release()
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
