"""Starting a mongod: its command line, the forking launch and what the launch left.

Every mongod the project runs starts here: the managed server of a data dir
(:mod:`datacatalog.local.manager`) and the throw-away servers of the tests
(:mod:`datacatalog.testing.mongod`). ``mongod --fork`` returns once the server listens
(status 0) or has failed (the status and the log say why, see
:mod:`datacatalog.local.failures`); the forked server writes its pid to the pid file.
What the launcher prints goes to a file, never a pipe: the forked server would keep a
pipe open. Before the launcher runs, its open-file limit is raised: a low ``ulimit -n``
starves mongod, which keeps a file per collection and index.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from datacatalog.local import processes

OPEN_FILES = 64000
"""Descriptors a mongod should be allowed (MongoDB's own recommendation)."""

LOG_ROTATE_BYTES = 50 << 20
"""Size past which :func:`rotate_log` keeps the log as ``<log>.1`` and starts a new one."""


@dataclass(frozen=True)
class ServerFiles:
    """Where a mongod keeps its data, log and pid, and where its launcher's output goes."""

    dbpath: Path
    log: Path
    pidfile: Path
    output: Path

    @classmethod
    def in_folder(cls, folder: Path, *, dbpath: Path | None = None) -> ServerFiles:
        """The files of a server in ``folder``: ``db/`` (unless ``dbpath`` is given),
        ``mongod.log``, ``mongod.pid`` and ``fork.out``."""
        return cls(
            dbpath=folder / "db" if dbpath is None else dbpath,
            log=folder / "mongod.log",
            pidfile=folder / "mongod.pid",
            output=folder / "fork.out",
        )


def tcp_listen(port: int) -> list[str]:
    """The arguments that make mongod listen on loopback TCP ``port`` only."""
    return ["--bind_ip", "127.0.0.1", "--port", str(port), "--nounixsocket"]


def socket_listen(path: Path) -> list[str]:
    """The arguments that make mongod listen on the Unix socket ``path`` only (mode 0700)."""
    return ["--bind_ip", str(path), "--nounixsocket", "--filePermissions", "0700"]


def command_line(
    binary: str,
    files: ServerFiles,
    *,
    listen: Sequence[str],
    replica_set: str | None,
    cache_size_gb: float = 0.25,
    oplog_mb: int = 64,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command that forks a mongod on ``files``.

    Args:
        binary: The ``mongod`` to run.
        files: Its data folder, log (appended to), pid file.
        listen: Where it listens (:func:`tcp_listen`, :func:`socket_listen`).
        replica_set: The replica set it is a member of; ``None`` runs it standalone.
        cache_size_gb: The WiredTiger cache, small: these servers share the machine.
        oplog_mb: The oplog size.
        extra: More arguments (``--setParameter`` switches, engine settings).
    """
    member = ["--replSet", replica_set] if replica_set is not None else []
    return [
        binary, "--fork",
        "--dbpath", str(files.dbpath),
        "--logpath", str(files.log), "--logappend",
        "--pidfilepath", str(files.pidfile),
        *member,
        *listen,
        "--wiredTigerCacheSizeGB", f"{cache_size_gb:g}",
        "--oplogSize", str(oplog_mb),
        "--setParameter", "diagnosticDataCollectionEnabled=false",
        *extra,
    ]  # fmt: skip


@dataclass(frozen=True)
class Launch:
    """What one run of the forking launcher did.

    Attributes:
        status: The launcher's exit status; 0 when the server runs (negative: killed by
            that signal; 127: it could not be run at all).
        log_text: What this launch appended to the server log.
        output: What the launcher printed.
        pid: The pid the server wrote, if any.
        timed_out: The launcher did not return in time (its server was stopped).
    """

    status: int
    log_text: str
    output: str
    pid: int | None
    timed_out: bool = False

    @property
    def started(self) -> bool:
        """Whether a server runs now."""
        return self.status == 0 and self.pid is not None

    def says(self, text: str) -> bool:
        """Whether the log or the launcher's output contains ``text``."""
        return text in self.log_text or text in self.output


def launch(command: Sequence[str], files: ServerFiles, *, timeout: float) -> Launch:
    """Run the forking launcher of :func:`command_line` and wait for it to return.

    A launcher still running after ``timeout`` seconds is killed, and so is the server
    it may have forked.
    """
    offset = size(files.log)
    files.pidfile.unlink(missing_ok=True)  # the pid read afterwards is this launch's
    timed_out = False
    with open(files.output, "wb") as out:
        try:
            status = subprocess.run(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                preexec_fn=raise_open_files,
            ).returncode
        except subprocess.TimeoutExpired:
            processes.terminate(read_pid(files.pidfile), files.dbpath)
            status, timed_out = -int(signal.SIGKILL), True
        except OSError as exc:
            return Launch(127, "", f"cannot run {command[0]}: {exc}", None)
    return Launch(
        status=status,
        log_text=read_from(files.log, offset),
        output=read_from(files.output, 0),
        pid=read_pid(files.pidfile),
        timed_out=timed_out,
    )


# -- the open-file limit ------------------------------------------------------------------


def open_file_limits(soft: int, hard: int) -> list[tuple[int, int]]:
    """The ``(soft, hard)`` limits to try, in order, to allow :data:`OPEN_FILES` descriptors.

    A hard limit below it is raised where the system allows it (as root); otherwise the
    soft limit goes up to the hard one (to :data:`OPEN_FILES` when the hard one is
    unlimited). Nothing is tried when the soft limit is already high enough.
    """
    unlimited = resource.RLIM_INFINITY
    tries: list[tuple[int, int]] = []
    if hard != unlimited and hard < OPEN_FILES:
        tries.append((OPEN_FILES, OPEN_FILES))
    wanted = OPEN_FILES if hard == unlimited else hard
    if soft != unlimited and soft < wanted:
        tries.append((wanted, hard))
    return tries


def raise_open_files() -> None:
    """In the launcher, before it runs mongod: raise the open-file limit it inherits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limits in open_file_limits(soft, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
        except (ValueError, OSError):
            continue
        return


# -- the files a launch leaves --------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or ``None``."""
    text = read_from(path, 0).strip()
    return int(text) if text.isdigit() else None


def read_from(path: Path, offset: int) -> str:
    """A file's text from ``offset`` on (empty when unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def size(path: Path) -> int:
    """The size of a file in bytes (0 when missing)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def rotate_log(log: Path) -> None:
    """Keep one previous log once the log grows past :data:`LOG_ROTATE_BYTES`."""
    if size(log) > LOG_ROTATE_BYTES:
        with contextlib.suppress(OSError):
            os.replace(log, log.with_name(log.name + ".1"))
