"""Processes the fault tests break on purpose: a real mongod and a real service.

:class:`ControlledMongod` is a throw-away ``mongod`` on a data folder and port that stay
the same across restarts, so it can be paused (SIGSTOP), resumed, killed (SIGKILL) and
started again on the same data. :class:`ServiceProcess` is ``python -m
datacatalog.service`` in a child process over that server, with the same controls.

:class:`RunnerProcess` is a stage driver or a workflow runner
(:mod:`tests.faults.children`) in a child process over that server, killed (SIGKILL) once
its work has begun.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from datacatalog.testing.mongod import MongodServer

SECRET = "fault-secret-" + "f" * 32


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: object, *, timeout: float, what: str, step: float = 0.05) -> None:
    """Poll ``condition()`` until it is true; fail naming ``what`` after ``timeout`` s."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class ControlledMongod:
    """A real mongod that can be paused, killed and restarted on the same data."""

    def __init__(self, root: Path) -> None:
        self.dbpath = root / "db"
        self.dbpath.mkdir(parents=True)
        self.port = free_port()
        self._server: MongodServer | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?replicaSet=rs0"

    @property
    def pid(self) -> int:
        assert self._server is not None and self._server.pid is not None
        return self._server.pid

    def start(self) -> ControlledMongod:
        self._server = MongodServer(dbpath=self.dbpath, port=self.port).start()
        return self

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets open and answers nothing."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush beyond what the journal already holds."""
        pid = self.pid
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), timeout=20, what=f"mongod {pid} to die")
        assert self._server is not None
        self._server.stop()  # forgets the dead pid, removes the log folder (not dbpath)

    def restart(self) -> None:
        """Start again on the same data folder and port."""
        self.start()

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(ProcessLookupError):
                self.resume()
            self._server.stop()


class ServiceProcess:
    """``python -m datacatalog.service`` over ``mongodb_uri``, in a child process."""

    def __init__(
        self,
        mongodb_uri: str,
        data_dir: Path,
        *,
        mongodb_timeout: float,
        mongodb_failover: float = 2.0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env: Mapping[str, str] = {
            **os.environ,
            "DATACATALOG_MONGODB_URI": mongodb_uri,
            "DATACATALOG_MONGODB_DATABASE": "faults",
            "DATACATALOG_DATA_DIR": str(data_dir),
            "DATACATALOG_SECRET": SECRET,
            "DATACATALOG_MONGODB_TIMEOUT": str(mongodb_timeout),
            "DATACATALOG_MONGODB_FAILOVER": str(mongodb_failover),
        }
        self.log = data_dir / "service.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> ServiceProcess:
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "datacatalog.service", "--port", str(self.port)],
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._ready, timeout=60, what=f"the service on {self.url}", step=0.1)
        return self

    def _ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"the service exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait(timeout=20)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.resume()
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=20)


class RunnerProcess:
    """A driver or workflow runner on one job, in a child process that can be SIGKILLed."""

    def __init__(
        self, kind: str, mongodb_uri: str, data_dir: Path, job_uuid: str, *, lease_ttl: float
    ) -> None:
        self.marker = data_dir / f"{kind}-executing"
        self.log = data_dir / f"{kind}.log"
        self.argv = [
            sys.executable,
            "-m",
            "tests.faults.children",
            kind,
            mongodb_uri,
            str(data_dir),
            job_uuid,
            str(lease_ttl),
            str(self.marker),
        ]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RunnerProcess:
        """Start it and wait until its work is under way (the marker exists)."""
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._executing, timeout=60, what=f"{self.argv[3]} to start executing")
        return self

    def _executing(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"the runner exited: {self.log.read_text()[-2000:]}")
        return self.marker.exists()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no terminal event, no lease release."""
        assert self._process is not None
        self._process.kill()
        self._process.wait(timeout=20)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self.kill()


@contextmanager
def paused(target: ControlledMongod | ServiceProcess) -> Iterator[None]:
    """Keep ``target`` stopped (SIGSTOP) for the duration of the block."""
    target.pause()
    try:
        yield
    finally:
        target.resume()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed mongod is reaped by init (it forked away from us); until then it is a zombie.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
