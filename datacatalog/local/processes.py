"""Process and file helpers of the managed server: ports, pids, sizes, stopping a mongod."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import time
from pathlib import Path

from datacatalog.local.layout import Layout, lock_is_held

LOG_ROTATE_BYTES = 50 << 20
OPEN_FILES = 64000


def raise_open_files() -> None:
    """In the launcher: raise the open-file limit (a low ``ulimit -n`` starves mongod)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def rotate_log(log: Path) -> None:
    """Keep one previous log once the log grows past :data:`LOG_ROTATE_BYTES`."""
    if size(log) > LOG_ROTATE_BYTES:
        with contextlib.suppress(OSError):
            os.replace(log, log.with_name(log.name + ".1"))


def size(path: Path) -> int:
    """The size of a file in bytes (0 when missing)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def free_bytes(path: Path) -> int | None:
    """Free bytes on the filesystem holding ``path`` (``None`` when unknown)."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def tree_size(root: Path) -> int:
    """Bytes taken by the files under ``root``."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def read_from(path: Path, offset: int) -> str:
    """A file's text from ``offset`` on (empty when unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or ``None``."""
    text = read_from(path, 0).strip()
    return int(text) if text.isdigit() else None


def port_free(port: int) -> bool:
    """Whether a loopback TCP port can be listened on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As mongod does: a port left in TIME_WAIT by the last server is free to reuse.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_unlocked(layout: Layout, timeout: float) -> bool:
    """Wait up to ``timeout`` s for mongod to release its lock; whether it did."""
    deadline = time.monotonic() + timeout
    while lock_is_held(layout.mongod_lock):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def wait_exited(pid: int | None, timeout: float) -> None:
    """Wait up to ``timeout`` s for ``pid`` to exit (a zombie counts as exited)."""
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return  # not ours to watch
        if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[:1] == ["Z"]:
            return
        time.sleep(0.02)


def runs_on(pid: int, layout: Layout) -> bool:
    """Whether ``pid`` is a mongod on these data files (a recycled pid is never killed)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return os.fsencode(layout.db) in arguments


def terminate(pid: int | None, layout: Layout) -> None:
    """SIGTERM, then SIGKILL, a mongod of these files."""
    if pid is None or not runs_on(pid, layout):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if wait_unlocked(layout, 10.0):
            return
