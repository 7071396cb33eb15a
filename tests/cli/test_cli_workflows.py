"""``datacatalog workflows`` and ``datacatalog plugins`` on both engines (CliRunner), and a
cancel sent from another process while a workflow runs."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import CLI, ROOT, SAMPLE, create_job

pytestmark = pytest.mark.usefixtures("no_configuration")

OPS = "tests.support.orchestrator_ops"


def test_run_show_and_list(world: CLI) -> None:
    job = create_job(world)["job"]
    out = world.json(
        "workflows", "run", f"{OPS}:chain", "--job", job["uuid"], "--input", "key=cli",
        "--input", "steps=2", "--executor", "thread", "--workers", "2",
    )  # fmt: skip
    execution = out["execution"]
    assert execution["status"] == "succeeded" and execution["inputs"] == {"key": "cli", "steps": 2}
    assert [t["name"] for t in out["tasks"]] == ["step0", "step1"]
    shown = world.json("workflows", "show", execution["id"])
    assert [t["status"] for t in shown["tasks"]] == ["success", "success"]
    assert [r["message"] for r in shown["logs"]] == [
        "task step0 attempt 1 started", "ran 0", "task step0 attempt 1 ended: success",
        "task step1 attempt 1 started", "ran 1", "task step1 attempt 1 ended: success",
    ]  # fmt: skip
    human = world("workflows", "show", execution["id"])
    assert human.exit_code == 0 and "step1" in human.stdout and "succeeded" in human.stdout
    assert world.json("jobs", "show", job["uuid"])["job"]["state"] == "FINISHED"


def test_run_shows_the_tasks_as_they_go(world: CLI) -> None:
    job = create_job(world)["job"]["uuid"]
    result = world("workflows", "run", f"{OPS}:chain", "--job", job, "--input", "key=live")
    assert result.exit_code == 0, result.output
    assert "step2" in result.stderr and "success" in result.stderr  # the live table
    assert "succeeded" in result.stdout


def test_run_creates_the_job_from_pipeline_and_metadata(world: CLI) -> None:
    out = world.json(
        "workflows", "run", f"{OPS}:chain", "--pipeline", "demo-stats", "--sample-id", SAMPLE,
        "--input", "key=x", "--input", "steps=1",
    )  # fmt: skip
    assert out["execution"]["status"] == "succeeded"


def test_run_errors_have_their_exit_codes(world: CLI) -> None:
    job = create_job(world)["job"]["uuid"]
    assert (
        world.fails(3, "workflows", "run", "no-such-workflow", "--job", job)["code"] == "not_found"
    )
    assert (
        world.fails(2, "workflows", "run", f"{OPS}:chain", "--job", job)["code"]
        == "invalid_request"
    )
    body = world.fails(2, "workflows", "run", f"{OPS}:chain", "--job", job, "--executor", "warp")
    assert "--executor" in body["message"]
    assert world.fails(2, "workflows", "run", f"{OPS}:chain")["code"] == "invalid_request"
    failed = world(
        "--json", "workflows", "run", f"{OPS}:single", "--job", job, "--input", "op=broken"
    )
    assert failed.exit_code == 1 and "LookupError" in failed.stderr


def test_cancel_and_resume(world: CLI) -> None:
    job = create_job(world)["job"]["uuid"]
    from datacatalog.orchestrator.workflow_runner import WorkflowRunner

    # A runner made here but not executed yet: the command line cancels it at once.
    catalog = _catalog(world)
    runner = WorkflowRunner(catalog, None, None, service_id=job, workflow_name=f"{OPS}:chain",
                            inputs={"key": "c"})  # fmt: skip
    out = world.json("workflows", "cancel", runner.execution_id)
    assert out["requested"] is True and out["execution"]["status"] == "cancelled"
    assert world.json("workflows", "cancel", runner.execution_id)["requested"] is False
    assert runner.execute().status == "cancelled"
    catalog.close()
    resumed = world.json("workflows", "resume", runner.execution_id, "--executor", "thread")
    assert resumed["execution"]["status"] == "succeeded"
    assert resumed["execution"]["resumes"] == 1
    assert [t["status"] for t in resumed["tasks"]] == ["success"] * 3
    body = world.fails(2, "workflows", "resume", runner.execution_id)
    assert "succeeded" in body["message"]


def _catalog(dc: CLI) -> Any:
    from datacatalog.catalog import Catalog
    from datacatalog.settings import Settings

    args = dict(zip(dc.base[::2], dc.base[1::2], strict=True))
    settings = Settings.load(data_dir=Path(args["--data-dir"]))
    return Catalog.open(
        args.get("--mongodb-uri"), settings=settings, database=args.get("--database")
    )


def test_plugins_commands(world: CLI, tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "workflows" / "build_wagon.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    wagon = built.stdout.strip()
    assert (
        world.json("plugins", "validate", wagon)["package_name"] == "datacatalog-example-workflows"
    )
    installed = world.json("plugins", "install", wagon)["plugin"]
    assert installed["workflows"] == {
        "example-diamond": "datacatalog_example_workflows.diamond:diamond"
    }
    assert [p["package_name"] for p in world.json("plugins", "list")["plugins"]] == [
        "datacatalog-example-workflows"
    ]
    names = [w["name"] for w in world.json("workflows", "list")["workflows"]]
    assert "example-diamond" in names
    assert world.fails(5, "plugins", "install", wagon)["code"] == "conflict"
    bad = tmp_path / "bad.wgn"
    bad.write_text("nope")
    assert world.fails(2, "plugins", "validate", str(bad))["code"] == "invalid_request"


def test_cancel_from_another_process(world: CLI, engine: str) -> None:
    if engine != "mongod":
        pytest.skip("two processes share a catalog on a real server")
    job = create_job(world)["job"]["uuid"]
    from datacatalog.orchestrator import events
    from datacatalog.orchestrator.executors import ThreadExecutor
    from datacatalog.orchestrator.workflow_runner import WorkflowRunner

    catalog = _catalog(world)
    runner = WorkflowRunner(catalog, None, None, service_id=job, workflow_name=f"{OPS}:single",
                            inputs={"op": "poll_cancel", "key": "p"}, executor=ThreadExecutor(1),
                            cancel_poll_interval=0.05)  # fmt: skip
    started = threading.Event()

    def on_start(sender: Any, **_: Any) -> None:
        if sender is runner:
            started.set()

    events.start_task_signal.connect(on_start)
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(execution=runner.execute()))
    thread.start()
    try:
        assert started.wait(30)
        command = [str(Path(sys.executable).parent / "datacatalog"), *world.base, "--json",
                   "workflows", "cancel", runner.execution_id]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        thread.join(60)
    finally:
        events.start_task_signal.disconnect(on_start)
        catalog.close()
    assert result["execution"].status == "cancelled"


def test_a_workflow_and_its_inputs_make_the_jobs_identity(world: CLI) -> None:
    def run(*extra: str) -> dict[str, Any]:
        out: dict[str, Any] = world.json(
            "workflows", "run", f"{OPS}:writers", "--pipeline", "demo-stats",
            "--sample-id", SAMPLE, *extra,
        )  # fmt: skip
        return out

    first = run("--input", "text=one")
    job = first["execution"]["job_uuid"]
    data = world.json("jobs", "show", job)["job"]["data"]
    assert data == {
        "workflow": {"name": f"{OPS}:writers", "version": None, "inputs": {"text": "one"}}
    }
    # Outputs are indexed by default, each file generated by the job.
    assert first["index"]["written"] == 2 and len(first["index"]["files"]) == 2
    # Another input is another job; so is the default input, and more --data.
    second = run("--input", "text=two")
    default = run()
    more = run("--input", "text=one", "--data", '{"reference": "hg38"}', "--no-index")
    jobs = {job, second["execution"]["job_uuid"], default["execution"]["job_uuid"],
            more["execution"]["job_uuid"]}  # fmt: skip
    assert len(jobs) == 4
    assert default["execution"]["inputs"] == {"text": "hello"}
    assert "index" not in more
    assert (
        world.json("jobs", "show", more["execution"]["job_uuid"])["job"]["data"]["reference"]
        == "hg38"
    )


def test_a_text_input_stays_text_and_a_wrong_type_writes_nothing(world: CLI) -> None:
    out = world.json(
        "workflows", "run", f"{OPS}:writers", "--pipeline", "demo-stats", "--sample-id", SAMPLE,
        "--input", "text=2024",
    )  # fmt: skip
    assert out["execution"]["inputs"] == {"text": "2024"}
    jobs_before = world.json("jobs", "list")
    body = world.fails(
        2, "workflows", "run", f"{OPS}:typed", "--pipeline", "demo-stats", "--sample-id", SAMPLE,
        "--input", "text=t", "--input", "times=many",
    )  # fmt: skip
    assert "input 'times' must be int, not str" in body["message"]
    assert world.json("jobs", "list") == jobs_before
    body = world.fails(
        2, "workflows", "run", f"{OPS}:writers", "--pipeline", "demo-stats", "--sample-id", SAMPLE,
        "--data", '{"workflow": 1}',
    )  # fmt: skip
    assert "'workflow'" in body["message"]
    assert world.json("jobs", "list") == jobs_before


def test_the_command_line_defaults_are_few_attempts_shown_in_help(world: CLI) -> None:
    helped = world("workflows", "run", "--help")
    assert helped.exit_code == 0
    text = " ".join(helped.stdout.split())
    assert (
        "--max-attempts INTEGER Attempts in all per task (-1: until it succeeds). [default: 3]"
        in text
    )
    assert "--retry-interval FLOAT RANGE Seconds between attempts. [default: 5.0" in text
    assert "--index / --no-index" in text
    job = create_job(world)["job"]["uuid"]
    failed = world(
        "--json", "workflows", "run", f"{OPS}:single", "--job", job,
        "--input", "op=fail_until", "--input", "key=k", "--input", "succeed_on=9",
        "--retry-interval", "0",
    )  # fmt: skip
    assert failed.exit_code == 1
    from datacatalog.orchestrator.records import ExecutionRecords

    catalog = _catalog(world)
    try:
        (execution,) = ExecutionRecords(catalog.store).executions(job)
        tasks = ExecutionRecords(catalog.store).tasks(execution.id)
    finally:
        catalog.close()
    assert [(t.attempts, t.max_attempts, t.retry_interval) for t in tasks] == [(3, 3, 0.0)]
    assert world.fails(2, "workflows", "run", f"{OPS}:chain", "--job", job, "--max-attempts", "0")
    assert world.fails(2, "workflows", "run", f"{OPS}:chain", "--job", job, "--timeout", "0")


def test_running_the_same_workflow_again_is_up_to_date(world: CLI) -> None:
    line = ("workflows", "run", f"{OPS}:writers", "--pipeline", "demo-stats", "--sample-id",
            SAMPLE, "--input", "text=same")  # fmt: skip
    first = world.json(*line)
    again = world(*line)
    assert again.exit_code == 0, again.output
    job = first["execution"]["job_uuid"]
    (said,) = again.stdout.strip().splitlines()  # one line says so
    assert said.startswith(f"job {job} is up to date (FINISHED")
    assert "2 files verified (2 by sha256)" in again.stdout
    out = world.json(*line)
    assert out["up_to_date"] is True and out["execution"]["id"] == first["execution"]["id"]
    shown = world.json("jobs", "show", job)["job"]
    assert shown["state"] == "FINISHED"


def test_a_failed_workflow_runs_again_and_resumes_without_an_administrator(
    world: CLI,
) -> None:
    base = ("workflows", "run", f"{OPS}:write_then_fail", "--pipeline", "demo-stats",
            "--sample-id", SAMPLE, "--input", "key=cli", "--max-attempts", "1")  # fmt: skip
    failed = world("--json", *base)
    assert failed.exit_code == 1
    catalog = _catalog(world)
    try:
        from datacatalog.orchestrator.records import ExecutionRecords

        records = ExecutionRecords(catalog.store)
        job = catalog.jobs.find(pipeline="demo-stats")[0].uuid
        (first,) = records.executions(job)
    finally:
        catalog.close()
    assert first.status == "failed"
    # Resumed on the same job: the task that succeeded is kept, the failed one runs again.
    resumed = world.json("workflows", "resume", first.id)
    assert resumed["execution"]["id"] == first.id and resumed["execution"]["status"] == "succeeded"
    assert [(t["name"], t["attempts"]) for t in resumed["tasks"]] == [
        ("write_named", 1), ("fail_until", 2),
    ]  # fmt: skip
    assert resumed["decision"]["event"] == "retry"
    assert resumed["index"]["written"] == 1  # kept.txt, written by the first run's task
    # Run again on a failed job: a new execution, no administrator.
    other = ("workflows", "run", f"{OPS}:single", "--pipeline", "demo-stats", "--sample-id",
             SAMPLE, "--input", "op=broken", "--max-attempts", "1")  # fmt: skip
    assert world("--json", *other).exit_code == 1
    second = world("--json", *other)
    assert second.exit_code == 1 and "LookupError" in second.stderr
    catalog = _catalog(world)
    try:
        broken_job = next(j.uuid for j in catalog.jobs.find(pipeline="demo-stats") if j.uuid != job)
        runs = ExecutionRecords(catalog.store).executions(broken_job)
        names = [e.name for e in catalog.jobs.history(broken_job)]
    finally:
        catalog.close()
    assert [e.status for e in runs] == ["failed", "failed"]
    assert names.count("retry") == 1 and names.count("fail") == 2


def test_stale_outputs_exit_10_and_rerun_when_asked(world: CLI) -> None:
    line = ("workflows", "run", f"{OPS}:writers", "--pipeline", "demo-stats", "--sample-id",
            SAMPLE, "--input", "text=stale")  # fmt: skip
    first = world.json(*line)
    job = first["execution"]["job_uuid"]
    catalog = _catalog(world)
    try:
        (record,) = [f for f in catalog.indexing.files(job) if f.name.endswith("/a.txt")]
        path = Path(catalog.storage.get(record.storage_system).resolve(record.name))
    finally:
        catalog.close()
    path.write_text("edited by hand")
    body = world.fails(10, *line)
    assert body["code"] == "stale_outputs" and "a.txt" in body["message"]
    rerun = world.json(*line, "--rerun-stale")
    assert rerun["decision"]["event"] == "rerun" and rerun["execution"]["status"] == "succeeded"
    assert path.read_text() == "stale!"
    forced = world.json(*line, "--force")
    assert (forced["decision"]["event"], forced["decision"]["reason"]) == ("rerun", "forced")
    assert forced["execution"]["id"] != rerun["execution"]["id"]
