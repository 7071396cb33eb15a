"""``datacatalog run`` run again, as a real subprocess: each row of the re-run table.

The command counts its executions in a file outside the archive, so a test sees exactly
how many times it ran. Runs on the embedded catalog and on the real server (``dc_any``).
"""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path

import pytest

from datacatalog.clock import utc_now
from tests.support.cli import PROCESS_WAIT, SAMPLE, Runner, only_job, wait_for

EXIT_INVALID_TRANSITION = 4
EXIT_ACTIVE_EXECUTIONS = 9
EXIT_STALE = 10


def line(counter: Path, *, fail_first: bool = False, extra: str = "") -> list[str]:
    """The ``run`` arguments: one job; the command counts itself and writes counts.csv."""
    script = (
        f'echo x >> "{counter}"; '
        'printf "gene,count\\nrpoB,1523\\n" > "$DATACATALOG_ARCHIVE_PATH/counts.csv"'
    )
    if fail_first:
        script += (
            f'; if [ "$(wc -l < "{counter}")" -eq 1 ]; then '
            'echo half > "$DATACATALOG_ARCHIVE_PATH/leftover.tmp"; exit 3; fi'
        )
    script += extra
    return [
        "run", "--pipeline", "demo-stats", "--sample-id", SAMPLE, "--data", '{"k": 1}',
        "--", "sh", "-c", script,
    ]  # fmt: skip


def runs(counter: Path) -> int:
    return counter.read_text().count("x") if counter.exists() else 0


def archive_file(runner: Runner, name: str) -> Path:
    job, _, _ = only_job(runner)
    return runner.data_dir / "archive" / job.archive_path.lstrip("/") / name


def test_the_second_run_of_a_finished_job_runs_nothing_and_exits_0(
    dc_any: Runner, tmp_path: Path
) -> None:
    counter = tmp_path / "executions"
    first = dc_any(*line(counter))
    assert first.returncode == 0, first.stderr
    second = dc_any(*line(counter))
    assert second.returncode == 0, second.stderr
    assert runs(counter) == 1
    lines = second.stdout.strip().splitlines()
    assert len(lines) == 1 and "up to date" in lines[0] and "1 file verified" in lines[0]
    job, history, files = only_job(dc_any)
    assert job.state == "FINISHED" and len(files) == 1
    assert [e.name for e in history] == ["create", "run", "finish", "index", "indexed", "reuse"]
    as_json = dc_any("--json", *line(counter))
    result = json.loads(as_json.stdout)
    assert (as_json.returncode, result["up_to_date"], result["outcome"]) == (0, True, "up_to_date")
    assert result["verification"]["hashed"] == 1 and runs(counter) == 1


def test_a_failed_job_runs_again_and_its_leftover_is_not_indexed(
    dc_any: Runner, tmp_path: Path
) -> None:
    counter = tmp_path / "executions"
    first = dc_any(*line(counter, fail_first=True))
    assert first.returncode == 3
    assert archive_file(dc_any, "leftover.tmp").exists()
    second = dc_any(*line(counter, fail_first=True))
    assert second.returncode == 0, second.stderr
    assert runs(counter) == 2
    job, history, files = only_job(dc_any)
    assert job.state == "FINISHED"
    assert [Path(f.name).name for f in files] == ["counts.csv"]
    assert not archive_file(dc_any, "leftover.tmp").exists()
    assert [e.name for e in history if e.name != "update"] == [
        "create", "run", "fail", "retry", "finish", "index", "indexed",
    ]  # fmt: skip
    fail = next(e for e in history if e.name == "fail")
    assert fail.data["error"]["details"]["exit_code"] == 3  # the failure stays on record


def test_a_cancelled_run_runs_again(dc_any: Runner, tmp_path: Path) -> None:
    counter, started = tmp_path / "executions", tmp_path / "started"
    # The first execution waits to be cancelled; the second one finishes.
    waits = f'if [ "$(wc -l < "{counter}")" -eq 1 ]; then echo $$ > "{started}"; sleep 60; fi'
    process = dc_any.start(*line(counter, extra=f"; {waits}"))
    wait_for(started)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=PROCESS_WAIT)
    assert process.returncode == 128 + signal.SIGTERM
    job, history, _ = only_job(dc_any)
    assert job.state == "FAILED"
    assert next(e for e in history if e.name == "fail").data["reason"] == "cancelled"
    again = dc_any(*line(counter, extra=f"; {waits}"))
    assert again.returncode == 0, again.stderr
    assert runs(counter) == 2
    _, history, files = only_job(dc_any)
    assert [e.name for e in history if e.name != "update"][-4:] == [
        "retry", "finish", "index", "indexed",
    ]  # fmt: skip
    assert [Path(f.name).name for f in files] == ["counts.csv"]


def test_a_changed_output_byte_is_stale_named_and_refused_unless_asked(
    dc_any: Runner, tmp_path: Path
) -> None:
    counter = tmp_path / "executions"
    assert dc_any(*line(counter)).returncode == 0
    output = archive_file(dc_any, "counts.csv")
    content = bytearray(output.read_bytes())
    content[0] ^= 1
    output.write_bytes(bytes(content))
    refused = dc_any(*line(counter))
    assert refused.returncode == EXIT_STALE
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "changed:" in lines[0] and "counts.csv" in lines[0]
    assert "--rerun-stale" in lines[0]
    assert runs(counter) == 1
    again = dc_any("run", "--rerun-stale", *line(counter)[1:])
    assert again.returncode == 0, again.stderr
    assert runs(counter) == 2
    assert dc_any(*line(counter)).returncode == 0 and runs(counter) == 2


def test_force_runs_a_finished_job_again(dc_any: Runner, tmp_path: Path) -> None:
    counter = tmp_path / "executions"
    assert dc_any(*line(counter)).returncode == 0
    forced = dc_any("run", "--force", *line(counter)[1:])
    assert forced.returncode == 0, forced.stderr
    assert runs(counter) == 2
    _, history, files = only_job(dc_any)
    rerun = next(e for e in history if e.name == "rerun")
    assert rerun.data["reason"] == "forced" and rerun.data["superseded"]["files"] == 1
    assert len(files) == 1


def test_a_lapsed_lease_is_taken_over(dc_any: Runner, tmp_path: Path) -> None:
    counter = tmp_path / "executions"
    with dc_any.catalog() as catalog:
        plan = catalog.jobs.plan(
            pipeline="demo-stats", metadata={"sample_id": SAMPLE}, data={"k": 1}
        )
        job, _ = catalog.jobs.create(plan)
        catalog.jobs.send(job.uuid, "run")
        expired = utc_now() - timedelta(minutes=1)
        lease = {
            "holder": "driver-dead", "kind": "driver", "host": "node-gone", "pid": 4242,
            "since": expired, "renewed": expired, "expires": expired, "ttl": 30.0,
            "taken_over": None,
        }  # fmt: skip
        catalog.store.update("job", {"uuid": job.uuid}, {"$set": {"lease": lease}})
    done = dc_any(*line(counter))
    assert done.returncode == 0, done.stderr
    assert runs(counter) == 1
    _, history, _ = only_job(dc_any)
    takeover = next(e for e in history if e.name == "update" and "lease" in e.data)
    assert takeover.data["lease"]["taken_over_from"]["holder"] == "driver-dead"


def test_a_held_job_exits_9_and_runs_nothing(dc_any: Runner, tmp_path: Path) -> None:
    counter = tmp_path / "executions"
    with dc_any.catalog() as catalog:
        plan = catalog.jobs.plan(
            pipeline="demo-stats", metadata={"sample_id": SAMPLE}, data={"k": 1}
        )
        job, _ = catalog.jobs.create(plan)
        catalog.leases.acquire(job.uuid, holder="driver-elsewhere", kind="driver")
    done = dc_any(*line(counter))
    assert done.returncode == EXIT_ACTIVE_EXECUTIONS
    assert "driver-elsewhere" in done.stderr and runs(counter) == 0


@pytest.mark.parametrize("how", ["retire", "reset", "delete"])
def test_retired_reset_and_deleted_jobs_exit_4_naming_what_to_do(
    dc_any: Runner, tmp_path: Path, how: str
) -> None:
    counter = tmp_path / "executions"
    assert dc_any(*line(counter)).returncode == 0
    job, _, _ = only_job(dc_any)
    with dc_any.catalog() as catalog:
        if how == "retire":
            catalog.jobs.send(job.uuid, "retire")
        else:
            getattr(catalog.jobs, how)(job.uuid, token=catalog.jobs.admin_token())
    word, todo = {
        "retire": ("RETIRED", "reset and ready"),
        "reset": ("RESET", "ready"),
        "delete": ("deleted", "undelete"),
    }[how]
    for args in (line(counter), ["run", "--force", *line(counter)[1:]]):
        done = dc_any(*args)
        assert done.returncode == EXIT_INVALID_TRANSITION, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and word in lines[0] and todo in lines[0]
    assert runs(counter) == 1
