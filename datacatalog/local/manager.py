"""Starting, finding and stopping the managed ``mongod`` of one data dir.

Every process of the user goes through :meth:`LocalServer.attached`, which holds an
exclusive ``flock`` on ``start.lock`` while it decides:

* ``db/mongod.lock`` is flocked and the recorded address answers: attach to that server.
* it is flocked but nothing answers there: a foreign server holds the data files; that is
  an error naming its pid (a held lock is never removed).
* it is free (no server, or a stale file left by a crash, whatever pid it names): start a
  server, wait for a writable primary, write ``state.json`` atomically.

The caller connects before the lock is released, so the idle watcher, which takes the
same lock before it stops an idle server, cannot stop it under a starting client.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from datacatalog.errors import UnavailableError
from datacatalog.local import binary as binaries
from datacatalog.local import launcher, ports, processes
from datacatalog.local.failures import LocalServerError, start_failure
from datacatalog.local.filesystem import refused_filesystem
from datacatalog.local.layout import (
    REPLICA_SET,
    Layout,
    ServerState,
    boot_id,
    exclusive,
    lock_holder_pid,
    lock_is_held,
    read_json,
    read_state,
    this_host,
    wait_released,
    write_json,
)
from datacatalog.store.admin import AdminClient, socket_uri, tcp_uri

DEFAULT_IDLE_TIMEOUT = 900.0
START_TIMEOUT = 60.0
_ATTEMPTS = 4


@dataclass(frozen=True)
class _Address:
    """Where the server listens: its member entry, URI, TCP port (``None``: the socket)
    and the mongod arguments that make it listen there."""

    host_entry: str
    uri: str
    port: int | None
    listen: list[str]


def _tcp_address(saved_port: int | None) -> _Address:
    """The saved port while it is free, else a free one."""
    port = saved_port if saved_port and ports.port_free(saved_port) else ports.free_port()
    return _Address(f"127.0.0.1:{port}", tcp_uri(port), port, launcher.tcp_listen(port))


class LocalServer:
    """The managed server of one data dir.

    Args:
        data_dir: The data dir; the server lives in ``<data dir>/mongo``.
        idle_timeout: Seconds without clients before the server stops (recorded when this
            process starts it).
        start_timeout: Seconds to wait for the start lock and for a writable primary.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.layout = Layout.for_data_dir(data_dir)
        self.idle_timeout = idle_timeout
        self.start_timeout = start_timeout

    # -- attaching ----------------------------------------------------------------------

    @contextlib.contextmanager
    def attached(self) -> Iterator[ServerState]:
        """Find or start the server; yield its state while holding the start lock.

        Raises:
            BinaryUnusableError: A server must be started and no binary runs here.
            LocalServerError: The server cannot be started or a foreign one holds the files.
        """
        layout = self.layout
        layout.make()
        with exclusive(layout.start_lock, self.start_timeout, "the local server is busy"):
            self._refuse_foreign_host()
            state = self._running_state()
            if state is None:
                state = self._start(binaries.find())
            yield state

    def ensure(self) -> ServerState:
        """Find or start the server and return its state."""
        with self.attached() as state:
            return state

    def _refuse_foreign_host(self) -> None:
        state = read_state(self.layout)
        if state is not None and state.uid != os.getuid():
            raise LocalServerError(
                f"the local server folder {self.layout.root} belongs to the user id "
                f"{state.uid}, not {os.getuid()}: each user keeps a data dir of their own "
                "(set DATACATALOG_DATA_DIR), or shares a MongoDB server "
                "(DATACATALOG_MONGODB_URI)",
                path=str(self.layout.root),
            )
        if state is not None and state.host != this_host():
            raise LocalServerError(
                f"the local server folder {self.layout.root} belongs to the host "
                f"{state.host!r}, not {this_host()!r}: a data dir shared between machines "
                "cannot hold a managed server. Set DATACATALOG_MONGODB_URI to a shared "
                "MongoDB server, or, if this machine was only renamed, delete "
                f"{self.layout.state}",
                path=str(self.layout.root),
            )

    def _running_state(self) -> ServerState | None:
        """The state of a live server on these files, ``None`` when none runs.

        Raises:
            LocalServerError: A server holds the files but does not answer where recorded.
        """
        layout = self.layout
        if not lock_is_held(layout.mongod_lock):
            return None
        state = read_state(layout)
        pid = lock_holder_pid(layout)
        if state is not None and state.pid is not None and state.pid == pid:
            # The recorded server holds the files: the caller's connection is the check
            # (a second client just to ping would cost a command's start-up time).
            self._ensure_watcher()
            return state
        if state is not None:
            with AdminClient(state.uri, role="attach", timeout=3.0) as admin:
                if admin.reachable():
                    self._ensure_watcher()
                    return state
        where = f"at {state.uri}" if state is not None else "at any recorded address"
        raise LocalServerError(
            f"another mongod (pid {pid}) is running on {layout.db} but does not answer "
            f"{where}; it was not started by datacatalog. Stop that process (kill {pid}) "
            "or set DATACATALOG_MONGODB_URI to its address",
            pid=pid,
            path=str(layout.db),
        )

    # -- starting -----------------------------------------------------------------------

    def _start(self, found: binaries.Binary) -> ServerState:
        layout = self.layout
        self._refuse_network_filesystem()
        launcher.rotate_log(layout.log)
        address, pid = self._launch_somewhere(found, read_state(layout))
        self._make_primary(address, pid)
        state = ServerState(
            pid=pid,
            uri=address.uri,
            host_entry=address.host_entry,
            port=address.port,
            uid=os.getuid(),
            host=this_host(),
            boot_id=boot_id(),
            version=found.version,
            replica_set=REPLICA_SET,
            idle_timeout=self.idle_timeout,
            started_at=time.time(),
        )
        write_json(layout.state, state.to_json())
        layout.idle.unlink(missing_ok=True)
        self._ensure_watcher()
        return state

    def _refuse_network_filesystem(self) -> None:
        layout = self.layout
        fstype = refused_filesystem(layout.root)
        if fstype is not None:
            raise LocalServerError(
                f"the data dir {layout.data_dir} is on a {fstype} filesystem; a managed "
                "MongoDB server needs a local disk. Set DATACATALOG_DATA_DIR to a local "
                "folder, or DATACATALOG_MONGODB_URI to a MongoDB server",
                path=str(layout.data_dir),
                filesystem=fstype,
            )

    def _launch_somewhere(
        self, found: binaries.Binary, previous: ServerState | None
    ) -> tuple[_Address, int | None]:
        """Start mongod on the socket, else on the saved port, else on a free one.

        Raises:
            LocalServerError: It did not start (one error naming the cause).
        """
        use_socket = self.layout.socket_fits()
        saved_port = previous.port if previous is not None else None
        for _attempt in range(_ATTEMPTS):
            address = self._socket_address() if use_socket else _tcp_address(saved_port)
            launch = self._launch_at(found, address, previous)
            if launch.status == 0:
                return address, launch.pid
            if use_socket and launch.says("File name too long"):
                use_socket = False
            elif not use_socket and launch.says("Address already in use"):
                saved_port = None
            else:
                break
        raise start_failure(
            launch.status,
            self._command(found, address),
            launch.log_text,
            launch.output,
            str(self.layout.log),
            self.layout.free_bytes(),
        )

    def _socket_address(self) -> _Address:
        path = self.layout.socket
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a crash: nobody holds the files
        return _Address(str(path), socket_uri(str(path)), None, launcher.socket_listen(path))

    def _command(
        self, found: binaries.Binary, address: _Address, replica_set: str | None = REPLICA_SET
    ) -> list[str]:
        return launcher.command_line(
            found.path, self.layout.server_files, listen=address.listen, replica_set=replica_set
        )

    def _launch_at(
        self, found: binaries.Binary, address: _Address, previous: ServerState | None
    ) -> launcher.Launch:
        """Launch the member at ``address``, first re-pointing its stored config if it moved."""
        moved = previous is not None and previous.host_entry != address.host_entry
        if moved and self.layout.has_data():
            repointed = self._repoint(found, address)
            if repointed.status != 0:
                return repointed
        return self._launch(self._command(found, address))

    def _launch(self, command: list[str]) -> launcher.Launch:
        return launcher.launch(command, self.layout.server_files, timeout=self.start_timeout)

    def _repoint(self, found: binaries.Binary, address: _Address) -> launcher.Launch:
        """Start standalone on the new address, store it as the member's host, shut down."""
        launch = self._launch(self._command(found, address, replica_set=None))
        if launch.status != 0:
            return launch
        try:
            with AdminClient(address.uri, role="repoint", timeout=self.start_timeout) as admin:
                admin.repoint_member(address.host_entry)
                admin.shutdown()
        finally:
            if not wait_released(self.layout.mongod_lock, self.start_timeout):
                processes.terminate(launch.pid, self.layout.db)
            processes.wait_exited(launch.pid, 10.0)
        return launch

    def _make_primary(self, address: _Address, pid: int | None) -> None:
        """Wait for a writable primary; a server that does not become one is stopped."""
        try:
            with AdminClient(address.uri, role="start", timeout=self.start_timeout) as admin:
                admin.make_primary(address.host_entry, REPLICA_SET, self.start_timeout)
        except Exception as exc:
            processes.terminate(pid, self.layout.db)
            message = f"the local MongoDB server started but did not become usable: {exc}"
            raise LocalServerError(message, pid=pid) from exc

    def _ensure_watcher(self) -> None:
        """Start the idle watcher unless one runs (it holds ``watcher.lock``)."""
        if lock_is_held(self.layout.watcher_lock):
            return
        subprocess.run(
            [sys.executable, "-m", "datacatalog.local.watcher", str(self.layout.root)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=30,
        )

    # -- stopping and status ------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the server cleanly; return the pid it had, ``None`` if none was running.

        Raises:
            LocalServerError: A server survived the shutdown command, SIGTERM and SIGKILL.
        """
        layout = self.layout
        if not layout.root.exists():
            return None
        with exclusive(layout.start_lock, self.start_timeout, "the local server is busy"):
            if not lock_is_held(layout.mongod_lock):
                return None
            state = read_state(layout)
            pid = (state.pid if state is not None else None) or lock_holder_pid(layout)
            if state is not None:
                with AdminClient(state.uri, role="stop", timeout=3.0) as admin:
                    if admin.reachable():
                        admin.shutdown()
            if not wait_released(layout.mongod_lock, timeout):
                processes.terminate(pid, layout.db)
            if lock_is_held(layout.mongod_lock):
                raise LocalServerError(f"the local server (pid {pid}) did not stop", pid=pid)
            # The files are free; let the process finish exiting (its port, its socket).
            processes.wait_exited(pid, 10.0)
            return pid

    def status(self) -> dict[str, Any]:
        """Where the server is, whether it runs, its version, uptime, size and idle time left."""
        layout = self.layout
        state = read_state(layout)
        report: dict[str, Any] = {
            "folder": str(layout.root),
            "running": False,
            "size_bytes": layout.size_bytes(),
            "log": str(layout.log),
        }
        fallback = read_json(layout.fallback)
        if fallback is not None:
            report["fallback"] = fallback.get("reason")
        if state is None or not lock_is_held(layout.mongod_lock):
            return report
        report.update(address=state.uri, pid=state.pid, idle_timeout=state.idle_timeout)
        try:
            with AdminClient(state.uri, role="status", timeout=3.0) as admin:
                info = admin.server_status()
                clients = admin.client_count()
        except UnavailableError as exc:
            report["problem"] = f"the server holds its files but does not answer: {exc}"
            return report
        report.update(
            running=True,
            version=str(info.get("version", state.version)),
            uptime_seconds=float(info.get("uptime", 0)),
            clients=clients,
        )
        idle = read_json(layout.idle) or {}
        since = idle.get("idle_since")
        if clients > 0 or not isinstance(since, (int, float)):
            report["idle_left_seconds"] = state.idle_timeout
        else:
            report["idle_left_seconds"] = max(0.0, state.idle_timeout - (time.time() - since))
        return report
