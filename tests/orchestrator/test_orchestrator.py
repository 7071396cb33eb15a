"""Tests for datacatalog.orchestrator: the runner on the thread executor, on both engines.

Operations live in :mod:`tests.support.orchestrator_ops`. A fake clock makes retry intervals pass
without sleeping; parallelism is proven with a barrier that only opens when two
operations run at the same time, never with timing.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from datacatalog import errors
from datacatalog.errors import InvalidRequestError, InvalidTransitionError
from datacatalog.orchestrator import events
from datacatalog.orchestrator.exceptions import (
    ActiveExecutionsError,
    InvalidWorkflowRunnerParams,
    OrchestratorError,
    TaskAbortException,
    TaskRetryException,
    UndeclaredWorkflowError,
    WorkflowFailedError,
    WorkflowImplementationNotFoundError,
)
from datacatalog.orchestrator.executors import ThreadExecutor
from datacatalog.orchestrator.plugin import PluginManager
from datacatalog.orchestrator.records import ExecutionRecords
from datacatalog.orchestrator.registry import register_workflow, unregister_workflow
from datacatalog.orchestrator.workflow_runner import RUNNER_LOGGER, WorkflowRunner, request_cancel
from tests.support import orchestrator_ops as ops
from tests.support.clocks import FakeClock
from tests.support.jobs import World
from tests.support.runners import runner


def events_of(world: World, job_uuid: str) -> list[str]:
    return [e.name for e in world.jobs.history(job_uuid)]


# -- the graph --------------------------------------------------------------------------


def test_diamond_runs_dependencies_in_order_and_siblings_together(world: World, key: str) -> None:
    ops.BARRIERS[key] = threading.Barrier(2, timeout=10)
    run = runner(world, ops.diamond, inputs={"key": key})
    seen: list[tuple[str, str]] = []

    def started(sender: Any, task: Any, **_: Any) -> None:
        seen.append(("start", task.name))

    def succeeded(sender: Any, task: Any, **_: Any) -> None:
        seen.append(("success", task.name))

    events.start_task_signal.connect(started)
    events.on_success_task_signal.connect(succeeded)
    try:
        execution = run.execute()
    finally:
        events.start_task_signal.disconnect(started)
        events.on_success_task_signal.disconnect(succeeded)
    assert execution.status == "succeeded"
    calls = ops.CALLS[key]
    assert calls[0] == "top" and calls[-1] == "bottom" and set(calls[1:3]) == {"left", "right"}
    # Both siblings started before either succeeded: they overlapped.
    order = [s for s in seen if s[1] in ("left", "right")]
    assert [kind for kind, _ in order[:2]] == ["start", "start"]
    assert seen.index(("success", "record")) < seen.index(("start", "left"))
    assert seen.index(("success", "right")) < seen.index(("start", "bottom"))
    records = ExecutionRecords(world.store)
    stored = records.execution(run.execution_id)
    assert stored.status == "succeeded" and stored.started_at and stored.ended_at
    assert [t.name for t in records.tasks(run.execution_id)] == [
        "record",
        "left",
        "right",
        "bottom",
    ]
    assert all(t.status == "success" and t.attempts == 1 for t in records.tasks(run.execution_id))
    job = world.jobs.get(stored.job_uuid)
    assert job.state == "FINISHED"
    assert events_of(world, job.uuid) == ["create", "run", "update", "finish"]
    update = world.jobs.history(job.uuid)[2]
    outcomes = [o["task"] for o in update.data["task_outcomes"]]
    assert outcomes[0] == "record" and outcomes[-1] == "bottom" and len(outcomes) == 4
    logs = records.logs(run.execution_id)
    operations = [entry for entry in logs if entry["logger"] != RUNNER_LOGGER]
    assert [entry["message"] for entry in operations] == ["ran top", "ran bottom"]
    assert operations[0]["task"] == "record" and operations[0]["attempt"] == 1
    # The runner's own records tell each task's start and end, in order around its own.
    assert [entry["message"] for entry in logs[:3]] == [
        "task record attempt 1 started",
        "ran top",
        "task record attempt 1 ended: success",
    ]
    assert [entry["message"] for entry in logs[-3:]] == [
        "task bottom attempt 1 started",
        "ran bottom",
        "task bottom attempt 1 ended: success",
    ]


def test_signals_fire_in_order_and_match_the_records(world: World, key: str) -> None:
    run = runner(world, ops.chain, inputs={"key": key, "steps": 2})
    seen: list[tuple[str, str, str]] = []

    def watcher(name: str) -> Any:
        def handler(sender: Any, **kwargs: Any) -> None:
            if "task" in kwargs:
                seen.append((name, kwargs["task"].name, kwargs["task"].status))
            else:
                seen.append((name, "", kwargs["execution"].status))

        return handler

    handlers = {s: watcher(s.name) for s in (*events.WORKFLOW_SIGNALS, *events.TASK_SIGNALS)}
    for signal, handler in handlers.items():
        signal.connect(handler)
    try:
        run.execute()
    finally:
        for signal, handler in handlers.items():
            signal.disconnect(handler)
    assert seen == [
        ("start_workflow_signal", "", "started"),
        ("sent_task_signal", "step0", "pending"),
        ("start_task_signal", "step0", "started"),
        ("on_success_task_signal", "step0", "success"),
        ("sent_task_signal", "step1", "pending"),
        ("start_task_signal", "step1", "started"),
        ("on_success_task_signal", "step1", "success"),
        ("on_success_workflow_signal", "", "succeeded"),
    ]


def test_a_subscriber_that_raises_changes_nothing(world: World, key: str) -> None:
    def bad(sender: Any, **_: Any) -> None:
        raise RuntimeError("subscriber bug")

    events.on_success_task_signal.connect(bad)
    try:
        execution = runner(world, ops.chain, inputs={"key": key, "steps": 1}).execute()
    finally:
        events.on_success_task_signal.disconnect(bad)
    assert execution.status == "succeeded"


# -- retries ----------------------------------------------------------------------------


def test_max_attempts_counts_attempts_in_all(world: World, key: str) -> None:
    clock = FakeClock()
    run = runner(
        world,
        ops.single,
        clock,
        inputs={"op": "fail_until", "key": key, "succeed_on": 3},
        task_max_attempts=3,
        task_retry_interval=7,
    )
    execution = run.execute()
    assert execution.status == "succeeded"
    assert ops.CALLS[key] == ["attempt 1", "attempt 2", "attempt 3"]
    task = run.tasks[0]
    assert task.attempts == 3 and [a["outcome"] for a in task.attempt_log] == [
        "failed",
        "failed",
        "success",
    ]
    assert clock.slept == [7, 7]


def test_too_few_attempts_fail_the_workflow_with_the_root_cause(world: World, key: str) -> None:
    run = runner(
        world,
        ops.single,
        inputs={"op": "fail_until", "key": key, "succeed_on": 3},
        task_max_attempts=2,
    )
    with pytest.raises(WorkflowFailedError) as caught:
        run.execute()
    assert ops.CALLS[key] == ["attempt 1", "attempt 2"]
    error = caught.value.execution.error
    assert error is not None
    assert error["type"] == "ValueError" and error["message"] == "not yet (attempt 2)"
    assert "Traceback" in error["traceback"] and error["task"] == "fail_until"
    job = world.jobs.get(run.execution.job_uuid)
    assert job.state == "FAILED"
    fail = world.jobs.history(job.uuid)[-1]
    assert fail.data["reason"] == "task_failed" and fail.data["error"]["type"] == "ValueError"


def test_stored_error_is_the_root_cause_with_its_chain(world: World) -> None:
    run = runner(world, ops.single, inputs={"op": "broken"})
    with pytest.raises(WorkflowFailedError):
        run.execute()
    error = ExecutionRecords(world.store).execution(run.execution_id).error
    assert error is not None and error["type"] == "LookupError"
    assert "KeyError: 'missing-column'" in error["traceback"]
    assert "direct cause" in error["traceback"]


def test_retry_counts_as_an_attempt_and_overrides_the_interval(world: World, key: str) -> None:
    clock = FakeClock()
    run = runner(
        world,
        ops.single,
        clock,
        inputs={"op": "retry_with", "key": key, "interval": 2.5},
        task_retry_interval=60,
    )
    run.execute()
    assert ops.CALLS[key] == ["attempt 1", "attempt 2"]
    assert clock.slept == [2.5]
    assert [a["outcome"] for a in run.tasks[0].attempt_log] == ["retry", "success"]


def test_abort_is_never_retried(world: World, key: str) -> None:
    run = runner(world, ops.single, inputs={"op": "aborting", "key": key}, task_max_attempts=5)
    with pytest.raises(WorkflowFailedError) as caught:
        run.execute()
    assert ops.CALLS[key] == ["abort"]
    assert caught.value.execution.error["message"] == "this input can never work"  # type: ignore[index]
    assert run.tasks[0].attempts == 1


def test_ignore_failure_lets_dependants_run_and_the_workflow_succeed(
    world: World, key: str
) -> None:
    run = runner(world, ops.with_optional, inputs={"key": key}, task_max_attempts=1)
    assert run.execute().status == "succeeded"
    assert ops.CALLS[key] == ["optional", "after optional"]
    assert [t.status for t in run.tasks] == ["failed", "success"]


def test_a_failed_task_stops_its_dependants(world: World, key: str) -> None:
    run = runner(world, ops.fail_then_more, inputs={"key": key})
    with pytest.raises(WorkflowFailedError):
        run.execute()
    assert ops.CALLS[key] == []
    assert [t.status for t in run.tasks] == ["failed", "pending"]


def test_per_operation_zero_values_are_values(world: World) -> None:
    from datacatalog.orchestrator.decorators import Operation

    op = Operation(ops.noop.func, retry_interval=0, ignore_failure=False)
    assert op.retry_interval == 0.0 and op.ignore_failure is False
    with pytest.raises(InvalidRequestError, match="max_attempts"):
        Operation(ops.noop.func, max_attempts=0)


# -- cancellation and resume --------------------------------------------------------------


def test_cancel_mid_graph(world: World, key: str) -> None:
    ops.GATES[key] = threading.Event()
    run = runner(world, ops.gate_then_more, FakeClock(), inputs={"key": key})
    cancelled = threading.Event()

    def on_start(sender: Any, task: Any, **_: Any) -> None:
        if sender is run and task.name == "wait_gate":
            run.cancel()
            ops.GATES[key].set()
            cancelled.set()

    events.start_task_signal.connect(on_start)
    try:
        execution = run.execute()
    finally:
        events.start_task_signal.disconnect(on_start)
    assert cancelled.is_set()
    assert execution.status == "cancelled"
    assert ops.CALLS[key] == ["waiting", "released"]  # nothing started after the cancel
    assert [t.status for t in run.tasks] == ["success", "pending", "pending"]
    job = world.jobs.get(execution.job_uuid)
    assert job.state == "FAILED"
    assert world.jobs.history(job.uuid)[-1].data["reason"] == "cancelled"


def test_cancel_before_execute_runs_nothing(world: World, key: str) -> None:
    run = runner(world, ops.chain, inputs={"key": key})
    assert run.cancel() is True
    assert run.cancel() is False
    execution = run.execute()
    assert execution.status == "cancelled"
    assert ops.CALLS[key] == []
    assert events_of(world, execution.job_uuid) == ["create"]


def test_cancel_from_elsewhere_is_seen_by_polling(world: World, key: str) -> None:
    run = runner(world, ops.single, inputs={"op": "poll_cancel", "key": key})
    original = run.records.cancel_requested
    calls = {"n": 0}

    def cancel_from_outside(execution_id: str) -> bool:
        # Another process writing the flag, as `datacatalog workflows cancel` does.
        if run.tasks[0].status == "started" and not calls["n"]:
            calls["n"] += 1
            request_cancel(world.store, execution_id)
        return original(execution_id)

    run.records.cancel_requested = cancel_from_outside  # type: ignore[method-assign]
    run._poll = 0.0  # poll on every turn of the loop
    execution = run.execute()
    assert execution.status == "cancelled"
    assert ops.CALLS[key] == ["saw cancel"]


def test_resume_reruns_only_unfinished_tasks(world: World, key: str) -> None:
    ops.GATES[key] = threading.Event()
    first = runner(world, ops.gate_then_more, inputs={"key": key})

    def on_start(sender: Any, task: Any, **_: Any) -> None:
        if sender is first and task.name == "wait_gate":
            first.cancel()
            ops.GATES[key].set()

    events.start_task_signal.connect(on_start)
    try:
        first.execute()
    finally:
        events.start_task_signal.disconnect(on_start)
    job_uuid = first.execution.job_uuid
    admin = world.admin()
    world.jobs.reset(job_uuid, token=admin)
    world.jobs.ready(job_uuid, token=admin)
    resumed = WorkflowRunner(
        world.catalog,
        None,
        None,
        execution_id=first.execution_id,
        executor=ThreadExecutor(2),
        clock=FakeClock(),
    )
    execution = resumed.execute()
    assert execution.status == "succeeded" and execution.resumes == 1
    assert ops.CALLS[key] == ["waiting", "released", "second", "third"]
    assert [t.attempts for t in resumed.tasks] == [1, 1, 1]


def test_resume_of_a_failed_execution_retries_its_failed_task(world: World, key: str) -> None:
    run = runner(
        world,
        ops.single,
        inputs={"op": "fail_until", "key": key, "succeed_on": 2},
        task_max_attempts=1,
    )
    with pytest.raises(WorkflowFailedError):
        run.execute()
    with pytest.raises(InvalidWorkflowRunnerParams, match="retry_failed"):
        WorkflowRunner(world.catalog, None, None, execution_id=run.execution_id, retry_failed=False)
    # No administrator: the failed job runs again on the same execution.
    again = WorkflowRunner(
        world.catalog,
        None,
        None,
        execution_id=run.execution_id,
        executor=ThreadExecutor(1),
        clock=FakeClock(),
    )
    assert again.execute().status == "succeeded"
    assert ops.CALLS[key] == ["attempt 1", "attempt 2"]
    assert [a["attempt"] for a in again.tasks[0].attempt_log] == [1, 2]
    assert events_of(world, run.execution.job_uuid)[-3:] == ["retry", "update", "finish"]


def test_resume_refuses_a_retired_job_naming_the_remedy(world: World, key: str) -> None:
    run = runner(world, ops.chain, inputs={"key": key})
    run.cancel()
    run.execute()
    job_uuid = run.execution.job_uuid
    world.jobs.send(job_uuid, "fail")
    world.jobs.send(job_uuid, "retire")
    with pytest.raises(InvalidTransitionError, match="RETIRED"):
        WorkflowRunner(world.catalog, None, None, execution_id=run.execution_id)


# -- one active execution per job ---------------------------------------------------------


def test_one_active_execution_per_job(world: World, key: str) -> None:
    job = world.new_job({"active": key})
    first = runner(world, ops.chain, job=job, inputs={"key": key})
    with pytest.raises(ActiveExecutionsError) as caught:
        runner(world, ops.chain, job=job, inputs={"key": key})
    assert first.execution_id in str(caught.value)
    assert isinstance(caught.value, errors.ActiveExecutionsError)
    assert isinstance(caught.value, errors.ConflictError)
    first.execute()
    world.jobs.send(job.uuid, "reset", token=world.admin())
    world.jobs.send(job.uuid, "ready", token=world.admin())
    assert runner(world, ops.chain, job=job, inputs={"key": key}).execute().status == "succeeded"


def test_a_job_held_by_a_stage_driver_is_refused_naming_the_holder(world: World, key: str) -> None:
    job = world.new_job({"leased": key})
    world.catalog.leases.acquire(job.uuid, holder="driver-123", kind="driver")
    with pytest.raises(ActiveExecutionsError, match="driver-123"):
        runner(world, ops.chain, job=job, inputs={"key": key})
    assert world.store.count("workflow_execution", {}) == 0


def test_the_lease_is_held_while_running_and_released_after(world: World, key: str) -> None:
    run = runner(world, ops.single, inputs={"op": "record", "key": key, "label": "x"})
    holders: list[str | None] = []

    def on_start(sender: Any, **_: Any) -> None:
        if sender is run:
            lease = world.catalog.leases.get(run.execution.job_uuid)
            holders.append(lease.holder if lease else None)

    events.start_task_signal.connect(on_start)
    try:
        run.execute()
    finally:
        events.start_task_signal.disconnect(on_start)
    assert holders == [run.execution_id]
    assert world.catalog.leases.get(run.execution.job_uuid) is None


def test_a_dead_execution_is_closed_by_the_next_runner(world: World, key: str) -> None:
    # A runner killed mid-run leaves its execution "started" and its lease to lapse.
    job = world.new_job({"dead": key})
    dead = runner(world, ops.chain, job=job, inputs={"key": key})
    records = ExecutionRecords(world.store)
    assert records.move_execution(dead.execution, "started")
    holding = world.catalog.leases.acquire(job.uuid, holder=dead.execution_id, kind="workflow")
    with pytest.raises(ActiveExecutionsError, match=dead.execution_id):
        runner(world, ops.chain, job=job, inputs={"key": key})  # its lease is still live
    assert records.execution(dead.execution_id).status == "started"
    world.catalog.leases.release(holding)  # stands for the lapse: nobody holds it now

    successor = runner(world, ops.chain, job=job, inputs={"key": key})
    closed = records.execution(dead.execution_id)
    assert (closed.status, closed.reason) == ("failed", "lease_lapsed")
    assert closed.error is not None and closed.error["type"] == "LeaseLapsed"
    assert closed.ended_at is not None
    assert successor.execute().status == "succeeded"
    assert records.active_executions(job.uuid) == []


def test_a_pending_execution_is_not_taken_for_dead(world: World, key: str) -> None:
    job = world.new_job({"pending": key})
    first = runner(world, ops.chain, job=job, inputs={"key": key})  # not executed yet
    with pytest.raises(ActiveExecutionsError, match=first.execution_id):
        runner(world, ops.chain, job=job, inputs={"key": key})
    assert ExecutionRecords(world.store).execution(first.execution_id).status == "pending"


# -- bad input ----------------------------------------------------------------------------


def test_runner_parameters_are_checked_and_nothing_is_written(world: World, key: str) -> None:
    job = world.new_job({"bad": key})
    pm = PluginManager(world.catalog, world.data_dir / "plugins")
    cases: list[dict[str, Any]] = [
        {},  # neither
        {"workflow_name": ops.chain},  # no service_id
        {
            "execution_id": "100b8d4e-2f55-5c1a-9a77-0d1c2f3e4a5b",
            "service_id": job.uuid,
            "workflow_name": ops.chain,
        },  # both
        {
            "service_id": job.uuid,
            "workflow_name": ops.chain,
            "inputs": {"key": key},
            "task_max_attempts": 0,
        },
        {
            "service_id": job.uuid,
            "workflow_name": ops.chain,
            "inputs": {"key": key},
            "task_retry_interval": -1,
        },
        {
            "service_id": job.uuid,
            "workflow_name": ops.chain,
            "inputs": {"key": key},
            "lease_ttl": 0,
        },
        {
            "service_id": job.uuid,
            "workflow_name": ops.chain,
            "inputs": {"key": key, "colour": "red"},
        },
        {"service_id": job.uuid, "workflow_name": ops.chain, "inputs": {}},
    ]
    for case in cases:
        with pytest.raises(InvalidWorkflowRunnerParams):
            WorkflowRunner(world.catalog, None, pm, **case)
    assert world.store.count("workflow_execution", {}) == 0
    assert world.store.count("workflow_task", {}) == 0


def test_unknown_and_unimportable_workflows(world: World) -> None:
    job = world.new_job({"which": 1})
    pm = PluginManager(world.catalog, world.data_dir / "plugins")
    with pytest.raises(UndeclaredWorkflowError, match="no-such-workflow"):
        WorkflowRunner(
            world.catalog, None, pm, service_id=job.uuid, workflow_name="no-such-workflow"
        )
    register_workflow("tests-broken", ops.chain)
    try:
        with pytest.raises(WorkflowImplementationNotFoundError):
            WorkflowRunner(
                world.catalog,
                None,
                pm,
                service_id=job.uuid,
                workflow_name="tests.support.orchestrator_ops:not_there",
            )
    finally:
        unregister_workflow("tests-broken")
    assert world.store.count("workflow_execution", {}) == 0


def test_registered_workflow_runs_by_name(world: World, key: str) -> None:
    register_workflow("tests-chain", ops.chain)
    try:
        run = runner(world, "tests-chain", inputs={"key": key, "steps": 1})
        assert run.execute().workflow_name == "tests-chain"
    finally:
        unregister_workflow("tests-chain")


def test_exception_classes_follow_the_seed() -> None:
    for cls in (
        ActiveExecutionsError,
        InvalidWorkflowRunnerParams,
        UndeclaredWorkflowError,
        WorkflowImplementationNotFoundError,
    ):
        assert issubclass(cls, OrchestratorError) and issubclass(cls, errors.DataCatalogError)
    assert issubclass(TaskRetryException, RuntimeError) and issubclass(
        TaskAbortException, RuntimeError
    )
    assert TaskRetryException("m", retry_interval=3).retry_interval == 3
    assert InvalidWorkflowRunnerParams("x").code == "invalid_request"
    assert ActiveExecutionsError("x").code == "active_executions"
    assert UndeclaredWorkflowError("x").code == "not_found"


def test_graph_refuses_bad_arguments(world: World) -> None:
    from datacatalog.orchestrator.graph import TaskGraph

    graph = TaskGraph()
    with pytest.raises(InvalidRequestError, match="unexpected keyword"):
        graph.add(ops.record, key="k", label="l", colour="red")
    with pytest.raises(InvalidRequestError, match="reserved"):
        graph.add(ops.noop, ctx=1)
    with pytest.raises(InvalidRequestError, match="not in the graph"):
        graph.add(ops.noop, after=["ghost"])
    first = graph.add(ops.noop)
    assert graph.add(ops.noop).name == "noop-2" and first.name == "noop"


def test_toolbelt_and_archive_dir(world: World, key: str) -> None:
    run = runner(world, ops.single, inputs={"op": "with_toolbelt", "key": key, "sample": "s9"})
    run.execute()
    job = world.jobs.get(run.execution.job_uuid)
    assert (world.archive_dir(job) / "sub" / "out.txt").read_text() == key


def test_an_executor_that_cannot_start_fails_the_execution_and_the_job(
    world: World, key: str
) -> None:
    class Broken(ThreadExecutor):
        def start(self, execution_id: str, emit: Any) -> None:
            raise OSError("no workers to be had")

    run = runner(world, ops.chain, inputs={"key": key}, executor=Broken(1))
    with pytest.raises(OSError, match="no workers"):
        run.execute()
    stored = ExecutionRecords(world.store).execution(run.execution_id)
    assert (stored.status, stored.reason) == ("failed", "error")
    assert stored.error is not None and stored.error["type"] == "OSError"
    job = world.jobs.get(stored.job_uuid)
    assert job.state == "FAILED"
    assert world.catalog.leases.get(job.uuid) is None


def test_logging_handlers_get_the_records_the_execution_log_keeps(world: World, key: str) -> None:
    run = runner(world, ops.single, inputs={"op": "logs_twice", "key": key})
    run.execute()
    assert f"seen by {key}" in ops.EXTRA_HANDLER.messages
    assert ops.CALLS[key] == [run.execution_id]
    logs = ExecutionRecords(world.store).logs(run.execution_id)
    assert [(r["level"], r["message"]) for r in logs if r["logger"] != RUNNER_LOGGER] == [
        ("WARNING", f"seen by {key}")
    ]
