"""The process executor: attempts in child processes, a child that dies fails alone,
arguments that do not pickle are refused before anything runs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from datacatalog.errors import InvalidRequestError
from datacatalog.orchestrator.exceptions import InvalidWorkflowRunnerParams, WorkflowFailedError
from datacatalog.orchestrator.executors import ProcessExecutor
from datacatalog.orchestrator.workflow_runner import WorkflowRunner
from tests.support import orchestrator_ops as ops
from tests.support.clocks import FakeClock
from tests.support.jobs import World


def run_on_processes(world: World, workflow: Any, **options: Any) -> WorkflowRunner:
    job = world.new_job({"n": uuid.uuid4().hex})
    return WorkflowRunner(
        world.catalog,
        None,
        None,
        service_id=job.uuid,
        workflow_name=workflow,
        executor=ProcessExecutor(pool_size=2),
        task_retry_interval=0,
        clock=FakeClock(),
        **options,
    )


def test_a_child_that_dies_fails_its_task_and_the_others_run(world: World) -> None:
    run = run_on_processes(world, ops.crash_and_fine, task_max_attempts=2)
    with pytest.raises(WorkflowFailedError) as caught:
        run.execute()
    died, fine = run.tasks
    assert (died.status, died.attempts) == ("failed", 2)
    assert died.error is not None and died.error["type"] == "WorkerProcessDied"
    assert "exited with code 3" in died.error["message"]
    assert fine.status == "success"
    job = world.jobs.get(run.execution.job_uuid)
    assert (world.archive_dir(job) / "fine.txt").read_text() == job.uuid
    assert caught.value.execution.error["task"] == "die"  # type: ignore[index]


def test_retry_and_logs_cross_the_process_boundary(world: World) -> None:
    run = run_on_processes(
        world, ops.single, inputs={"op": "retry_with", "key": "k", "interval": 0}
    )
    assert run.execute().status == "succeeded"
    assert [a["outcome"] for a in run.tasks[0].attempt_log] == ["retry", "success"]


def test_an_argument_that_does_not_pickle_is_refused_before_anything_runs(world: World) -> None:
    with pytest.raises(InvalidWorkflowRunnerParams, match="argument 'lock'"):
        run_on_processes(world, ops.unpicklable_argument)
    assert world.store.count("workflow_execution", {}) == 0


def test_process_executor_checks_its_options() -> None:
    with pytest.raises(InvalidRequestError, match="pool_size"):
        ProcessExecutor(pool_size=0)
    with pytest.raises(InvalidRequestError, match="start_method"):
        ProcessExecutor(start_method="teleport")


def test_resource_requests_are_dasks_other_executors_run_every_attempt(world: World) -> None:
    run = run_on_processes(world, ops.gpu_work, inputs={"gpus": 2})
    assert run.execute().status == "succeeded"
    assert {t.name: t.status for t in run.tasks} == {"gpu": "success", "cpu": "success"}
