"""Where the managed server keeps its files, and the state file other processes read.

Layout of ``<data dir>/mongo/`` (mode 0700)::

    db/            the data files; mongod holds a flock on db/mongod.lock while it runs
    mongod.log     the server log (appended to, rotated once it grows large)
    mongod.pid     the server's pid file
    m.sock         the Unix socket the server listens on (when the path is short enough)
    fork.out       what the launcher printed while forking the server
    state.json     pid, address, uid, host, boot id, version, replica set, idle timeout
    start.lock     exclusive flock (filelock) held while a process starts or attaches
    watcher.lock   flock (filelock) held by the idle watcher while it runs
    idle.json      what the idle watcher last saw (clients, idle since)
    fallback.json  why the JSON engine is used instead, once the warning was shown
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import filelock

from datacatalog.errors import StorageFailureError, UnavailableError
from datacatalog.local.launcher import ServerFiles
from datacatalog.waiting import wait_until

SOCKET_PATH_LIMIT = 100
"""Longest socket path (bytes) used; longer ones fail with "File name too long"."""

REPLICA_SET = "rs0"


@dataclass(frozen=True)
class Layout:
    """The paths of one managed server, under ``<data dir>/mongo``."""

    root: Path

    @classmethod
    def for_data_dir(cls, data_dir: str | os.PathLike[str]) -> Layout:
        """The layout under ``data_dir`` (made absolute, so every process agrees)."""
        return cls(Path(data_dir).expanduser().absolute() / "mongo")

    @property
    def data_dir(self) -> Path:
        """The data dir holding this layout."""
        return self.root.parent

    @property
    def db(self) -> Path:
        """The data files (``--dbpath``)."""
        return self.root / "db"

    @property
    def mongod_lock(self) -> Path:
        """The file mongod flocks while it runs."""
        return self.db / "mongod.lock"

    @property
    def log(self) -> Path:
        """The server log."""
        return self.root / "mongod.log"

    @property
    def pidfile(self) -> Path:
        """The server's pid file."""
        return self.root / "mongod.pid"

    @property
    def socket(self) -> Path:
        """The Unix socket path (used only when :meth:`socket_fits`)."""
        return self.root / "m.sock"

    @property
    def state(self) -> Path:
        """The state file."""
        return self.root / "state.json"

    @property
    def start_lock(self) -> Path:
        """The start lock."""
        return self.root / "start.lock"

    @property
    def watcher_lock(self) -> Path:
        """The idle watcher's lock."""
        return self.root / "watcher.lock"

    @property
    def idle(self) -> Path:
        """What the idle watcher last saw."""
        return self.root / "idle.json"

    @property
    def fallback(self) -> Path:
        """The record of a fallback warning already shown."""
        return self.root / "fallback.json"

    @property
    def launcher_output(self) -> Path:
        """What the launching mongod printed while forking."""
        return self.root / "fork.out"

    @property
    def server_files(self) -> ServerFiles:
        """The files the launcher is given: data, log, pid file, launcher output."""
        return ServerFiles(
            dbpath=self.db, log=self.log, pidfile=self.pidfile, output=self.launcher_output
        )

    def socket_fits(self) -> bool:
        """Whether the socket path is short enough for a Unix socket."""
        return len(os.fsencode(self.socket)) <= SOCKET_PATH_LIMIT

    def has_data(self) -> bool:
        """Whether a server has ever written data files here."""
        return (self.db / "WiredTiger").exists()

    def size_bytes(self) -> int:
        """Bytes taken by the files of the server (data, log, state)."""
        total = 0
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(folder, name)).st_size
        return total

    def free_bytes(self) -> int | None:
        """Free bytes on the filesystem holding the server (``None`` when unknown)."""
        try:
            stats = os.statvfs(self.root)
        except OSError:
            return None
        return stats.f_bavail * stats.f_frsize

    def make(self) -> None:
        """Create the folders (0700); a failure is a storage failure naming the path."""
        try:
            self.db.mkdir(parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
        except OSError as exc:
            raise StorageFailureError(
                f"cannot create the local server folder {self.root}: {exc.strerror or exc}",
                path=str(self.root),
            ) from exc


@dataclass(frozen=True)
class ServerState:
    """What ``state.json`` records about the managed server."""

    pid: int | None
    uri: str
    host_entry: str
    port: int | None
    uid: int
    host: str
    boot_id: str
    version: str
    replica_set: str
    idle_timeout: float
    started_at: float

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerState:
        """Read the JSON form; raises ``KeyError``/``TypeError``/``ValueError`` if malformed."""
        return cls(
            pid=None if data["pid"] is None else int(data["pid"]),
            uri=str(data["uri"]),
            host_entry=str(data["host_entry"]),
            port=None if data["port"] is None else int(data["port"]),
            uid=int(data["uid"]),
            host=str(data["host"]),
            boot_id=str(data["boot_id"]),
            version=str(data["version"]),
            replica_set=str(data["replica_set"]),
            idle_timeout=float(data["idle_timeout"]),
            started_at=float(data["started_at"]),
        )


def read_state(layout: Layout) -> ServerState | None:
    """The recorded state, or ``None`` when there is none or it is unreadable."""
    data = read_json(layout.state)
    if data is None:
        return None
    try:
        return ServerState.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or ``None`` when missing or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def this_host() -> str:
    """This machine's host name."""
    return socket.gethostname()


def boot_id() -> str:
    """An identifier of the current boot (empty where the system has none)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def lock_is_held(path: Path) -> bool:
    """Whether some process holds a ``flock`` on ``path`` (a missing file is not held).

    The probe takes the lock for an instant; callers hold the start lock, so no
    manager can be starting a server on the same files meanwhile.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock the probe took
    return False


def lock_holder_pid(layout: Layout) -> int | None:
    """The pid mongod wrote into its lock file, when there is one."""
    try:
        text = layout.mongod_lock.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def wait_released(path: Path, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the ``flock`` on ``path`` to be released; whether it was."""
    return wait_until(lambda: not lock_is_held(path), timeout=timeout, interval=0.02)


@contextlib.contextmanager
def exclusive(path: Path, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``, waiting up to ``timeout`` seconds.

    Raises:
        UnavailableError: The lock stayed held by another process for ``timeout`` seconds.
    """
    lock = filelock.FileLock(path, timeout=timeout, mode=0o600)
    try:
        lock.acquire(poll_interval=0.02)
    except filelock.Timeout:
        raise UnavailableError(
            f"{what}: {path} stayed locked by another process for "
            f"{timeout:g} s; nothing was changed",
            path=str(path),
        ) from None
    try:
        yield
    finally:
        lock.release()


def try_exclusive(path: Path) -> filelock.BaseFileLock | None:
    """Take an exclusive ``flock`` on ``path`` without waiting; the lock, or ``None`` if held.

    The caller releases it (:meth:`filelock.BaseFileLock.release`), or exits.
    """
    lock = filelock.FileLock(path, timeout=0, mode=0o600)
    try:
        lock.acquire()
    except filelock.Timeout:
        return None
    return lock
