"""The mongod launcher's process, port and open-file helpers, on real processes.

None of these needs a mongod: a process "runs on" data files when its command line
names them, so a sleeping Python process with the path among its arguments stands in.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacatalog.local import launcher, ports, processes
from datacatalog.local.launcher import OPEN_FILES, ServerFiles, open_file_limits

# Says it runs once it does: until then the child may still show its parent's arguments.
SLEEPER = "import sys, time; print('ready', flush=True); time.sleep(float(sys.argv[1]))"


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose arguments name ``tmp_path / 'db'``, as a mongod on it would."""
    process = subprocess.Popen(
        [sys.executable, "-c", SLEEPER, "120", str(tmp_path / "db")], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        yield process
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _ended_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- liveness ---------------------------------------------------------------------------------


def test_a_process_that_ends_as_it_is_looked_at_counts_as_exited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The pid still answers a signal probe, then its process table entry is gone: the
    # moment a process ends (and, on macOS, every time: there is no /proc to read).
    pid = _ended_pid()
    real_kill = os.kill

    def kill(target: int, sig: int) -> None:
        if target == pid and sig == 0:
            return
        real_kill(target, sig)

    monkeypatch.setattr(os, "kill", kill)
    assert processes.wait_exited(pid, 5.0) is True
    assert processes.alive(pid) is False
    assert processes.runs_on(pid, Path("/anywhere")) is False


def test_a_live_process_is_alive_and_a_reaped_one_is_not(
    sleeper: subprocess.Popen[bytes],
) -> None:
    assert processes.alive(sleeper.pid)
    assert processes.alive(os.getpid())
    assert not processes.alive(_ended_pid())


def test_a_zombie_counts_as_exited() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Not reaped yet: it stays in the process table as a zombie.
        assert processes.wait_exited(child.pid, 30.0)
        assert child.poll() == 0  # it was a zombie until now
    finally:
        child.wait()


def test_waiting_for_a_live_process_gives_up_at_the_timeout(
    sleeper: subprocess.Popen[bytes],
) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    assert processes.wait_exited(sleeper.pid, 3.0, clock=lambda: now[0], sleep=sleep) is False
    assert now[0] == pytest.approx(3.0)
    assert processes.wait_exited(None, 3.0) is True


# -- whose process --------------------------------------------------------------------------


def test_runs_on_reads_the_command_line(sleeper: subprocess.Popen[bytes], tmp_path: Path) -> None:
    assert processes.runs_on(sleeper.pid, tmp_path / "db")
    assert not processes.runs_on(sleeper.pid, tmp_path / "other")
    assert not processes.runs_on(_ended_pid(), tmp_path / "db")


def test_terminate_leaves_a_process_of_other_files_alone(
    sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    assert processes.terminate(sleeper.pid, tmp_path / "other") is True
    assert sleeper.poll() is None
    assert processes.terminate(None, tmp_path / "db") is True


def test_terminate_stops_a_process_of_these_files(
    sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    assert processes.terminate(sleeper.pid, tmp_path / "db", grace=30.0) is True
    assert sleeper.wait(timeout=30) == -15  # SIGTERM was enough


def test_terminate_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            "print('ready', flush=True); time.sleep(120)",
            str(tmp_path / "db"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
        assert processes.terminate(stubborn.pid, tmp_path / "db", grace=0.2) is True
        assert stubborn.wait(timeout=30) == -9
    finally:
        stubborn.kill()
        stubborn.wait()
        if stubborn.stdout is not None:
            stubborn.stdout.close()


# -- ports ------------------------------------------------------------------------------------


def test_a_listening_port_is_not_free_and_free_ports_are_distinct() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not ports.port_free(port)
    assert ports.port_free(ports.free_port())
    found = ports.free_ports(5)
    assert len(set(found)) == 5


# -- the open-file limit ----------------------------------------------------------------------

UNLIMITED = resource.RLIM_INFINITY


@pytest.mark.parametrize(
    ("soft", "hard", "tries"),
    [
        (1024, 1_048_576, [(1_048_576, 1_048_576)]),  # up to the hard limit
        (1024, UNLIMITED, [(OPEN_FILES, UNLIMITED)]),
        (1024, 4096, [(OPEN_FILES, OPEN_FILES), (4096, 4096)]),  # root may raise the hard one
        (4096, 4096, [(OPEN_FILES, OPEN_FILES)]),
        (1_048_576, 1_048_576, []),  # already enough
        (UNLIMITED, UNLIMITED, []),
    ],
)
def test_open_file_limits_to_try(soft: int, hard: int, tries: list[tuple[int, int]]) -> None:
    assert open_file_limits(soft, hard) == tries


def test_the_launched_program_inherits_the_raised_limit(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = OPEN_FILES if hard == UNLIMITED else max(soft, hard)
    files = ServerFiles.in_folder(tmp_path)
    files.dbpath.mkdir()
    probe = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    run = launcher.launch([sys.executable, "-c", probe], files, timeout=60)
    assert run.status == 0 and run.pid is None and not run.timed_out
    assert int(run.output) >= min(expected, OPEN_FILES)


def test_a_launcher_that_cannot_run_is_status_127(tmp_path: Path) -> None:
    files = ServerFiles.in_folder(tmp_path)
    run = launcher.launch([str(tmp_path / "no-such-mongod")], files, timeout=60)
    assert run.status == 127 and run.says("no-such-mongod") and not run.started
