"""The stage driver run a second time: each row of the re-run table (docs/reruns.md).

Every test runs on both engines through the ``store`` fixture (via ``world``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from datacatalog.driver import Driver, DriverResult, Payload
from datacatalog.errors import (
    ActiveExecutionsError,
    InvalidRequestError,
    InvalidTransitionError,
    StaleOutputsError,
)
from datacatalog.jobs import Job
from datacatalog.jobs.leases import LeaseService
from tests.support.jobs import World, lapse
from tests.support.reruns import FILES, failed_job, finished_job, new_job, write

WAIT = 10.0


class Counted:
    """An execute step that writes ``files`` to the archive directory and counts its calls."""

    def __init__(self, files: dict[str, bytes] | None = None, *, fail: bool = False) -> None:
        self.calls = 0
        self.files = FILES if files is None else files
        self.fail = fail

    def __call__(self, driver: Driver, payload: Payload) -> bool:
        self.calls += 1
        directory = payload.output_entries[0].path
        assert directory is not None
        for name, content in self.files.items():
            path = Path(directory) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        return not self.fail


def drive(world: World, job: Job, step: Counted, **options: Any) -> DriverResult:
    driver = Driver(job.uuid, catalog=world.catalog, execute=step, index_outputs=True, **options)
    driver.start()
    return driver.wait_for_completion(timeout=WAIT)


def names(world: World, job: Job) -> list[str]:
    return [e.name for e in world.jobs.history(job.uuid) if e.name != "update"]


def test_a_new_job_runs(world: World) -> None:
    step = Counted()
    result = drive(world, new_job(world), step)
    assert (result.succeeded, result.outcome, result.up_to_date, step.calls) == (
        True,
        "run",
        False,
        1,
    )


def test_a_second_run_of_a_finished_job_runs_nothing_and_says_so(world: World) -> None:
    job = new_job(world)
    step = Counted()
    first = drive(world, job, step)
    assert first.succeeded and first.index_report is not None
    second = drive(world, job, step)
    assert step.calls == 1  # nothing ran the second time
    assert (second.succeeded, second.up_to_date, second.outcome) == (True, True, "up_to_date")
    assert (second.state, second.attempts, second.events) == ("FINISHED", 0, ("reuse",))
    assert second.verification is not None and second.verification.hashed == 2
    assert second.message is not None and "2 files verified" in second.message
    assert second.to_dict()["verification"]["files"] == 2
    assert names(world, job) == ["create", "run", "finish", "index", "indexed", "reuse"]
    assert world.catalog.leases.get(job.uuid) is None  # no lease was taken


def test_a_failed_job_runs_again_and_its_leftover_is_not_indexed(world: World) -> None:
    job = failed_job(world, {"leftover.tmp": b"half-written"})
    step = Counted({"counts.csv": b"gene,count\n"})
    result = drive(world, job, step)
    assert (result.succeeded, result.outcome, step.calls) == (True, "rerun", 1)
    assert result.index_report is not None and result.index_report.written == 1
    indexed = [r.name for r in world.catalog.indexing.files(job.uuid)]
    assert indexed == [f"{job.archive_path}/counts.csv"]
    assert not (world.archive_dir(job) / "leftover.tmp").exists()
    assert names(world, job) == ["create", "run", "fail", "retry", "finish", "index", "indexed"]
    outcomes = [(e.began_with, e.outcome) for e in world.jobs.executions(job.uuid)]
    assert outcomes == [("run", "failed"), ("retry", "finished")]


def test_a_cancelled_job_runs_again(world: World) -> None:
    job = new_job(world)
    driver = Driver(job.uuid, catalog=world.catalog, execute=Counted())
    driver.cancel()
    driver.start()  # cancelled before it started: nothing ran, nothing posted
    job_after = world.jobs.get(job.uuid)
    assert job_after.state == "CREATED"
    world.jobs.send(job.uuid, "run")
    world.jobs.send(job.uuid, "fail", data={"reason": "cancelled"})
    step = Counted()
    assert drive(world, job, step).succeeded and step.calls == 1
    (failed, retried) = world.jobs.executions(job.uuid)
    assert (failed.reason, retried.began_with) == ("cancelled", "retry")


def test_a_lapsed_lease_is_taken_over(world: World) -> None:
    job = new_job(world)
    world.jobs.send(job.uuid, "run", data={"driver": "driver-dead"})
    lapse(world, job, holder="driver-dead")
    step = Counted()
    result = drive(world, job, step)
    assert (result.succeeded, result.outcome, step.calls) == (True, "take_over", 1)
    (execution,) = world.jobs.executions(job.uuid)
    assert execution.taken_over_from == ("driver-dead",)


def test_a_job_held_by_a_live_driver_is_refused(world: World) -> None:
    job = new_job(world)
    world.catalog.leases.acquire(job.uuid, holder="driver-alive", kind="driver")
    step = Counted()
    with pytest.raises(ActiveExecutionsError, match="driver-alive"):
        drive(world, job, step)
    assert step.calls == 0


def test_a_changed_output_byte_is_stale_and_named(world: World) -> None:
    job = finished_job(world)
    path = world.archive_dir(job) / "counts.csv"
    data = bytearray(path.read_bytes())
    data[-2] ^= 1
    path.write_bytes(bytes(data))
    step = Counted()
    with pytest.raises(StaleOutputsError, match=r"changed: .*counts\.csv") as info:
        drive(world, job, step)
    assert info.value.details["changed"] == [f"{job.archive_path}/counts.csv"]
    assert step.calls == 0 and world.jobs.get(job.uuid).state == "FINISHED"
    result = drive(world, job, step, if_stale="rerun")
    assert (result.succeeded, result.outcome, step.calls) == (True, "rerun", 1)
    assert result.verification is not None
    assert result.verification.changed == (f"{job.archive_path}/counts.csv",)
    assert drive(world, job, step).up_to_date  # the new outputs verify


def test_a_forced_run_is_a_new_execution_superseding_the_records(world: World) -> None:
    job = finished_job(world)
    step = Counted({"counts.csv": b"gene,count\nrpoB,1\n"})
    result = drive(world, job, step, force=True)
    assert (result.succeeded, result.outcome, step.calls) == (True, "rerun", 1)
    indexed = [r.name for r in world.catalog.indexing.files(job.uuid)]
    assert indexed == [f"{job.archive_path}/counts.csv"]  # the old PNG is not the new run's
    rerun = next(e for e in world.jobs.history(job.uuid) if e.name == "rerun")
    assert rerun.data["reason"] == "forced" and rerun.data["superseded"]["files"] == 2


@pytest.mark.parametrize("how", ["retire", "reset", "delete"])
def test_retired_reset_and_deleted_jobs_are_refused(world: World, how: str) -> None:
    job = finished_job(world)
    if how == "retire":
        world.jobs.send(job.uuid, "retire")
    else:
        getattr(world.jobs, how)(job.uuid, token=world.admin())
    step = Counted()
    word = {"retire": "RETIRED", "reset": "RESET", "delete": "deleted"}[how]
    for force in (False, True):
        with pytest.raises(InvalidTransitionError, match=word):
            drive(world, job, step, force=force)
    assert step.calls == 0


def test_the_decision_is_taken_again_under_the_lease(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = failed_job(world)
    other = Counted()
    acquire = LeaseService.acquire

    def finished_meanwhile(self: LeaseService, *args: Any, **kwargs: Any) -> Any:
        # Another execution retries and finishes the job before this driver's lease.
        monkeypatch.setattr(LeaseService, "acquire", acquire)
        drive(world, job, other)
        return acquire(self, *args, **kwargs)

    monkeypatch.setattr(LeaseService, "acquire", finished_meanwhile)
    step = Counted()
    result = drive(world, job, step)
    assert (other.calls, step.calls) == (1, 0)
    assert result.up_to_date and result.lease_released is False
    assert world.catalog.leases.get(job.uuid) is None  # given back


def test_bad_rerun_options_are_refused_before_anything(world: World) -> None:
    job = new_job(world)
    for options in ({"force": "yes"}, {"if_stale": "ignore"}, {"verify": "md5"}):
        with pytest.raises(InvalidRequestError):
            Driver(job.uuid, catalog=world.catalog, execute=Counted(), **options)
    assert names(world, job) == ["create"]


def test_a_failed_run_then_a_retry_keeps_both_in_the_history(world: World) -> None:
    job = new_job(world)
    assert not drive(world, job, Counted(fail=True)).succeeded
    write(world, job, {"stray.bin": b"x"})
    assert drive(world, job, Counted()).succeeded
    history = world.jobs.history(job.uuid)
    fail = next(e for e in history if e.name == "fail")
    assert fail.data["reason"] == "callback_returned_false"
    assert [e.outcome for e in world.jobs.executions(job.uuid)] == ["failed", "finished"]
    assert f"{job.archive_path}/stray.bin" not in {
        r.name for r in world.catalog.indexing.files(job.uuid)
    }


def test_drivers_racing_on_a_failed_job_run_it_once(world: World) -> None:
    job = failed_job(world)
    step = Counted()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race() -> None:
        driver = Driver(job.uuid, catalog=world.catalog, execute=step, index_outputs=True)
        barrier.wait()
        try:
            driver.start()
            result = driver.wait_for_completion(timeout=WAIT)
            outcome = "up_to_date" if result.up_to_date else str(result.outcome)
        except ActiveExecutionsError:
            outcome = "held"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(outcomes) == 4 and outcomes.count("rerun") == 1, outcomes
    assert set(outcomes) <= {"rerun", "held", "up_to_date"}
    assert step.calls == 1
    assert names(world, job).count("retry") == 1
    assert world.jobs.get(job.uuid).state == "FINISHED"
