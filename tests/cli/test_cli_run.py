"""Tests for ``datacatalog run``, as a real subprocess (signals and exit codes are real).

The catalog is the embedded one in a temporary data dir (the success test runs on the
real server too); the catalog is prepared and checked in-process. These tests wait for
real processes, each for a second or two at most.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import PROCESS_WAIT, SAMPLE, Runner, make_runner, only_job, wait_for

EXIT_ACTIVE_EXECUTIONS = 9


@pytest.fixture
def dc(tmp_path: Path) -> Runner:
    return make_runner(tmp_path)


def new_job(runner: Runner, data: dict[str, Any]) -> str:
    with runner.catalog() as catalog:
        plan = catalog.jobs.plan(pipeline="demo-stats", metadata={"sample_id": SAMPLE}, data=data)
        job, _ = catalog.jobs.create(plan)
        return job.uuid


def gone(pid: int) -> bool:
    """True when the process has ended (a zombie no one reaped yet has ended too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # The state follows the command name in parentheses: "pid (name) Z ...".
        return stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


# -- success and failure --------------------------------------------------------------------


def test_success_indexes_the_outputs_and_exits_0(dc_any: Runner) -> None:
    script = (
        'test -n "$DATACATALOG_JOB_TOKEN" && echo "job $DATACATALOG_JOB_UUID" && '
        'printf "a,1\\n" > "$DATACATALOG_ARCHIVE_PATH/counts.csv" && '
        'echo "$DATACATALOG_INPUTS" > "$DATACATALOG_ARCHIVE_PATH/inputs.json"'
    )
    done = dc_any(
        "run", "--pipeline", "demo-stats", "--sample-id", SAMPLE, "--data", '{"k": 1}',
        "--input", "/uploads/reads.fastq", "--", "sh", "-c", script,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job, history, files = only_job(dc_any)
    assert f"job {job.uuid}" in done.stdout  # the command's output is streamed
    assert job.state == "FINISHED" and job.lease is None
    assert [e.name for e in history] == ["create", "run", "finish", "index", "indexed"]
    assert sorted(Path(f.name).name for f in files) == ["counts.csv", "inputs.json"]
    assert all(f.sha256 for f in files)
    # Made by the command line: who (user@host) and what (the command) are recorded.
    assert job.agent == f"{getpass.getuser()}@{socket.gethostname()}"
    assert job.task == shlex.join(["sh", "-c", script])
    inputs_file = dc_any.data_dir / "archive" / job.archive_path.lstrip("/") / "inputs.json"
    (entry,) = json.loads(inputs_file.read_text())
    assert entry["name"] == "/uploads/reads.fastq"


def test_a_failing_command_fails_the_job_with_its_exit_code_and_stderr(dc: Runner) -> None:
    script = 'for i in 1 2 3 4 5; do echo "line $i" >&2; done; exit 7'
    done = dc(
        "--json", "run", "--pipeline", "demo-stats", "--sample-id", SAMPLE, "--no-index",
        "--", "sh", "-c", script,
    )  # fmt: skip
    assert done.returncode == 7
    assert "line 5" in done.stderr  # streamed through
    result = json.loads(done.stdout)
    assert (result["state"], result["reason"], result["phase"]) == (
        "FAILED",
        "callback_raised",
        "execute",
    )
    job, history, _ = only_job(dc)
    assert job.state == "FAILED"
    (fail,) = [e for e in history if e.name == "fail"]
    details = fail.data["error"]["details"]
    assert details["exit_code"] == 7
    assert details["stderr_tail"][-1] == "line 5" and len(details["stderr_tail"]) == 5


def test_retries_run_the_command_again(dc: Runner, tmp_path: Path) -> None:
    counter = tmp_path / "tries"
    script = f'echo x >> "{counter}"; test "$(wc -l < "{counter}")" -ge 2'
    done = dc(
        "run", "--pipeline", "demo-stats", "--sample-id", SAMPLE, "--retries", "2",
        "--no-index", "--", "sh", "-c", script,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert counter.read_text().count("x") == 2


# -- stopping -------------------------------------------------------------------------------


def test_sigterm_cancels_stops_the_process_group_and_fails_the_job(
    dc: Runner, tmp_path: Path
) -> None:
    leader, worker = tmp_path / "leader", tmp_path / "worker"
    script = f'sleep 60 & echo $! > "{worker}"; echo $$ > "{leader}"; wait'
    process = dc.start(
        "run", "--pipeline", "demo-stats", "--sample-id", SAMPLE, "--grace", "2",
        "--", "sh", "-c", script,
    )  # fmt: skip
    pids = [int(wait_for(leader)), int(wait_for(worker))]
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=PROCESS_WAIT)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert all(gone(pid) for pid in pids)
    job, history, _ = only_job(dc)
    assert job.state == "FAILED" and job.lease is None
    (fail,) = [e for e in history if e.name == "fail"]
    assert fail.data["reason"] == "cancelled"


def test_timeout_stops_the_command_and_fails_the_job(dc: Runner, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    done = dc(
        "run", "--pipeline", "demo-stats", "--sample-id", SAMPLE, "--timeout", "1",
        "--grace", "1", "--", "sh", "-c", f'echo $$ > "{pid_file}"; exec sleep 60',
    )  # fmt: skip
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert gone(int(pid_file.read_text()))
    job, history, _ = only_job(dc)
    assert job.state == "FAILED"
    (fail,) = [e for e in history if e.name == "fail"]
    assert (fail.data["reason"], fail.data["phase"]) == ("timeout", "execute")


# -- refusals ---------------------------------------------------------------------------------


def test_run_on_a_held_job_exits_with_the_active_executions_code(dc: Runner) -> None:
    job_uuid = new_job(dc, {"held": True})
    with dc.catalog() as catalog:
        catalog.leases.acquire(job_uuid, holder="driver-elsewhere", kind="driver", host="n4")
    done = dc("run", "--job", job_uuid, "--", "true")
    assert done.returncode == EXIT_ACTIVE_EXECUTIONS
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "driver-elsewhere" in lines[0] and "n4" in lines[0]
    with dc.catalog() as catalog:
        assert [e.name for e in catalog.jobs.history(job_uuid)] == ["create"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pipeline", "demo-stats", "--sample-id", SAMPLE], "no command given"),
        (["--pipeline", "no-such-pipeline", "--sample-id", SAMPLE, "--", "true"], "no-such"),
    ],
)
def test_bad_arguments_are_one_error_line_and_write_nothing(
    dc: Runner, args: list[str], message: str
) -> None:
    done = dc("run", *args)
    assert done.returncode in (2, 3), done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert dc.job_count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pipeline", "demo-stats", "--sample-id", SAMPLE, "--"], "no command given"),
        (["--pipeline", "demo-stats", "--sample-id", "nope", "--", "true"], "nope"),
        (["--sample-id", SAMPLE, "--", "true"], "--pipeline"),
        (
            ["--job", "107a90b7-f083-5167-a63d-41a3bf278bf8", "--pipeline", "x", "--", "true"],
            "not both",
        ),
        (["--pipeline", "demo-stats", "--sample-id", SAMPLE, "--", "no-such-cmd-x"], "not found"),
        (["--pipeline", "demo-stats", "--sample-id", SAMPLE, "--bogus", "--", "true"], "bogus"),
        (["--job", "not-a-uuid", "--", "true"], "not-a-uuid"),
    ],
)
def test_more_bad_arguments_in_process(dc: Runner, args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from datacatalog.cli.main import cli

    done = CliRunner().invoke(cli, ["--data-dir", str(dc.data_dir), "run", *args])
    assert done.exit_code in (2, 3), done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert dc.job_count() == 0
