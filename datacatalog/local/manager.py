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
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from datacatalog.errors import UnavailableError
from datacatalog.local import binary as binaries
from datacatalog.local import processes
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
    write_json,
)
from datacatalog.store.admin import AdminClient, socket_uri, tcp_uri

DEFAULT_IDLE_TIMEOUT = 900.0
START_TIMEOUT = 60.0
_ATTEMPTS = 4


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
        fstype = refused_filesystem(layout.root)
        if fstype is not None:
            raise LocalServerError(
                f"the data dir {layout.data_dir} is on a {fstype} filesystem; a managed "
                "MongoDB server needs a local disk. Set DATACATALOG_DATA_DIR to a local "
                "folder, or DATACATALOG_MONGODB_URI to a MongoDB server",
                path=str(layout.data_dir),
                filesystem=fstype,
            )
        processes.rotate_log(layout.log)
        previous = read_state(layout)
        use_socket = layout.socket_fits()
        saved_port = previous.port if previous is not None else None
        for attempt in range(1, _ATTEMPTS + 1):
            if use_socket:
                host_entry, port, uri = str(layout.socket), None, socket_uri(str(layout.socket))
                listen = ["--bind_ip", host_entry, "--nounixsocket", "--filePermissions", "0700"]
                with contextlib.suppress(FileNotFoundError):
                    layout.socket.unlink()  # left by a crash: nobody holds the files
            else:
                port = (
                    saved_port
                    if saved_port and processes.port_free(saved_port)
                    else processes.free_port()
                )
                host_entry, uri = f"127.0.0.1:{port}", tcp_uri(port)
                listen = ["--bind_ip", "127.0.0.1", "--port", str(port), "--nounixsocket"]
            command = [
                found.path, "--fork",
                "--dbpath", str(layout.db),
                "--logpath", str(layout.log), "--logappend",
                "--pidfilepath", str(layout.pidfile),
                "--replSet", REPLICA_SET,
                *listen,
                "--wiredTigerCacheSizeGB", "0.25",
                "--oplogSize", "64",
                "--setParameter", "diagnosticDataCollectionEnabled=false",
            ]  # fmt: skip
            moved = previous is not None and previous.host_entry != host_entry
            if moved and layout.has_data():
                status, log_text, output = self._repoint(command, uri, host_entry)
                if status == 0:
                    status, log_text, output = self._launch(command)
            else:
                status, log_text, output = self._launch(command)
            if status == 0:
                break
            text = log_text + output
            if use_socket and "File name too long" in text:
                use_socket = False
                continue
            if not use_socket and "Address already in use" in text and attempt < _ATTEMPTS:
                saved_port = None
                continue
            raise start_failure(
                status,
                command,
                log_text,
                output,
                str(layout.log),
                processes.free_bytes(layout.root),
            )
        pid = processes.read_pid(layout.pidfile)
        try:
            with AdminClient(uri, role="start", timeout=self.start_timeout) as admin:
                admin.make_primary(host_entry, REPLICA_SET, self.start_timeout)
        except Exception as exc:
            processes.terminate(pid, layout)
            message = f"the local MongoDB server started but did not become usable: {exc}"
            raise LocalServerError(message, pid=pid) from exc
        state = ServerState(
            pid=pid,
            uri=uri,
            host_entry=host_entry,
            port=port,
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

    def _launch(self, command: list[str]) -> tuple[int, str, str]:
        """Run the forking launcher; return its status, the new log text and its output."""
        layout = self.layout
        offset = processes.size(layout.log)
        with open(layout.launcher_output, "wb") as out:
            try:
                status = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,  # a file, not a pipe the forked server would keep open
                    stderr=subprocess.STDOUT,
                    timeout=self.start_timeout,
                    check=False,
                    preexec_fn=processes.raise_open_files,
                ).returncode
            except subprocess.TimeoutExpired:
                processes.terminate(processes.read_pid(layout.pidfile), layout)
                status = -int(signal.SIGKILL)
            except OSError as exc:
                return 127, "", f"cannot run {command[0]}: {exc}"
        return (
            status,
            processes.read_from(layout.log, offset),
            processes.read_from(layout.launcher_output, 0),
        )

    def _repoint(self, command: list[str], uri: str, host_entry: str) -> tuple[int, str, str]:
        """Start standalone on the new address, store it as the member's host, shut down."""
        standalone = [part for part in command if part not in ("--replSet", REPLICA_SET)]
        status, log_text, output = self._launch(standalone)
        if status != 0:
            return status, log_text, output
        pid = processes.read_pid(self.layout.pidfile)
        try:
            with AdminClient(uri, role="repoint", timeout=self.start_timeout) as admin:
                admin.repoint_member(host_entry)
                admin.shutdown()
        finally:
            if not processes.wait_unlocked(self.layout, self.start_timeout):
                processes.terminate(pid, self.layout)
            processes.wait_exited(pid, 10.0)
        return 0, "", ""

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
            if not processes.wait_unlocked(layout, timeout):
                processes.terminate(pid, layout)
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
            "size_bytes": processes.tree_size(layout.root),
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
