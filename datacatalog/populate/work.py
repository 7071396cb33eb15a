"""What a populate runs for each job: a command, or a Python callable, given a :class:`Task`.

A :class:`Task` holds plain values only (it pickles), so the same work runs on a thread,
in a pool process or on a Dask worker:

* a command gets the job in its environment, as under ``datacatalog run``
  (``DATACATALOG_JOB_UUID``, ``DATACATALOG_JOB_TOKEN``, ``DATACATALOG_ARCHIVE_PATH``,
  ``DATACATALOG_INPUTS``) and the entity it is for (``DATACATALOG_ENTITY_KIND``,
  ``DATACATALOG_ENTITY_ID``, ``DATACATALOG_ENTITY_UUID``, ``DATACATALOG_PARAMETERS``);
  ``{entity_id}``, ``{entity_uuid}``, ``{job}`` and ``{archive_path}`` in its arguments
  are replaced by the same values. Its exit status decides the job's outcome; a failure
  records the exit code and the end of its stderr. Its output is not streamed (many run
  at once): stdout is discarded and stderr's last lines kept.
* a callable is called as ``fn(task)``; it fails when it raises or returns ``False``,
  as a stage driver's execute callback does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import IO, Any

STDERR_TAIL_LINES = 20
DEFAULT_GRACE = 10.0
_POLL = 0.05


@dataclass(frozen=True)
class Task:
    """One job's work, in plain values.

    Attributes:
        job_uuid: The job.
        token: Its token (for events a command sends itself).
        entity_kind: The kind of the entity the job is for (``sample`` ...).
        entity_id: Its canonical id.
        entity_uuid: Its UUID.
        parameters: The job's parameters (its ``data``).
        archive_dir: A local directory for the outputs (created before the work runs).
    """

    job_uuid: str
    token: str
    entity_kind: str
    entity_id: str
    entity_uuid: str
    parameters: dict[str, Any]
    archive_dir: str

    def environment(self) -> dict[str, str]:
        """The variables a command finds the job and its entity in."""
        return {
            "DATACATALOG_JOB_UUID": self.job_uuid,
            "DATACATALOG_JOB_TOKEN": self.token,
            "DATACATALOG_ARCHIVE_PATH": self.archive_dir,
            "DATACATALOG_INPUTS": "[]",
            "DATACATALOG_ENTITY_KIND": self.entity_kind,
            "DATACATALOG_ENTITY_ID": self.entity_id,
            "DATACATALOG_ENTITY_UUID": self.entity_uuid,
            "DATACATALOG_PARAMETERS": json.dumps(self.parameters, sort_keys=True),
        }

    def substitute(self, argument: str) -> str:
        """``argument`` with ``{entity_id}``, ``{entity_uuid}``, ``{job}``, ``{archive_path}``."""
        for name, value in (
            ("{entity_id}", self.entity_id),
            ("{entity_uuid}", self.entity_uuid),
            ("{job}", self.job_uuid),
            ("{archive_path}", self.archive_dir),
        ):
            argument = argument.replace(name, value)
        return argument


class CommandFailed(Exception):
    """The command ended with a non-zero status; carries it and its stderr's end."""

    def __init__(self, command: str, status: int, stderr_tail: list[str]) -> None:
        shown = f"signal {-status}" if status < 0 else f"exit code {status}"
        super().__init__(f"{command} ended with {shown}")
        self.status = status
        self.stderr_tail = stderr_tail
        exit_code = 128 - status if status < 0 else status
        self.record_details = {"exit_code": exit_code, "stderr_tail": stderr_tail}


@dataclass(frozen=True)
class Command:
    """A command line to run for each job, with what it needs from this process.

    Attributes:
        argv: The command and its arguments (placeholders replaced per job).
        env: Variables added to each run's environment (the catalog's settings).
        grace: Seconds between SIGTERM and SIGKILL when it is stopped.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    grace: float = DEFAULT_GRACE


def run_command(command: Command, task: Task, *, cancelled: Callable[[], bool]) -> bool:
    """Run ``command`` for ``task`` in a process group of its own; True when it exits 0.

    Raises:
        CommandFailed: It exited non-zero (or a cancel stopped it).
    """
    argv = [task.substitute(a) for a in command.argv]
    env = {**os.environ, **command.env, **task.environment()}
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: a cancel stops all of it
    )
    pump = threading.Thread(target=_keep_tail, args=(process.stderr, tail), daemon=True)
    pump.start()
    while process.poll() is None:
        if cancelled():
            _terminate(process, command.grace)
            break
        with suppress(subprocess.TimeoutExpired):
            process.wait(_POLL)
    status = process.wait()
    _signal_group(process, signal.SIGKILL)  # stragglers left in its group
    pump.join(5)
    if status != 0:
        raise CommandFailed(argv[0], status, list(tail))
    return True


run_command.runs_a_process = True  # type: ignore[attr-defined]


def call_function(fn: Callable[[Task], Any], task: Task, *, cancelled: Callable[[], bool]) -> Any:
    """``fn(task)``; returning ``False`` is a failure, as for a driver's callback."""
    return fn(task)


def check_command(argv: Sequence[str]) -> tuple[str, ...]:
    """The command line, refused when empty or not found on PATH."""
    from shutil import which

    from datacatalog.errors import InvalidRequestError

    args = list(argv)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        raise InvalidRequestError("no command given: put it after --, as in `-- ./analyze.sh`")
    if args[0].startswith("-"):
        raise InvalidRequestError(f"unknown option {args[0]!r}; put the command after --")
    if which(args[0]) is None:
        raise InvalidRequestError(f"command not found: {args[0]}")
    return tuple(args)


def _keep_tail(source: IO[bytes] | None, tail: deque[str]) -> None:
    if source is None:
        return
    for raw in iter(source.readline, b""):
        tail.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
    source.close()


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the process group, SIGKILL after the grace period."""
    _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while process.poll() is None and time.monotonic() < deadline:
        with suppress(subprocess.TimeoutExpired):
            process.wait(_POLL)
    _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
