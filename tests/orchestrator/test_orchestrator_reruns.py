"""Running a workflow's job again (the shared decision of :mod:`datacatalog.jobs.reruns`):
up to date, failed or cancelled, stale, forced, refused; and resume without an
administrator, keeping what the tasks that succeeded wrote. Both engines."""

from __future__ import annotations

from typing import Any

import pytest

from datacatalog.errors import InvalidTransitionError, StaleOutputsError
from datacatalog.jobs import Job
from datacatalog.orchestrator import events
from datacatalog.orchestrator.exceptions import ActiveExecutionsError, WorkflowFailedError
from datacatalog.orchestrator.executors import ThreadExecutor
from datacatalog.orchestrator.records import ExecutionRecords
from datacatalog.orchestrator.workflow_runner import WorkflowRunner
from tests.support import orchestrator_ops as ops
from tests.support.clocks import FakeClock
from tests.support.jobs import World


def runner(world: World, job: Job, workflow: Any, **options: Any) -> WorkflowRunner:
    options.setdefault("task_retry_interval", 0)
    return WorkflowRunner(
        world.catalog, None, None, service_id=job.uuid, workflow_name=workflow,
        executor=ThreadExecutor(2), clock=FakeClock(), cancel_poll_interval=0.05, **options,
    )  # fmt: skip


def history(world: World, job: Job) -> list[str]:
    return [e.name for e in world.jobs.history(job.uuid)]


def indexed(world: World, job: Job) -> dict[str, Any]:
    docs = world.store.find("file", {"generated_by": job.uuid})
    return {d["name"].rsplit("/", 1)[-1]: d for d in docs}


def finished_job(world: World, key: str) -> tuple[Job, WorkflowRunner]:
    job = world.new_job({"reruns": key})
    first = runner(world, job, ops.writers, inputs={"text": key}, index_outputs=True)
    assert first.execute().status == "succeeded"  # type: ignore[union-attr]
    return job, first


def test_an_up_to_date_job_runs_nothing_and_says_what_was_verified(world: World, key: str) -> None:
    job, first = finished_job(world, key)
    again = runner(world, job, ops.writers, inputs={"text": key}, index_outputs=True)
    assert again.up_to_date
    assert again.decision.message.startswith(f"job {job.uuid} is up to date (FINISHED")
    assert "2 files verified (2 by sha256)" in again.decision.message
    execution = again.execute()
    assert execution is not None and execution.id == first.execution_id
    assert again.execution_id == first.execution_id
    assert [t.status for t in again.tasks] == ["success"] * 3
    assert ExecutionRecords(world.store).executions(job.uuid) == [first.execution]
    assert history(world, job)[-1] == "reuse"
    assert world.jobs.get(job.uuid).state == "FINISHED"
    assert again.cancel() is False
    # The check is listed with the job's executions, without changing its state.
    assert [e.outcome for e in world.jobs.executions(job.uuid)] == ["finished", "up_to_date"]


def test_a_failed_job_runs_again_without_an_administrator(world: World, key: str) -> None:
    job = world.new_job({"failed": key})
    failed = runner(world, job, ops.single, inputs={"op": "leftover_then_fail"})
    with pytest.raises(WorkflowFailedError):
        failed.execute()
    assert world.jobs.get(job.uuid).state == "FAILED"
    assert (world.archive_dir(job) / "leftover.txt").exists()
    again = runner(world, job, ops.writers, inputs={"text": key}, index_outputs=True)
    assert again.decision.event == "retry" and again.execution_id != failed.execution_id
    assert again.execute().status == "succeeded"  # type: ignore[union-attr]
    # What the failed run left is cleared, never indexed as this run's output.
    assert not (world.archive_dir(job) / "leftover.txt").exists()
    assert set(indexed(world, job)) == {"a.txt", "b.txt"}
    assert world.jobs.get(job.uuid).state == "FINISHED"
    # The failed execution and its error stay.
    records = ExecutionRecords(world.store)
    kept = records.execution(failed.execution_id)
    assert kept.status == "failed" and kept.error is not None
    assert kept.error["type"] == "RuntimeError"
    assert [e.id for e in records.executions(job.uuid)] == [again.execution_id, kept.id]
    names = history(world, job)
    assert names.index("fail") < names.index("retry") < names.index("finish")
    # The job's executions, each with its own run id and holder (the workflow execution).
    listed = world.jobs.executions(job.uuid)
    assert [(e.began_with, e.outcome, e.holder) for e in listed] == [
        ("run", "failed", failed.execution_id),
        ("retry", "finished", again.execution_id),
    ]
    assert len({e.run_id for e in listed}) == 2


def test_a_cancelled_execution_leaves_a_job_that_runs_again(world: World, key: str) -> None:
    job = world.new_job({"cancelled": key})
    first = runner(world, job, ops.chain, inputs={"key": key, "steps": 2})

    def on_start(sender: Any, **_: Any) -> None:
        if sender is first:
            first.cancel()

    events.start_task_signal.connect(on_start)
    try:
        assert first.execute().status == "cancelled"  # type: ignore[union-attr]
    finally:
        events.start_task_signal.disconnect(on_start)
    assert world.jobs.get(job.uuid).state == "FAILED"
    again = runner(world, job, ops.chain, inputs={"key": key, "steps": 2})
    assert again.decision.event == "retry"
    assert again.execute().status == "succeeded"  # type: ignore[union-attr]
    assert world.jobs.get(job.uuid).state == "FINISHED"


def test_stale_outputs_are_named_and_rerun_only_when_asked(world: World, key: str) -> None:
    job, _ = finished_job(world, key)
    (world.archive_dir(job) / "a.txt").write_text("changed by hand")
    executions = world.store.count("workflow_execution", {})
    with pytest.raises(StaleOutputsError, match=r"changed: .*a\.txt") as caught:
        runner(world, job, ops.writers, inputs={"text": key}, index_outputs=True)
    assert any(name.endswith("a.txt") for name in caught.value.details["changed"])
    assert world.store.count("workflow_execution", {}) == executions
    rerun = runner(
        world, job, ops.writers, inputs={"text": key}, index_outputs=True, if_stale="rerun"
    )
    assert rerun.decision.event == "rerun"
    assert rerun.execute().status == "succeeded"  # type: ignore[union-attr]
    assert (world.archive_dir(job) / "a.txt").read_text() == f"{key}!"
    assert runner(world, job, ops.writers, inputs={"text": key}).up_to_date


def test_force_runs_again_and_supersedes_the_earlier_records(world: World, key: str) -> None:
    job, _ = finished_job(world, key)
    before = {d["uuid"] for d in world.store.find("file", {"generated_by": job.uuid})}
    forced = runner(world, job, ops.writers, inputs={"text": key}, index_outputs=True, force=True)
    assert (forced.decision.event, forced.decision.reason) == ("rerun", "forced")
    assert forced.execute().status == "succeeded"  # type: ignore[union-attr]
    rerun = next(e for e in world.jobs.history(job.uuid) if e.name == "rerun")
    assert rerun.data["superseded"]["files"] == 2
    assert {d["uuid"] for d in world.store.find("file", {"generated_by": job.uuid})} == before


def test_a_retired_job_is_refused_naming_its_state(world: World, key: str) -> None:
    job, _ = finished_job(world, key)
    world.jobs.send(job.uuid, "retire")
    with pytest.raises(InvalidTransitionError, match="RETIRED"):
        runner(world, job, ops.writers, inputs={"text": key}, force=True)


def test_a_held_job_is_refused_naming_the_holder(world: World, key: str) -> None:
    job = world.new_job({"held": key})
    world.catalog.leases.acquire(job.uuid, holder="driver-9", kind="driver")
    with pytest.raises(ActiveExecutionsError, match="driver-9"):
        runner(world, job, ops.chain, inputs={"key": key})


def test_resume_keeps_the_succeeded_tasks_and_their_outputs(world: World, key: str) -> None:
    job = world.new_job({"resume": key})
    first = runner(world, job, ops.write_then_fail, inputs={"key": key}, task_max_attempts=1,
                   index_outputs=True)  # fmt: skip
    with pytest.raises(WorkflowFailedError):
        first.execute()
    assert [t.status for t in first.tasks] == ["success", "failed"]
    assert world.jobs.get(job.uuid).state == "FAILED"
    resumed = WorkflowRunner(
        world.catalog, None, None, execution_id=first.execution_id, executor=ThreadExecutor(1),
        clock=FakeClock(), index_outputs=True,
    )  # fmt: skip
    execution = resumed.execute()
    assert execution is not None and execution.status == "succeeded" and execution.resumes == 1
    write, fail = resumed.tasks
    assert (write.status, write.attempts, fail.status, fail.attempts) == (
        "success",
        1,
        "success",
        2,
    )
    assert ops.CALLS[key] == ["attempt 1", "attempt 2"]
    # The output of the task that succeeded the first time is kept, and indexed.
    assert (world.archive_dir(job) / "kept.txt").read_text() == "first run"
    retry = next(e for e in world.jobs.history(job.uuid) if e.name == "retry")
    assert retry.data["leftovers"] == "kept"
    assert "kept.txt" in indexed(world, job)
    assert world.jobs.get(job.uuid).state == "FINISHED"


def test_a_job_run_elsewhere_meanwhile_is_up_to_date_under_the_lease(
    world: World, key: str
) -> None:
    from datacatalog.driver import Driver

    job = world.new_job({"meanwhile": key})
    waiting = runner(world, job, ops.chain, inputs={"key": key})  # built, not executed yet
    driver = Driver(job.uuid, execute=lambda *_: None, catalog=world.catalog)
    driver.start()
    assert driver.wait_for_completion(30).succeeded
    assert waiting.execute() is None  # no workflow execution made the outputs
    assert waiting.up_to_date and ops.CALLS[key] == []
    stored = ExecutionRecords(world.store).execution(waiting._execution.id)
    assert (stored.status, stored.reason) == ("cancelled", "up_to_date")
    assert history(world, job)[-1] == "reuse"
    assert world.jobs.get(job.uuid).state == "FINISHED"


def test_a_lease_taken_meanwhile_ends_the_execution_it_refuses(world: World, key: str) -> None:
    job = world.new_job({"taken": key})
    waiting = runner(world, job, ops.chain, inputs={"key": key})
    lease = world.catalog.leases.acquire(job.uuid, holder="driver-7", kind="driver")
    with pytest.raises(ActiveExecutionsError, match="driver-7"):
        waiting.execute()
    stored = ExecutionRecords(world.store).execution(waiting._execution.id)
    assert (stored.status, stored.reason) == ("failed", "error")
    world.catalog.leases.release(lease)
    # Not left pending: the next runner on the job is not refused because of it.
    assert runner(world, job, ops.chain, inputs={"key": key}).execute().status == "succeeded"  # type: ignore[union-attr]


def test_runners_racing_on_a_failed_job_run_it_once(world: World, key: str) -> None:
    import threading

    job = world.new_job({"race": key})
    failed = runner(world, job, ops.single, inputs={"op": "broken"})
    with pytest.raises(WorkflowFailedError):
        failed.execute()
    barrier = threading.Barrier(4, timeout=30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        try:
            run = runner(world, job, ops.single, inputs={"op": "record", "key": key, "label": "x"})
            execution = run.execute()
            outcome = "up to date" if run.up_to_date else str(execution and execution.status)
        except ActiveExecutionsError:
            outcome = "held"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert ops.CALLS[key] == ["x"]  # one of them ran it
    assert outcomes.count("succeeded") == 1 and len(outcomes) == 4
    assert set(outcomes) <= {"succeeded", "held", "up to date"}
    assert world.jobs.get(job.uuid).state == "FINISHED"
    assert ExecutionRecords(world.store).active_executions(job.uuid) == []
