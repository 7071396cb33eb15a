"""Tests for datacatalog.jobs.reruns (the decision), jobs.leftovers (what retry and rerun
clear) and jobs.executions (each run of a job, from its history).

Every test runs on both engines through the ``store`` fixture (via ``world``).
"""

from __future__ import annotations

from typing import Any

import pytest

from datacatalog.errors import (
    ActiveExecutionsError,
    ForbiddenError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    StaleOutputsError,
)
from datacatalog.identifiers import typed_uuid
from datacatalog.jobs.executions import executions, run_id
from datacatalog.jobs.reruns import Outcome, begin, decide, record_up_to_date
from datacatalog.provenance.openlineage import lifecycle
from tests.support.jobs import World, lapse
from tests.support.reruns import FILES, failed_job, finished_job, new_job, write


def names(world: World, job_uuid: str) -> list[str]:
    return [e.name for e in world.jobs.history(job_uuid)]


# -- the decision, row by row ----------------------------------------------------------------


def test_a_created_job_runs(world: World) -> None:
    decision = decide(world.catalog, new_job(world))
    assert (decision.outcome, decision.event, decision.runs) == (Outcome.RUN, "run", True)
    assert decision.error() is None


def test_a_job_held_by_a_live_holder_is_refused_naming_it(world: World) -> None:
    job = new_job(world)
    world.catalog.leases.acquire(job.uuid, holder="driver-alive", kind="driver")
    world.jobs.send(job.uuid, "run")
    decision = decide(world.catalog, job.uuid)
    assert decision.outcome is Outcome.HELD and not decision.runs
    assert "driver-alive" in decision.message
    error = decision.error()
    assert isinstance(error, ActiveExecutionsError) and error.details["holder"] == "driver-alive"
    # The holder itself is not held by its own lease.
    assert decide(world.catalog, job.uuid, holder="driver-alive").outcome is Outcome.RUN


def test_a_lapsed_lease_is_taken_over(world: World) -> None:
    job = new_job(world)
    world.jobs.send(job.uuid, "run")
    lapse(world, job, holder="driver-dead")
    decision = decide(world.catalog, job.uuid, holder="driver-new")
    assert (decision.outcome, decision.event) == (Outcome.TAKE_OVER, "run")
    assert decision.lease is not None and decision.lease.holder == "driver-dead"
    assert "driver-dead" in decision.message


def test_a_failed_job_runs_again_as_a_new_execution(world: World) -> None:
    job = failed_job(world)
    decision = decide(world.catalog, job.uuid)
    assert (decision.outcome, decision.event, decision.reason) == (
        Outcome.RERUN,
        "retry",
        "failed",
    )
    after = begin(world.catalog, decision, data={"driver": "driver-2"})
    assert after.state == "RUNNING"
    # The failed run's leftover is gone before anything runs: never indexed as output.
    assert list(world.archive_dir(job).iterdir()) == []
    history = world.jobs.history(job.uuid)
    assert [e.name for e in history] == ["create", "run", "fail", "retry"]
    assert history[2].data == {"reason": "callback_raised"}  # the failure stays on record
    note = history[-1].data
    assert (note["driver"], note["reason"], note["leftovers"]) == ("driver-2", "failed", "cleared")
    assert note["cleared"] == {"files": 1, "named": [f"{job.archive_path}/partial.csv"]}


def test_an_up_to_date_job_runs_nothing_and_says_what_it_verified(world: World) -> None:
    job = finished_job(world)
    before = world.store.get("job", {"uuid": job.uuid})
    decision = decide(world.catalog, job.uuid)
    assert decision.outcome is Outcome.UP_TO_DATE and decision.up_to_date
    assert not decision.runs and decision.event is None and decision.error() is None
    verification = decision.verification
    assert verification is not None
    assert (verification.mode, verification.files, verification.hashed) == ("sha256", 2, 2)
    assert verification.finished is not None
    assert "2 files verified (2 by sha256)" in decision.message
    assert world.store.get("job", {"uuid": job.uuid}) == before  # deciding writes nothing
    assert record_up_to_date(world.catalog, decision, holder="driver-x")
    after = world.jobs.get(job.uuid)
    assert after.state == "FINISHED"
    entry = world.jobs.history(job.uuid)[-1]
    assert entry.name == "reuse" and entry.data["verified"]["hashed"] == 2
    assert entry.to_state is None


def test_size_only_verification_says_so(world: World) -> None:
    job = finished_job(world)
    decision = decide(world.catalog, job.uuid, verify="size")
    assert decision.up_to_date
    assert decision.verification is not None
    assert (decision.verification.hashed, decision.verification.by_size) == (0, 2)
    assert "2 by size only" in decision.message


def test_a_job_that_ran_without_indexing_has_nothing_to_verify(world: World) -> None:
    job = new_job(world)
    world.jobs.send(job.uuid, "run")
    world.jobs.send(job.uuid, "finish")
    decision = decide(world.catalog, job.uuid)
    assert decision.up_to_date
    assert "no indexed files to verify" in decision.message


def test_a_changed_byte_makes_the_job_stale_naming_the_file(world: World) -> None:
    job = finished_job(world)
    data = bytearray(FILES["counts.csv"])
    data[0] ^= 1  # the same size: only the checksum tells
    (world.archive_dir(job) / "counts.csv").write_bytes(bytes(data))
    (world.archive_dir(job) / "plots" / "counts.png").unlink()
    decision = decide(world.catalog, job.uuid)
    assert decision.outcome is Outcome.STALE and not decision.runs
    changed, missing = f"{job.archive_path}/counts.csv", f"{job.archive_path}/plots/counts.png"
    assert decision.verification is not None
    assert decision.verification.changed == (changed,)
    assert decision.verification.missing == (missing,)
    assert changed in decision.message and missing in decision.message
    error = decision.error()
    assert isinstance(error, StaleOutputsError)
    assert error.details == {"job": job.uuid, "missing": [missing], "changed": [changed]}
    # Asked for, a stale job runs again; its old records are superseded.
    again = decide(world.catalog, job.uuid, if_stale="rerun")
    assert (again.outcome, again.event, again.reason) == (Outcome.RERUN, "rerun", "stale")
    begin(world.catalog, again)
    entry = next(e for e in world.jobs.history(job.uuid) if e.name == "rerun")
    assert entry.data["stale"] == {"missing": [missing], "changed": [changed]}


def test_a_forced_rerun_supersedes_the_earlier_records_visibly(world: World) -> None:
    job = finished_job(world)
    decision = decide(world.catalog, job.uuid, force=True)
    assert (decision.outcome, decision.event, decision.reason) == (
        Outcome.RERUN,
        "rerun",
        "forced",
    )
    begin(world.catalog, decision)
    assert world.jobs.get(job.uuid).state == "RUNNING"
    assert list(world.catalog.indexing.files(job.uuid)) == []
    # The records stay in the catalog, with their checksums, unlinked from the job...
    csv = world.store.get("file", {"name": f"{job.archive_path}/counts.csv"})
    assert csv is not None and csv["sha256"] and job.uuid not in csv["generated_by"]
    # ... and the history names them.
    note = world.jobs.history(job.uuid)[-1].data
    assert note["superseded"]["files"] == 2
    assert {r["name"] for r in note["superseded"]["named"]} == {
        f"{job.archive_path}/counts.csv",
        f"{job.archive_path}/plots/counts.png",
    }
    assert all(r["sha256"] for r in note["superseded"]["named"])
    # The new run writes and indexes again: the records are linked again.
    write(world, job, {"counts.csv": b"gene,count\nrpoB,1600\n"})
    world.jobs.send(job.uuid, "finish")
    report = world.catalog.indexing.index(job.uuid, fixity=True, transition=True)
    assert report.written == 1
    assert decide(world.catalog, job.uuid).up_to_date


@pytest.mark.parametrize("state", ["VALIDATED", "REJECTED", "FINALIZED"])
def test_later_states_are_up_to_date_or_forced(world: World, state: str) -> None:
    job = finished_job(world)
    world.jobs.send(job.uuid, "validate")
    world.jobs.send(job.uuid, "reject" if state == "REJECTED" else "validated")
    if state == "FINALIZED":
        world.jobs.send(job.uuid, "finalize")
    assert decide(world.catalog, job.uuid).up_to_date
    forced = decide(world.catalog, job.uuid, force=True)
    assert forced.event == "rerun"
    assert begin(world.catalog, forced).state == "RUNNING"


@pytest.mark.parametrize("state", ["INDEXING", "VALIDATING"])
def test_half_handled_outputs_are_refused_unless_forced(world: World, state: str) -> None:
    job = finished_job(world)
    world.jobs.send(job.uuid, "index" if state == "INDEXING" else "validate")
    decision = decide(world.catalog, job.uuid)
    assert decision.outcome is Outcome.REFUSED and state in decision.message
    assert isinstance(decision.error(), InvalidTransitionError)
    assert decide(world.catalog, job.uuid, force=True).event == "rerun"


def test_retired_reset_and_deleted_jobs_are_refused_naming_what_to_do(world: World) -> None:
    retired = finished_job(world)
    world.jobs.send(retired.uuid, "retire")
    reset = finished_job(world)
    world.jobs.reset(reset.uuid, token=world.admin())
    deleted = finished_job(world)
    world.jobs.delete(deleted.uuid, token=world.admin())
    for job, word, todo in (
        (retired, "RETIRED", "reset and ready"),
        (reset, "RESET", "ready"),
        (deleted, "deleted", "undelete"),
    ):
        for force in (False, True):
            decision = decide(world.catalog, job.uuid, force=force)
            assert decision.outcome is Outcome.REFUSED, (word, force)
            assert word in decision.message and todo in decision.message
            error = decision.error()
            assert isinstance(error, InvalidTransitionError)
            with pytest.raises(InvalidTransitionError):
                decision.raise_for_outcome()
            with pytest.raises(InvalidRequestError, match="not to run"):
                begin(world.catalog, decision)


def test_bad_options_and_unknown_jobs_are_clear_errors(world: World) -> None:
    job = new_job(world)
    with pytest.raises(InvalidRequestError, match="if_stale"):
        decide(world.catalog, job.uuid, if_stale="maybe")
    with pytest.raises(InvalidRequestError, match="verify"):
        decide(world.catalog, job.uuid, verify="md5")
    with pytest.raises(InvalidRequestError, match="force"):
        decide(world.catalog, job.uuid, force="yes")  # type: ignore[arg-type]
    with pytest.raises(ForbiddenError):
        decide(world.catalog, job.uuid, token="0" * 64)
    with pytest.raises(NotFoundError):
        decide(world.catalog, typed_uuid("nobody", "pipelinejob"))
    assert decide(world.catalog, job.uuid, token=world.jobs.job_token(job.uuid)).runs


# -- the transitions -------------------------------------------------------------------------


def test_retry_and_rerun_are_one_conditional_write_each(world: World) -> None:
    job = failed_job(world)
    decision = decide(world.catalog, job.uuid)
    begin(world.catalog, decision)
    # The same decision a second time: the job is RUNNING now, the event is refused.
    with pytest.raises(InvalidTransitionError, match="'retry' is not allowed from RUNNING"):
        begin(world.catalog, decision)
    assert names(world, job.uuid).count("retry") == 1


def test_a_replayed_retry_clears_nothing_twice(world: World) -> None:
    job = failed_job(world)
    decision = decide(world.catalog, job.uuid)
    begin(world.catalog, decision, event_id="retry-1")
    write(world, job, {"new.csv": b"fresh"})
    begin(world.catalog, decision, event_id="retry-1")  # a resend: a no-op
    assert (world.archive_dir(job) / "new.csv").exists()
    assert names(world, job.uuid).count("retry") == 1


def test_kept_leftovers_stay_and_the_history_says_so(world: World) -> None:
    job = failed_job(world, {"task-a.csv": b"done"})
    begin(world.catalog, decide(world.catalog, job.uuid), leftovers="keep")
    assert (world.archive_dir(job) / "task-a.csv").exists()
    entry = world.jobs.history(job.uuid)[-1]
    assert (entry.name, entry.data) == ("retry", {"reason": "failed", "leftovers": "kept"})
    with pytest.raises(InvalidRequestError, match="leftovers"):
        world.jobs.send(job.uuid, "fail")
        world.jobs.send(job.uuid, "retry", data={"leftovers": "somewhere"})


def test_a_webhook_style_retry_clears_too(world: World) -> None:
    job = failed_job(world)
    world.jobs.send(job.uuid, "retry", token=world.jobs.job_token(job.uuid))
    assert list(world.archive_dir(job).iterdir()) == []


# -- executions ------------------------------------------------------------------------------


def test_every_execution_is_listed_with_its_run_id_holder_and_outcome(world: World) -> None:
    job = failed_job(world)
    begin(world.catalog, decide(world.catalog, job.uuid), data={"driver": "driver-2"})
    write(world, job, FILES)
    world.jobs.send(job.uuid, "finish")
    world.catalog.indexing.index(job.uuid, fixity=True, transition=True)
    record_up_to_date(world.catalog, decide(world.catalog, job.uuid), holder="driver-3")
    listed = world.jobs.executions(job.uuid)
    assert [(e.number, e.began_with, e.outcome) for e in listed] == [
        (0, "run", "failed"),
        (1, "retry", "finished"),
        (None, "reuse", "up_to_date"),
    ]
    assert [e.run_id for e in listed] == [job.uuid, run_id(job.uuid, 1), None]
    assert listed[0].reason == "callback_raised"
    assert (listed[1].holder, listed[1].reason) == ("driver-2", "failed")
    assert listed[1].details["leftovers"] == "cleared"
    assert listed[2].holder == "driver-3" and listed[2].details["hashed"] == 2
    assert all(e.started and e.ended for e in listed)
    assert listed[1].to_dict()["run_id"] == run_id(job.uuid, 1)
    # The lineage events carry the same run ids.
    ids = {e.event.run.runId for e in lifecycle(world.store, job.uuid)}
    assert ids == {job.uuid, run_id(job.uuid, 1)}


def test_a_takeover_stays_one_execution_naming_both_holders(world: World) -> None:
    job = new_job(world)
    world.jobs.send(job.uuid, "run", data={"driver": "driver-dead"})
    world.jobs.send(job.uuid, "run", data={"driver": "driver-new"})
    world.jobs.send(job.uuid, "finish")
    (execution,) = world.jobs.executions(job.uuid)
    assert execution.holder == "driver-new"
    assert execution.taken_over_from == ("driver-dead",)


def test_executions_of_a_history_are_pure(world: World) -> None:
    job = finished_job(world)
    history = world.jobs.history(job.uuid)
    assert executions(job.uuid, history) == executions(job.uuid, list(history))
    data: dict[str, Any] = executions(job.uuid, history)[0].to_dict()
    assert data["outcome"] == "finished" and data["run_id"] == job.uuid
