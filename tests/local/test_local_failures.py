"""The managed server's start failures, filesystem refusal and idle decisions, without a server.

Each cause LOCAL_CATALOG.md lists is classified from the exit status and log lines a real
mongod 6.0 produces (the lines here are copied from real logs of those failures); the
real-condition tests are in ``test_local_server.py``.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from datacatalog.errors import UnavailableError
from datacatalog.local import BinaryUnusableError, LocalServerError
from datacatalog.local.failures import describe_exit, error_lines, start_failure
from datacatalog.local.filesystem import filesystem_type, refused_filesystem
from datacatalog.local.watcher import IdleTracker, poll_interval
from tests.support.clocks import FakeMonotonic

COMMAND = ["/opt/mongod", "--fork", "--dbpath", "/d/mongo/db"]


def log_line(severity: str, msg: str, **attr: str) -> str:
    fields = ",".join(f'"{k}":"{v}"' for k, v in attr.items())
    return (
        f'{{"t":{{"$date":"2026-12-01T10:00:00.000+00:00"}},"s":"{severity}",  "c":"STORAGE",'
        f'  "id":1, "ctx":"initandlisten","msg":"{msg}","attr":{{{fields}}}}}'
    )


@pytest.mark.parametrize(
    ("status", "text", "cause"),
    [
        (48, log_line("E", "Error setting up listener", error="Address already in use"), "port"),
        (100, log_line("E", "DBPathInUse: Unable to lock the lock file"), "same data files"),
        (100, log_line("E", "bind() failed", error="File name too long"), "socket path"),
        (62, log_line("F", "This version of MongoDB is too recent"), "incompatible"),
        (127, "error while loading shared libraries: libcrypto.so.1.1", "shared libraries"),
        (-signal.SIGILL, "", "SIGILL"),
        (132, "", "SIGILL"),
        (14, log_line("E", "WiredTiger error", message="No space left on device"), "disk"),
        (14, log_line("E", "WiredTiger error", message="handle-open: File exists"), "network"),
        (-signal.SIGSEGV, "", "SIGSEGV"),
        (3, "", "exited with status 3"),
    ],
)
def test_each_exit_is_one_named_cause(status: int, text: str, cause: str) -> None:
    assert cause in describe_exit(status, text)


def test_start_failure_names_cause_command_and_the_logs_error_lines() -> None:
    log = "\n".join(
        [
            log_line("I", "Build Info"),
            log_line("E", "Error setting up listener", error="Address already in use"),
            log_line("F", "Fatal assertion"),
        ]
    )
    error = start_failure(48, COMMAND, log, "", "/d/mongo/mongod.log")
    message = str(error)
    assert isinstance(error, LocalServerError) and isinstance(error, UnavailableError)
    assert "its TCP port is already in use" in message
    assert "command: /opt/mongod --fork --dbpath /d/mongo/db" in message
    assert "errors in /d/mongo/mongod.log" in message
    assert "Fatal assertion" in message and "Build Info" not in message
    assert error.details["status"] == 48


def test_a_binary_that_cannot_run_here_is_a_binary_error() -> None:
    assert isinstance(start_failure(127, COMMAND, "", "", "log"), BinaryUnusableError)
    assert isinstance(start_failure(-signal.SIGILL, COMMAND, "", "", "log"), BinaryUnusableError)
    assert not isinstance(start_failure(48, COMMAND, "", "", "log"), BinaryUnusableError)


def test_a_silent_failure_on_a_nearly_full_disk_is_put_down_to_the_disk() -> None:
    error = start_failure(1, COMMAND, "", "", "log", free_bytes=4096)
    assert "disk holding the data dir is full" in str(error)
    assert "disk" not in str(start_failure(1, COMMAND, "", "", "log", free_bytes=10 << 30))


def test_error_lines_keep_errors_and_fatals_only() -> None:
    text = "\n".join(log_line(s, f"m{i}") for i, s in enumerate("IWEFI"))
    assert [line.split('"msg":"')[1][:2] for line in error_lines(text)] == ["m2", "m3"]


MOUNTS = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:40 / /home rw,relatime shared:2 - nfs4 server:/home rw,vers=4.2
41 40 0:41 / /home/me/local\\040disk rw,relatime shared:3 - ext4 /dev/sdb1 rw
42 22 0:42 / /mnt/fuse rw,relatime shared:4 - fuse.sshfs me@host:/ rw
"""


@pytest.mark.parametrize(
    ("path", "fstype", "refused"),
    [
        ("/var/lib/x", "ext4", None),
        ("/home/me/data", "nfs4", "nfs4"),
        ("/home/me/local disk/data", "ext4", None),
        ("/mnt/fuse/data", "fuse.sshfs", "fuse.sshfs"),
    ],
)
def test_network_and_fuse_filesystems_are_told_apart(
    tmp_path: Path, path: str, fstype: str, refused: str | None
) -> None:
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTS)
    assert filesystem_type(Path(path), table) == fstype
    assert refused_filesystem(Path(path), table) == refused


def test_without_a_mount_table_nothing_is_refused(tmp_path: Path) -> None:
    assert filesystem_type(tmp_path, tmp_path / "missing") is None
    assert refused_filesystem(tmp_path, tmp_path / "missing") is None


def test_idle_tracker_stops_only_after_the_timeout_without_clients() -> None:
    clock = FakeMonotonic(100.0)
    tracker = IdleTracker(60.0, clock)
    assert tracker.observe(2) is False
    clock.now += 500
    assert tracker.observe(1) is False  # clients connected: never idle
    assert tracker.observe(0) is False
    clock.now += 59
    assert tracker.observe(0) is False and tracker.idle_for() == 59
    clock.now += 0.5
    assert tracker.observe(3) is False and tracker.idle_for() == 0  # a client came back
    clock.now += 1
    assert tracker.observe(0) is False
    clock.now += 60
    assert tracker.observe(0) is True


def test_poll_interval_is_bounded() -> None:
    assert poll_interval(900) == 5.0
    assert poll_interval(1) == 0.1
    assert poll_interval(20) == 1.0
