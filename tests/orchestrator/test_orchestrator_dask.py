"""The Dask executor on a local cluster of 2 workers: success, retry with a new key,
a worker crash, cancel; and a dask-jobqueue SLURM job script.

One cluster serves the module (started with no allowed failures, as the executor starts
its own); one test lets the executor start and close a cluster of its own.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from datacatalog.errors import InvalidRequestError  # noqa: E402
from datacatalog.orchestrator import events  # noqa: E402
from datacatalog.orchestrator.decorators import operation  # noqa: E402
from datacatalog.orchestrator.exceptions import (  # noqa: E402
    InvalidWorkflowRunnerParams,
    WorkflowFailedError,
)
from datacatalog.orchestrator.executors import DaskExecutor  # noqa: E402
from datacatalog.orchestrator.workflow_runner import WorkflowRunner  # noqa: E402
from tests.support import orchestrator_ops as ops  # noqa: E402
from tests.support.clocks import FakeClock  # noqa: E402
from tests.support.jobs import World  # noqa: E402


@pytest.fixture(scope="module")
def client(dask_client: Any) -> Any:
    return dask_client


def dask_runner(
    world: World, workflow: Any, executor: DaskExecutor, **options: Any
) -> WorkflowRunner:
    job = world.new_job({"n": uuid.uuid4().hex})
    return WorkflowRunner(
        world.catalog,
        None,
        None,
        service_id=job.uuid,
        workflow_name=workflow,
        executor=executor,
        task_retry_interval=0,
        clock=FakeClock(),
        cancel_poll_interval=0.05,
        **options,
    )


def test_success_and_retry_with_a_new_key(world: World, client: Any) -> None:
    run = dask_runner(
        world,
        ops.single,
        DaskExecutor(client=client),
        inputs={"op": "retry_with", "key": "k", "interval": 0},
    )
    assert run.execute().status == "succeeded"
    # Had the second attempt reused the first one's key, Dask would have returned the
    # cached "retry" outcome instead of running it.
    assert [a["outcome"] for a in run.tasks[0].attempt_log] == ["retry", "success"]
    assert client.status == "running"  # a client we were given is never closed


def test_a_worker_crash_fails_that_task_and_the_others_run(world: World, client: Any) -> None:
    run = dask_runner(world, ops.crash_and_fine, DaskExecutor(client=client), task_max_attempts=1)
    with pytest.raises(WorkflowFailedError):
        run.execute()
    died, fine = run.tasks
    assert (died.status, died.attempts) == ("failed", 1)
    assert died.error is not None and "died" in died.error["message"]
    assert fine.status == "success"
    client.wait_for_workers(2, timeout=30)


def test_cancel_on_dask(world: World, client: Any) -> None:
    run = dask_runner(
        world, ops.single, DaskExecutor(client=client), inputs={"op": "poll_cancel", "key": "k"}
    )

    def on_start(sender: Any, task: Any, **_: Any) -> None:
        if sender is run:
            run.cancel()

    events.start_task_signal.connect(on_start)
    try:
        execution = run.execute()
    finally:
        events.start_task_signal.disconnect(on_start)
    assert execution.status == "cancelled"
    # The operation saw the flag and returned: its attempt ended as a success.
    assert run.tasks[0].status == "success"
    assert world.jobs.get(execution.job_uuid).state == "FAILED"


def test_an_executor_without_address_owns_and_closes_its_cluster(world: World, engine: str) -> None:
    if engine != "memory":
        pytest.skip("one engine is enough to start a second cluster")
    executor = DaskExecutor(workers=1)
    run = dask_runner(world, ops.chain, executor, inputs={"key": "k", "steps": 2})
    assert run.execute().status == "succeeded"
    assert executor.client is None and not executor.owns_cluster


def test_on_its_own_cluster_a_cancel_kills_an_attempt_that_ignores_it(
    world: World, engine: str
) -> None:
    if engine != "memory":
        pytest.skip("one engine is enough to start a second cluster")
    executor = DaskExecutor(workers=1, cancel_grace=0.5)
    run = dask_runner(world, ops.single, executor, inputs={"op": "stubborn"}, task_max_attempts=1)

    def on_start(sender: Any, **_: Any) -> None:
        if sender is run:
            run.cancel()

    events.start_task_signal.connect(on_start)
    try:
        execution = run.execute()
    finally:
        events.start_task_signal.disconnect(on_start)
    assert execution.status == "cancelled"
    task = run.tasks[0]
    assert task.status == "failed" and task.error is not None and "died" in task.error["message"]
    assert executor.client is None and not executor.owns_cluster


def test_dask_executor_checks_its_arguments(client: Any) -> None:
    with pytest.raises(InvalidRequestError, match="not both"):
        DaskExecutor(address="tcp://127.0.0.1:1", client=client)
    with pytest.raises(InvalidRequestError, match="workers"):
        DaskExecutor(address="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(InvalidRequestError, match="workers"):
        DaskExecutor(workers=0)


def test_a_slurm_job_script_renders() -> None:
    slurm = pytest.importorskip("dask_jobqueue.slurm")
    # The job alone renders its script: no scheduler (and no server) is started.
    job = slurm.SLURMJob(
        scheduler="tcp://127.0.0.1:8786",
        name="datacatalog-worker",
        cores=2,
        memory="4GB",
        processes=1,
        queue="normal",
        walltime="01:00:00",
    )
    script = job.job_script()
    assert script.startswith("#!/usr/bin/env bash")
    assert "#SBATCH -p normal" in script and "#SBATCH -t 01:00:00" in script
    assert "distributed.cli.dask_worker tcp://127.0.0.1:8786" in script


def test_a_resource_request_no_worker_meets_is_refused_before_anything_runs(
    world: World, client: Any
) -> None:
    # The module's cluster declares no resources: Dask would queue the task forever.
    executions = world.store.count("workflow_execution", {})
    with pytest.raises(InvalidWorkflowRunnerParams, match=r"task gpu: .*asks for GPU=1") as info:
        dask_runner(world, ops.gpu_work, DaskExecutor(client=client))
    assert "no resources" in str(info.value) and "wait forever" in str(info.value)
    assert world.store.count("workflow_execution", {}) == executions


def test_resources_of_the_local_cluster_are_requested_and_checked(
    world: World, engine: str
) -> None:
    if engine != "memory":
        pytest.skip("one engine is enough to start a cluster with resources")
    with pytest.raises(InvalidWorkflowRunnerParams, match=r"asks for GPU=2.*offer GPU=1"):
        dask_runner(
            world, ops.gpu_work, DaskExecutor(workers=1, resources={"GPU": 1}), inputs={"gpus": 2}
        )
    executor = DaskExecutor(workers=1, resources={"GPU": 1})
    run = dask_runner(world, ops.gpu_work, executor, inputs={"gpus": 1})
    assert run.execute().status == "succeeded"
    assert {t.name: t.status for t in run.tasks} == {"gpu": "success", "cpu": "success"}


@pytest.mark.parametrize(
    ("resources", "match"),
    [
        ({"GPU": 0}, "resource 'GPU' must be a positive number"),
        ({"": 1}, "a resource name must be a non-empty string"),
        ("GPU", "resources must be a mapping"),
    ],
)
def test_bad_resource_requests_name_what_is_wrong(resources: Any, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        operation(resources=resources)(ops.nothing_at_all)
    with pytest.raises(InvalidRequestError, match=match):
        DaskExecutor(resources=resources)


def test_resources_belong_to_the_cluster_we_start(client: Any) -> None:
    with pytest.raises(InvalidRequestError, match="declare their own"):
        DaskExecutor(client=client, resources={"GPU": 1})


def test_an_operation_sent_by_value_keeps_its_options() -> None:
    import copy

    from distributed.protocol import pickle as dask_pickle

    def local(ctx: Any) -> None:
        """Defined in a function: it cannot be imported, so it travels by value."""

    op = operation(resources={"GPU": 1}, max_attempts=2, ignore_failure=True)(local)
    for clone in (copy.copy(op), dask_pickle.loads(dask_pickle.dumps(op))):
        assert clone.resources == {"GPU": 1.0}
        assert (clone.max_attempts, clone.ignore_failure) == (2, True)


class _FakeClient:
    """What cancel() uses of a client: it records the futures it was asked to cancel."""

    def __init__(self) -> None:
        self.cancelled: list[Any] = []

    def cancel(self, futures: list[Any]) -> None:
        self.cancelled.extend(futures)


class _FakeFlag:
    def set(self) -> None:
        pass


def test_a_cancel_keeps_an_attempt_whose_end_came_and_drops_one_that_never_began() -> None:
    from datetime import datetime, timezone

    emitted: list[Any] = []
    executor = DaskExecutor(address="tcp://127.0.0.1:1")  # never connected: bookkeeping only
    executor.execution_id, executor.emit = "ex", emitted.append
    client = _FakeClient()
    executor._client, executor._cancel = client, _FakeFlag()  # type: ignore[assignment]
    ended, waiting = object(), object()
    invocations = {name: type("Inv", (), {"key": f"ex-{name}-1", "task": name, "attempt": 1})()
                   for name in ("done", "queued")}  # fmt: skip
    executor._futures = {
        "ex-done-1": (invocations["done"], ended),  # type: ignore[dict-item]
        "ex-queued-1": (invocations["queued"], waiting),  # type: ignore[dict-item]
    }
    now = datetime.now(timezone.utc).isoformat()

    def end_event(task: str) -> tuple[float, dict[str, Any]]:
        return (0.0, {"execution_id": "ex", "kind": "finished", "task": task, "attempt": 1,
                      "status": "success", "started": now, "ended": now})  # fmt: skip

    # "done" pushed its end before the collector took its future.
    executor._on_event(end_event("done"))
    assert [e.outcome.task for e in emitted] == ["done"]
    assert executor.cancel() == [("queued", 1)]
    assert client.cancelled == [waiting]
    # "queued" had started after all: its end is not reported, as cancel() dropped it.
    executor._on_event(end_event("queued"))
    assert [e.outcome.task for e in emitted] == ["done"]
