"""The runner's promises on every executor: an outcome whatever an operation raises,
no retries of a task that ignores its failure, a hard cancel on processes and Dask,
plugins loaded late, effective and type-checked inputs, the execution log's story,
unlimited attempts.

Each executor-dependent test runs on threads, on child processes and on a Dask
``LocalCluster`` (the module's own, started once). A fake clock makes retry intervals
pass without sleeping; cancels are triggered by events, never by timing.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from datacatalog.orchestrator import events
from datacatalog.orchestrator.decorators import operation
from datacatalog.orchestrator.exceptions import InvalidWorkflowRunnerParams, WorkflowFailedError
from datacatalog.orchestrator.executors import Executor, ProcessExecutor, ThreadExecutor
from datacatalog.orchestrator.plugin import Plugin, PluginManager
from datacatalog.orchestrator.records import ExecutionRecords
from datacatalog.orchestrator.workflow_runner import RUNNER_LOGGER, WorkflowRunner
from tests.support import orchestrator_ops as ops
from tests.support.clocks import FakeClock
from tests.support.jobs import World

EXECUTORS = ("thread", "process", "dask")


def make_executor(kind: str, request: pytest.FixtureRequest) -> Executor:
    if kind == "thread":
        return ThreadExecutor(pool_size=2)
    if kind == "process":
        return ProcessExecutor(pool_size=2, cancel_grace=0.2)
    from datacatalog.orchestrator.executors import DaskExecutor

    return DaskExecutor(client=request.getfixturevalue("dask_client"))


def runner(world: World, workflow: Any, executor: Executor, **options: Any) -> WorkflowRunner:
    job = world.new_job({"n": uuid.uuid4().hex})
    options.setdefault("task_retry_interval", 0)
    return WorkflowRunner(
        world.catalog,
        None,
        None,
        service_id=job.uuid,
        workflow_name=workflow,
        executor=executor,
        clock=FakeClock(),
        cancel_poll_interval=0.05,
        **options,
    )


def execute_bounded(run: WorkflowRunner, seconds: float = 60) -> Any:
    """``run.execute()`` on a thread: a hang fails the test instead of blocking the suite."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["execution"] = run.execute()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        run.cancel()
        thread.join(10)
        pytest.fail(f"execute() did not return within {seconds} s")
    if "error" in result:
        raise result["error"]
    return result["execution"]


def runner_logs(world: World, execution_id: str) -> list[str]:
    return [
        r["message"]
        for r in ExecutionRecords(world.store).logs(execution_id)
        if r["logger"] == RUNNER_LOGGER
    ]


# -- an outcome whatever an operation raises ----------------------------------------------


@pytest.mark.parametrize("kind", EXECUTORS)
@pytest.mark.parametrize("raised", ["custom", "generator-exit"])
def test_a_base_exception_ends_the_attempt_with_it_as_root_cause(
    world: World, request: pytest.FixtureRequest, kind: str, raised: str
) -> None:
    run = runner(
        world, ops.single, make_executor(kind, request),
        inputs={"op": "halt", "kind": raised}, task_max_attempts=2,
    )  # fmt: skip
    with pytest.raises(WorkflowFailedError) as caught:
        execute_bounded(run)
    expected = "tests.support.orchestrator_ops.Halt" if raised == "custom" else "GeneratorExit"
    task = run.tasks[0]
    assert (task.status, task.attempts) == ("failed", 2)
    assert [a["error_type"] for a in task.attempt_log] == [expected, expected]
    error = caught.value.execution.error
    assert error is not None and error["type"] == expected and error["task"] == "halt"
    assert "Traceback" in error["traceback"]
    assert world.jobs.get(run.execution.job_uuid).state == "FAILED"


# -- ignore_failure: once, recorded, the workflow goes on ---------------------------------


@pytest.mark.parametrize("kind", EXECUTORS)
def test_a_task_that_ignores_its_failure_runs_once(
    world: World, request: pytest.FixtureRequest, kind: str, key: str
) -> None:
    run = runner(
        world, ops.with_optional, make_executor(kind, request),
        inputs={"key": key}, task_max_attempts=20,
    )  # fmt: skip
    execution = execute_bounded(run)
    assert execution.status == "succeeded"
    optional, after = run.tasks
    assert (optional.status, optional.attempts, optional.max_attempts) == ("failed", 1, 1)
    assert optional.error is not None and optional.error["type"] == "RuntimeError"
    assert [a["outcome"] for a in optional.attempt_log] == ["failed"]
    assert after.status == "success"
    if kind == "thread":
        assert ops.CALLS[key] == ["optional", "after optional"]
    assert any("its failure is ignored" in m for m in runner_logs(world, execution.id))


# -- cancel: hard on processes and Dask ---------------------------------------------------


def _gone(pid: int) -> bool:
    psutil = pytest.importorskip("psutil")
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _cancel_once_running(run: WorkflowRunner, pidfile: Path) -> threading.Thread:
    """Cancel ``run`` as soon as its operation has started its child process."""

    def watch() -> None:
        for _ in range(6000):
            if pidfile.exists():
                run.cancel()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("kind", ["process", "dask-own-cluster"])
def test_a_hard_cancel_stops_the_attempt_and_what_it_started(
    world: World, tmp_path: Path, kind: str, engine: str
) -> None:
    if kind == "dask-own-cluster":
        if engine != "memory":
            pytest.skip("one engine is enough to start a cluster of its own")
        pytest.importorskip("distributed")
        from datacatalog.orchestrator.executors import DaskExecutor

        executor: Executor = DaskExecutor(workers=1, cancel_grace=0.2)
    else:
        executor = ProcessExecutor(pool_size=1, cancel_grace=0.2)
    pidfile = tmp_path / f"child-{uuid.uuid4().hex}.pid"
    run = runner(
        world, ops.single, executor,
        inputs={"op": "spawn_and_ignore_cancel", "pidfile": str(pidfile)}, task_max_attempts=1,
    )  # fmt: skip
    watcher = _cancel_once_running(run, pidfile)
    execution = execute_bounded(run)
    watcher.join(5)
    assert execution.status == "cancelled"
    task = run.tasks[0]
    assert task.status == "failed" and task.error is not None
    if kind == "process":
        assert task.error["type"] == "AttemptTerminated"
        assert "was terminated" in task.error["message"]
    else:
        assert "died" in task.error["message"]
    grandchild = int(pidfile.read_text())
    for _ in range(500):  # reaped by init once its parent is gone
        if _gone(grandchild):
            break
        time.sleep(0.01)
    assert _gone(grandchild), f"the operation's child process {grandchild} survived the cancel"
    assert world.jobs.get(execution.job_uuid).state == "FAILED"


def test_on_threads_a_cancel_stays_cooperative(world: World, key: str) -> None:
    run = runner(world, ops.single, ThreadExecutor(1), inputs={"op": "poll_cancel", "key": key})

    def on_start(sender: Any, **_: Any) -> None:
        if sender is run:
            run.cancel()

    events.start_task_signal.connect(on_start)
    try:
        execution = execute_bounded(run)
    finally:
        events.start_task_signal.disconnect(on_start)
    assert execution.status == "cancelled"
    assert ops.CALLS[key] == ["saw cancel"] and run.tasks[0].status == "success"


# -- a plugin loaded after the worker server started ----------------------------------------


def test_a_plugin_loaded_late_is_on_the_path_of_process_workers(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first run starts the process executor's worker server (forkserver).
    first = runner(world, ops.chain, ProcessExecutor(pool_size=1), inputs={"key": "k", "steps": 1})
    assert execute_bounded(first).status == "succeeded"
    # Then a plugin is loaded: its scripts folder goes on PATH (restored after the test).
    monkeypatch.setenv("PATH", os.environ["PATH"])
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    plugin = Plugin(
        id="plugin", package_name="late", package_version="1.0",
        directory=tmp_path / "late-1.0", wheels=(),
    )  # fmt: skip
    plugin.bin_dir.mkdir(parents=True)
    tool = plugin.bin_dir / f"late-tool-{uuid.uuid4().hex[:8]}"
    tool.write_text("#!/bin/sh\necho from the plugin\n")
    tool.chmod(0o755)
    PluginManager(world.catalog, tmp_path / "plugins").load_plugin(plugin)
    run = runner(world, ops.single, ProcessExecutor(pool_size=1),
                 inputs={"op": "run_tool", "tool": tool.name}, task_max_attempts=1)  # fmt: skip
    execution = execute_bounded(run)
    assert execution.status == "succeeded", run.tasks[0].error
    logs = [r["message"] for r in ExecutionRecords(world.store).logs(execution.id)]
    assert "tool said from the plugin" in logs


# -- the execution object after a cancel ----------------------------------------------------


def test_cancel_of_a_pending_execution_updates_the_runners_execution(world: World) -> None:
    run = runner(world, ops.chain, ThreadExecutor(1), inputs={"key": "k"})
    assert run.execution.status == "pending"
    assert run.cancel() is True
    stored = ExecutionRecords(world.store).execution(run.execution_id)
    assert stored.status == "cancelled"
    assert (run.execution.status, run.execution.cancel_requested) == ("cancelled", True)
    assert run.execution.ended_at == stored.ended_at


# -- inputs: effective, type-checked --------------------------------------------------------


def test_the_recorded_inputs_include_the_declared_defaults(world: World) -> None:
    run = runner(world, ops.chain, ThreadExecutor(1), inputs={"key": "k"})
    assert run.execution.inputs == {"key": "k", "steps": 3}
    assert ExecutionRecords(world.store).execution(run.execution_id).inputs == {
        "key": "k",
        "steps": 3,
    }
    assert execute_bounded(run).status == "succeeded"
    assert [t.name for t in run.tasks] == ["step0", "step1", "step2"]


@pytest.mark.parametrize(
    ("inputs", "named", "wanted"),
    [
        ({"text": 3}, "text", "must be str, not int"),
        ({"text": "t", "times": "2"}, "times", "must be int, not str"),
        ({"text": "t", "times": True}, "times", "must be int, not bool"),
        ({"text": "t", "times": 2.5}, "times", "must be int, not float"),
        ({"text": "t", "ratio": "half"}, "ratio", "must be float, not str"),
        ({"text": "t", "loud": 1}, "loud", "must be bool, not int"),
        ({"text": "t", "label": 7}, "label", "must be str or None, not int"),
    ],
)
def test_an_input_of_the_wrong_type_is_refused_before_anything_is_recorded(
    world: World, inputs: dict[str, Any], named: str, wanted: str
) -> None:
    with pytest.raises(InvalidWorkflowRunnerParams, match=rf"input '{named}' {wanted}"):
        runner(world, ops.typed, ThreadExecutor(1), inputs=inputs)
    assert world.store.count("workflow_execution", {}) == 0
    assert world.store.count("workflow_task", {}) == 0


def test_inputs_of_the_right_types_are_taken(world: World) -> None:
    run = runner(
        world, ops.typed, ThreadExecutor(1),
        inputs={"text": "t", "times": 3, "ratio": 2, "label": None, "anything": [1]},
    )  # fmt: skip
    assert run.execution.inputs == {
        "text": "t", "times": 3, "ratio": 2, "loud": False, "label": None, "anything": [1],
    }  # fmt: skip


# -- the execution log tells each task's start and end ----------------------------------------


@pytest.mark.parametrize("kind", EXECUTORS)
def test_the_log_records_each_attempts_start_and_end(
    world: World, request: pytest.FixtureRequest, kind: str, key: str
) -> None:
    run = runner(
        world, ops.single, make_executor(kind, request),
        inputs={"op": "fail_until", "key": key, "succeed_on": 2}, task_max_attempts=2,
    )  # fmt: skip
    execution = execute_bounded(run)
    assert execution.status == "succeeded"
    story = runner_logs(world, execution.id)
    assert story[0] == "task fail_until attempt 1 started"
    assert story[1].startswith(
        "task fail_until attempt 1 ended: failed (ValueError: not yet (attempt 1)); "
        "another attempt is due at"
    )
    assert story[2:] == [
        "task fail_until attempt 2 started",
        "task fail_until attempt 2 ended: success",
    ]
    stored = ExecutionRecords(world.store).logs(execution.id)
    assert [(r["task"], r["attempt"]) for r in stored if r["logger"] == RUNNER_LOGGER] == [
        ("fail_until", 1), ("fail_until", 1), ("fail_until", 2), ("fail_until", 2),
    ]  # fmt: skip


# -- max_attempts=-1: until it succeeds ------------------------------------------------------


def test_unlimited_attempts_retry_until_success(world: World, key: str) -> None:
    clock = FakeClock()
    job = world.new_job({"n": uuid.uuid4().hex})
    run = WorkflowRunner(
        world.catalog, None, None, service_id=job.uuid, workflow_name=ops.single,
        inputs={"op": "fail_until", "key": key, "succeed_on": 6}, executor=ThreadExecutor(1),
        task_max_attempts=-1, task_retry_interval=3, clock=clock,
    )  # fmt: skip
    assert execute_bounded(run).status == "succeeded"
    assert run.tasks[0].attempts == 6 and run.tasks[0].max_attempts == -1
    assert clock.slept == [3, 3, 3, 3, 3]
    unlimited = operation(max_attempts=-1)(ops.nothing_at_all)
    assert unlimited.max_attempts == -1


def test_unlimited_attempts_end_with_a_cancel(world: World, key: str) -> None:
    run = runner(
        world, ops.single, ThreadExecutor(1),
        inputs={"op": "fail_until", "key": key, "succeed_on": 10**9}, task_max_attempts=-1,
    )  # fmt: skip

    def on_failure(sender: Any, task: Any, **_: Any) -> None:
        if sender is run and task.attempts == 4:
            run.cancel()

    events.on_failure_task_signal.connect(on_failure)
    try:
        execution = execute_bounded(run)
    finally:
        events.on_failure_task_signal.disconnect(on_failure)
    assert execution.status == "cancelled"
    assert run.tasks[0].status == "retrying" and run.tasks[0].attempts == 4


@pytest.mark.parametrize("value", [0, -2, True, 1.5])
def test_other_attempt_counts_are_refused(world: World, value: Any) -> None:
    with pytest.raises(InvalidWorkflowRunnerParams, match="-1"):
        runner(world, ops.chain, ThreadExecutor(1), inputs={"key": "k"}, task_max_attempts=value)
    with pytest.raises(Exception, match="-1"):
        operation(max_attempts=value)(ops.nothing_at_all)
    assert world.store.count("workflow_execution", {}) == 0


# -- outputs indexed, one name everywhere ---------------------------------------------------


def _files(world: World, job_uuid: str) -> dict[str, dict[str, Any]]:
    docs = world.store.find("file", {"generated_by": job_uuid})
    return {doc["name"].rsplit("/", 1)[-1]: doc for doc in docs}


@pytest.mark.parametrize("kind", EXECUTORS)
def test_outputs_are_indexed_when_the_workflow_succeeds(
    world: World, request: pytest.FixtureRequest, kind: str
) -> None:
    run = runner(
        world, ops.writers, make_executor(kind, request), inputs={"text": "hi"},
        index_outputs=True,
    )  # fmt: skip
    execution = execute_bounded(run)
    assert execution.status == "succeeded"
    assert run.index_report is not None and run.index_report.written == 2
    files = _files(world, execution.job_uuid)
    assert set(files) == {"a.txt", "b.txt"}
    assert all(f["generated_by"] == [execution.job_uuid] and f["sha256"] for f in files.values())
    assert files["a.txt"]["note"] == (
        "written by tasks write_named, append_named of workflow "
        f"tests.support.orchestrator_ops:writers (execution {execution.id})"
    )
    assert files["b.txt"]["note"].startswith("written by task write_named-2 of workflow")
    job = world.jobs.get(execution.job_uuid)
    assert job.state == "FINISHED"
    assert [e.name for e in world.jobs.history(job.uuid)][-3:] == ["finish", "index", "indexed"]


def test_without_index_outputs_nothing_is_indexed(world: World) -> None:
    run = runner(world, ops.writers, ThreadExecutor(2))
    execution = execute_bounded(run)
    assert run.index_report is None and _files(world, execution.job_uuid) == {}


def test_a_failed_indexing_fails_the_execution_and_the_job(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.indexrequests import IndexingError

    run = runner(world, ops.writers, ThreadExecutor(2), index_outputs=True)

    def broken(*_: Any, **__: Any) -> Any:
        world.jobs.send(run.execution.job_uuid, "index", token=run._job_info.token)
        raise IndexingError("the archive went away")

    monkeypatch.setattr(world.catalog.indexing, "index", broken)
    with pytest.raises(WorkflowFailedError, match="indexing its outputs failed"):
        execute_bounded(run)
    stored = ExecutionRecords(world.store).execution(run.execution_id)
    assert (stored.status, stored.reason) == ("failed", "indexing_failed")
    assert world.jobs.get(stored.job_uuid).state == "FAILED"
    assert world.jobs.history(stored.job_uuid)[-1].data["reason"] == "indexing_failed"


def test_the_execution_is_shown_by_its_recorded_name(world: World) -> None:
    from datacatalog.orchestrator.registry import register_workflow, unregister_workflow
    from datacatalog.service.ui.executions import executions

    register_workflow("tests-named-chain", ops.chain)
    try:
        run = runner(world, "tests-named-chain", ThreadExecutor(1), inputs={"key": "k"})
        execute_bounded(run)
    finally:
        unregister_workflow("tests-named-chain")
    shown = executions(world.store, run.execution.job_uuid)
    assert [e.workflow for e in shown] == ["tests-named-chain"]
    stored = world.store.get("workflow_execution", {"uuid": run.execution_id})
    assert stored is not None and stored["display_name"].startswith("tests-named-chain")


def test_unlimited_attempts_are_bounded_by_the_stage_timeout(world: World, key: str) -> None:
    clock = FakeClock()
    job = world.new_job({"n": uuid.uuid4().hex})
    run = WorkflowRunner(
        world.catalog, None, None, service_id=job.uuid, workflow_name=ops.single,
        inputs={"op": "fail_until", "key": key, "succeed_on": 10**9}, executor=ThreadExecutor(1),
        task_max_attempts=-1, task_retry_interval=10, stage_timeout=35, clock=clock,
    )  # fmt: skip
    with pytest.raises(WorkflowFailedError, match="stage_timeout of 35 s"):
        execute_bounded(run)
    assert clock.slept == [10, 10, 10, 5]
    assert (run.tasks[0].status, run.tasks[0].attempts) == ("retrying", 4)
    stored = ExecutionRecords(world.store).execution(run.execution_id)
    assert (stored.status, stored.reason) == ("failed", "timeout")
    assert stored.error is not None and stored.error["type"] == "StageTimeout"
    assert world.jobs.get(job.uuid).state == "FAILED"
    assert world.jobs.history(job.uuid)[-1].data["reason"] == "timeout"


@pytest.mark.parametrize("value", [0, -1, "soon"])
def test_a_bad_stage_timeout_is_refused(world: World, value: Any) -> None:
    with pytest.raises(InvalidWorkflowRunnerParams, match="stage_timeout"):
        runner(world, ops.chain, ThreadExecutor(1), inputs={"key": "k"}, stage_timeout=value)
    assert world.store.count("workflow_execution", {}) == 0
