"""The compatibility API run a second time: ``ManagedPipelineJob(...).setup()`` then
``run()`` on a job that exists, for each row of the re-run table.

Every test runs on both engines through the ``store`` fixture.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from datacatalog.clock import utc_now
from datacatalog.errors import (
    ActiveExecutionsError,
    InvalidTransitionError,
    StaleOutputsError,
    UnauthorizedError,
)
from datacatalog.jobs.reruns import Outcome
from datacatalog.managers.pipelinejobs import ManagedPipelineJob, ManagedPipelineJobInstance
from datacatalog.settings import Settings
from datacatalog.store import Store


class Pipeline:
    """One computation, set up and run the way an agent does, as often as asked."""

    def __init__(self, store: Store, pipelines: Any, settings: Settings) -> None:
        self.store, self.pipelines, self.settings = store, pipelines, settings
        self.executions = 0

    def job(self) -> ManagedPipelineJob:
        return ManagedPipelineJob(
            self.store,
            self.pipelines,
            settings=self.settings,
            sample_id="sample.compat.1",
            data={"k": 5},
            archive_patterns=[{"patterns": [r"\.csv$"], "level": "1"}],
        ).setup()

    def outputs(self, job: ManagedPipelineJob) -> Path:
        assert job.archive_system is not None and job.archive_path is not None
        system = job.catalog.storage.get(job.archive_system)
        return Path(system.resolve(job.archive_path))

    def __call__(self, *, fail: bool = False, **options: Any) -> ManagedPipelineJob:
        job = self.job().run(**options)
        if job.up_to_date:
            return job
        self.executions += 1
        (self.outputs(job) / "counts.csv").write_text("gene,count\nrpoB,1523\n")
        if fail:
            (self.outputs(job) / "partial.csv").write_text("gene,")
            return job.fail({"reason": "callback_raised"})
        job.finish()
        instance = ManagedPipelineJobInstance(self.store, job.uuid, settings=self.settings)
        instance.index(token=job.token, fixity=True, transition=True)
        return job.refresh()


@pytest.fixture
def agent(store: Store, pipelines: Any, settings: Settings, metadata: Any) -> Pipeline:
    return Pipeline(store, pipelines, settings)


def test_a_new_job_runs(agent: Pipeline) -> None:
    job = agent()
    assert (job.state, job.up_to_date, agent.executions) == ("FINISHED", False, 1)


def test_setup_then_run_on_a_finished_job_runs_nothing(agent: Pipeline) -> None:
    agent()
    again = agent()
    assert agent.executions == 1
    assert (again.state, again.up_to_date) == ("FINISHED", True)
    assert again.verification is not None and again.verification.hashed == 1
    names = [e.name for e in again.catalog.jobs.history(again.uuid)]
    assert names == ["create", "run", "finish", "index", "indexed", "reuse"]


def test_a_failed_job_runs_again_without_an_administrator(agent: Pipeline) -> None:
    failed = agent(fail=True)
    assert failed.state == "FAILED"
    job = agent()
    assert (job.state, agent.executions) == ("FINISHED", 2)
    files = [Path(r.name).name for r in job.catalog.indexing.files(job.uuid)]
    assert files == ["counts.csv"]  # the failed run's partial.csv was cleared, not indexed
    assert not (agent.outputs(job) / "partial.csv").exists()
    assert [e.outcome for e in job.catalog.jobs.executions(job.uuid)] == ["failed", "finished"]


def test_a_stale_job_is_refused_naming_the_file_unless_asked(agent: Pipeline) -> None:
    job = agent()
    (agent.outputs(job) / "counts.csv").write_text("gene,count\nrpoB,1524\n")
    with pytest.raises(StaleOutputsError, match=r"counts\.csv"):
        agent()
    assert agent.executions == 1
    rerun = agent(if_stale="rerun")
    assert (rerun.state, agent.executions) == ("FINISHED", 2)
    assert agent().up_to_date


def test_force_runs_again_as_a_new_execution(agent: Pipeline) -> None:
    agent()
    job = agent(force=True)
    assert (job.state, agent.executions) == ("FINISHED", 2)
    executions = job.catalog.jobs.executions(job.uuid)
    assert [e.began_with for e in executions] == ["run", "rerun"]


def test_a_job_held_by_a_live_driver_is_refused(agent: Pipeline) -> None:
    job = agent.job()
    job.catalog.leases.acquire(job.uuid, holder="driver-alive", kind="driver")
    with pytest.raises(ActiveExecutionsError, match="driver-alive"):
        job.run()
    assert job.refresh().state == "CREATED"


def test_a_lapsed_lease_is_taken_over(agent: Pipeline) -> None:
    job = agent.job()
    job.run({"driver": "driver-dead"})
    expired = utc_now() - timedelta(minutes=1)
    lease = {
        "holder": "driver-dead", "kind": "driver", "host": "node-gone", "pid": 4242,
        "since": expired, "renewed": expired, "expires": expired, "ttl": 30.0,
        "taken_over": None,
    }  # fmt: skip
    job.store.update("job", {"uuid": job.uuid}, {"$set": {"lease": lease}})
    again = agent.job().run({"driver": "driver-new"})
    assert again.decision is not None and again.decision.outcome is Outcome.TAKE_OVER
    assert again.state == "RUNNING"
    (execution,) = again.catalog.jobs.executions(again.uuid)
    assert execution.taken_over_from == ("driver-dead",)


@pytest.mark.parametrize("how", ["retire", "reset", "delete"])
def test_retired_reset_and_deleted_jobs_are_refused(agent: Pipeline, how: str) -> None:
    job = agent()
    admin = job.catalog.jobs.admin_token()
    if how == "retire":
        job.retire()
    elif how == "reset":
        job.reset(token=admin, ready=False)
    else:
        job.delete(token=admin)
    word = {"retire": "RETIRED", "reset": "ready", "delete": "undelete"}[how]
    for force in (False, True):
        with pytest.raises(InvalidTransitionError, match=word):
            agent.job().run(force=force)
    assert agent.executions == 1


def test_reset_and_ready_still_re_arm_a_job(agent: Pipeline) -> None:
    job = agent()
    job.reset(token=job.catalog.jobs.admin_token())
    assert job.state == "CREATED"
    assert agent().state == "FINISHED" and agent.executions == 2


def test_an_instance_needs_the_token_to_run(
    agent: Pipeline, store: Store, settings: Settings
) -> None:
    job = agent.job()
    instance = ManagedPipelineJobInstance(store, job.uuid, settings=settings)
    with pytest.raises(UnauthorizedError):
        instance.run()
    assert instance.refresh().state == "CREATED"
    assert instance.run(token=job.token).state == "RUNNING"
