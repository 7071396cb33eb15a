"""Faults on the runners: a stage driver and a workflow runner killed in the middle of work.

Each test starts the runner in a child process over a real ``mongod`` with a short lease,
SIGKILLs it while its work is running (after it has half-written an output), and then
checks: the lease lapses by itself, a second run on the same job takes it over (the
takeover is in the job's history), and nothing half-written remains in the catalog: every
job has its ``create`` entry, every file record links to an existing job, and no workflow
execution is left ``started``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datacatalog.catalog import Catalog
from datacatalog.clock import utc_now
from datacatalog.driver import Driver
from datacatalog.jobs import Job
from datacatalog.jobs.leases import Lease
from datacatalog.orchestrator.decorators import operation, workflow
from datacatalog.orchestrator.executors import ThreadExecutor
from datacatalog.orchestrator.graph import TaskGraph
from datacatalog.orchestrator.model import ACTIVE_EXECUTION_STATUSES
from datacatalog.orchestrator.records import ExecutionRecords
from datacatalog.orchestrator.workflow_runner import WorkflowRunner
from tests.faults.children import DATABASE, settings_for
from tests.faults.harness import ControlledMongod, RunnerProcess, wait_until

pytestmark = [pytest.mark.mongod, pytest.mark.slow, pytest.mark.faults]

LEASE_TTL = 1.0  # seconds: the killed runner's lease lapses this long after its last renewal


@pytest.fixture
def catalog(mongod: ControlledMongod, tmp_path: Path) -> Iterator[Catalog]:
    opened = Catalog.open(mongod.uri, settings=settings_for(tmp_path), database=DATABASE)
    try:
        yield opened
    finally:
        opened.close()


def new_job(catalog: Catalog) -> Job:
    pipeline, _ = catalog.pipelines.register(
        {"id": "tests.faults.runners", "components": [{"image": "runners:1.0"}]}
    )
    catalog.metadata.load([{"experiment_id": "experiment.runners"}])
    plan = catalog.jobs.plan(
        pipeline=pipeline.uuid, metadata={"experiment_id": "experiment.runners"}
    )
    return catalog.jobs.create(plan)[0]


def killed_mid_run(
    catalog: Catalog, mongod: ControlledMongod, kind: str, job: Job, tmp_path: Path
) -> Lease:
    """Run ``kind`` on ``job`` in a child, SIGKILL it mid-work; return the lease it held."""
    child = RunnerProcess(kind, mongod.uri, tmp_path, job.uuid, lease_ttl=LEASE_TTL).start()
    try:
        held = catalog.leases.get(job.uuid)
        assert held is not None and held.kind == kind
    finally:
        child.kill()
    # Nobody renews it any more: it lapses on its own (same host, so the same clock).
    wait_until(
        lambda: _lapsed(catalog, job), timeout=10 * LEASE_TTL, what="the dead lease to lapse"
    )
    return held


def _lapsed(catalog: Catalog, job: Job) -> bool:
    lease = catalog.leases.get(job.uuid)
    return lease is None or lease.expires < utc_now()


def assert_taken_over_from(catalog: Catalog, job: Job, dead: Lease) -> None:
    takeovers = [
        e.data["lease"]
        for e in catalog.jobs.history(job.uuid)
        if e.name == "update" and "lease" in (e.data or {})
    ]
    assert [t["taken_over_from"]["holder"] for t in takeovers] == [dead.holder]
    assert takeovers[0]["holder"] != dead.holder


def assert_nothing_half_written(catalog: Catalog) -> None:
    store = catalog.store
    jobs = {doc["uuid"] for doc in store.find("job", {})}
    for uuid in jobs:
        assert "create" in [e.name for e in catalog.jobs.history(uuid)], f"job {uuid}"
    for doc in store.find("file", {}):
        links = list(doc.get("generated_by") or [])
        assert links and set(links) <= jobs, f"file {doc['name']} links to {links}"
    left = store.find("workflow_execution", {"status": {"$in": list(ACTIVE_EXECUTION_STATUSES)}})
    assert left == [], "an execution was left active"


def test_a_killed_driver_run_is_taken_over_and_leaves_nothing_half_written(
    catalog: Catalog, mongod: ControlledMongod, tmp_path: Path
) -> None:
    job = new_job(catalog)
    dead = killed_mid_run(catalog, mongod, "driver", job, tmp_path)
    assert catalog.jobs.get(job.uuid).state == "RUNNING"  # no terminal event was posted

    def complete(_driver: Driver, payload: Any) -> None:
        out = Path(payload.output_entries[0].path)
        (out / "partial.dat").write_bytes(b"whole now")
        (out / "result.dat").write_bytes(b"result")

    second = Driver(
        job.uuid, catalog=catalog, execute=complete, lease_ttl=LEASE_TTL, index_outputs=True
    )
    second.start()
    result = second.wait_for_completion(timeout=60)
    assert result.succeeded, result
    assert result.lease_released
    assert catalog.jobs.get(job.uuid).state == "FINISHED"
    assert_taken_over_from(catalog, job, dead)
    names = sorted(Path(d["name"]).name for d in catalog.store.find("file", {}))
    assert names == ["partial.dat", "result.dat"]
    assert catalog.leases.get(job.uuid) is None
    assert_nothing_half_written(catalog)


@operation(toolbelt=True)
def finish_output(ctx: Any, toolbelt: Any) -> None:
    toolbelt.output_path("result.dat").write_bytes(b"result")


@workflow
def finishing(ctx: Any, graph: TaskGraph) -> None:
    graph.add(finish_output)


def test_a_killed_workflow_execution_is_closed_and_taken_over(
    catalog: Catalog, mongod: ControlledMongod, tmp_path: Path
) -> None:
    job = new_job(catalog)
    dead = killed_mid_run(catalog, mongod, "workflow", job, tmp_path)
    records = ExecutionRecords(catalog.store)
    assert records.execution(dead.holder).status == "started"  # what the kill left behind

    successor = WorkflowRunner(
        catalog,
        None,
        None,
        service_id=job.uuid,
        workflow_name=finishing,
        executor=ThreadExecutor(pool_size=1),
        lease_ttl=LEASE_TTL,
    )
    closed = records.execution(dead.holder)
    assert (closed.status, closed.reason) == ("failed", "lease_lapsed")
    assert successor.execute().status == "succeeded"
    assert catalog.jobs.get(job.uuid).state == "FINISHED"
    assert_taken_over_from(catalog, job, dead)
    assert catalog.leases.get(job.uuid) is None
    assert_nothing_half_written(catalog)
