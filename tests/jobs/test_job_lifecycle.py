"""The compound start and end writes (datacatalog.jobs.lifecycle): one round trip each.

Round trips are counted on the store (each store call here is one command), on both
engines; the races run on the real server only (the in-memory engine serializes every
operation, so a race there proves nothing).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from datacatalog.clock import utc_now
from datacatalog.errors import (
    ActiveExecutionsError,
    ConflictError,
    DataCatalogError,
    InvalidRequestError,
    InvalidTransitionError,
    LeaseLostError,
    NotFoundError,
)
from datacatalog.jobs import Job
from datacatalog.jobs.lifecycle import Lifecycle
from datacatalog.store import Store, connect
from tests.support.jobs import World, make_world, nothing_written
from tests.support.jobs import spy as count_calls

_CALLS = ("find", "get", "count", "insert_if_absent", "update", "update_pipeline", "bulk_upsert")
END = (("finish", {"n": 1}, "d:finish"), ("index", {}, "d:index"), ("indexed", {}, "d:indexed"))


def spy(store: Store, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the store's calls by method name, pipeline updates included."""
    return count_calls(store, monkeypatch, _CALLS)


def lifecycle(world: World) -> Lifecycle:
    return world.jobs.lifecycle


def names(world: World, job: str) -> list[str]:
    return [e.name for e in world.jobs.history(job)]


def new_document(world: World, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    plan = world.plan(data)
    return plan.uuid, world.jobs.planner.document(plan)


def lapse(world: World, job: str, holder: str) -> None:
    """Leave ``holder``'s lease as a holder that stopped renewing leaves it."""
    stored = world.store.get("job", {"uuid": job})
    assert stored is not None
    past = utc_now() - timedelta(seconds=60)
    world.store.update(
        "job", {"uuid": job}, {"$set": {"lease": {**stored["lease"], "expires": past}}}
    )
    assert world.jobs.leases.get(job).holder == holder  # type: ignore[union-attr]


def test_a_new_job_is_created_run_and_leased_in_one_write(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    uuid, doc = new_document(world, {"n": 1})
    calls = spy(world.store, monkeypatch)
    started = lifecycle(world).start(uuid, holder="d-1", event_id="d-1:run", new=doc)
    assert calls == Counter({"update_pipeline": 1})
    assert started.created and started.applied
    assert [e.name for e in started.entries] == ["create", "run"]
    assert started.job.state == "RUNNING" and started.lease.holder == "d-1"
    assert names(world, uuid) == ["create", "run"]
    stored = world.jobs.get(uuid)
    assert stored.archive_path == doc["archive_path"] and stored.child_of == doc["child_of"]


def test_an_existing_job_is_started_in_one_write_and_left_otherwise_as_it_was(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = world.new_job({"n": 2}, setup_archive_path=False)
    _, doc = new_document(world, {"n": 2})
    before = world.store.get("job", {"uuid": job.uuid})
    assert before is not None
    calls = spy(world.store, monkeypatch)
    started = lifecycle(world).start(job.uuid, holder="d-2", event_id="d-2:run", new=doc)
    assert calls == Counter({"update_pipeline": 1})
    assert not started.created and started.applied
    after = world.store.get("job", {"uuid": job.uuid})
    assert after is not None
    assert after["history"][0] == before["history"][0]  # the first create entry is kept
    assert after["_properties"]["created_date"] == before["_properties"]["created_date"]
    assert names(world, job.uuid) == ["create", "run"]


def test_resending_a_start_changes_nothing(world: World) -> None:
    uuid, doc = new_document(world, {"n": 3})
    first = lifecycle(world).start(uuid, holder="d-3", event_id="d-3:run", new=doc)
    before = world.store.get("job", {"uuid": uuid})
    again = lifecycle(world).start(uuid, holder="d-3", event_id="d-3:run", new=doc)
    assert not again.applied and not again.created
    assert again.lease.holder == first.lease.holder
    assert world.store.get("job", {"uuid": uuid}) == before


def test_a_start_while_another_holds_the_lease_changes_nothing(world: World) -> None:
    job = world.new_job({"n": 4}, setup_archive_path=False)
    lifecycle(world).start(job.uuid, holder="d-a", event_id="d-a:run")
    with nothing_written(world, job), pytest.raises(ActiveExecutionsError) as refused:
        lifecycle(world).start(job.uuid, holder="d-b", event_id="d-b:run")
    assert refused.value.details["holder"] == "d-a"


def test_a_start_takes_over_a_lapsed_lease_and_records_it(world: World) -> None:
    job = world.new_job({"n": 5}, setup_archive_path=False)
    lifecycle(world).start(job.uuid, holder="d-dead", event_id="d-dead:run")
    lapse(world, job.uuid, "d-dead")
    started = lifecycle(world).start(job.uuid, holder="d-new", event_id="d-new:run")
    assert started.lease.holder == "d-new"
    assert started.lease.taken_over is not None
    assert started.lease.taken_over["holder"] == "d-dead"
    assert names(world, job.uuid) == ["create", "run", "run", "update"]


def test_a_start_from_a_state_that_cannot_run_is_refused(world: World) -> None:
    job = world.new_job({"n": 6}, setup_archive_path=False)
    world.jobs.send(job.uuid, "run")
    world.jobs.send(job.uuid, "finish")
    fresh = world.jobs.get(job.uuid)
    with nothing_written(world, fresh), pytest.raises(InvalidTransitionError):
        lifecycle(world).start(job.uuid, holder="d-6", event_id="d-6:run")


def test_bad_start_arguments_are_refused_before_anything_is_written(world: World) -> None:
    job = world.new_job({"n": 7}, setup_archive_path=False)
    with nothing_written(world, job):
        with pytest.raises(InvalidRequestError, match="begins with run"):
            lifecycle(world).start(job.uuid, holder="d", event_id="k", event="finish")
        with pytest.raises(InvalidRequestError, match="event_id"):
            lifecycle(world).start(job.uuid, holder="d", event_id="")
        with pytest.raises(InvalidRequestError, match="lease kind"):
            lifecycle(world).start(job.uuid, holder="d", event_id="k", kind="cron")
        _, other = new_document(world, {"n": 8})
        with pytest.raises(InvalidRequestError, match="not a CREATED job"):
            lifecycle(world).start(job.uuid, holder="d", event_id="k", new=other)


def test_an_end_appends_its_events_and_releases_the_lease_in_one_write(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    uuid, doc = new_document(world, {"n": 9})
    started = lifecycle(world).start(uuid, holder="d", event_id="d:run", new=doc)
    calls = spy(world.store, monkeypatch)
    ended = lifecycle(world).end(started.lease, END)
    assert calls == Counter({"update": 1})
    assert ended.applied and ended.job.state == "FINISHED" and ended.job.lease is None
    history = world.jobs.history(uuid)
    assert [e.name for e in history] == ["create", "run", "finish", "index", "indexed"]
    assert [e.to_state for e in history[2:]] == ["FINISHED", "INDEXING", "FINISHED"]
    assert history[2].data == {"n": 1}


def test_resending_an_end_changes_nothing(world: World) -> None:
    uuid, doc = new_document(world, {"n": 10})
    started = lifecycle(world).start(uuid, holder="d", event_id="d:run", new=doc)
    lifecycle(world).end(started.lease, [("fail", {"reason": "x"}, "d:fail")])
    before = world.store.get("job", {"uuid": uuid})
    again = lifecycle(world).end(started.lease, [("fail", {"reason": "x"}, "d:fail")])
    assert not again.applied and again.job.state == "FAILED"
    assert world.store.get("job", {"uuid": uuid}) == before


def test_an_end_refused_for_a_lost_lease_leaves_the_job_to_its_new_holder(world: World) -> None:
    uuid, doc = new_document(world, {"n": 11})
    old = lifecycle(world).start(uuid, holder="d-old", event_id="d-old:run", new=doc).lease
    lapse(world, uuid, "d-old")
    lifecycle(world).start(uuid, holder="d-new", event_id="d-new:run")
    taken: Job = world.jobs.get(uuid)
    with nothing_written(world, taken), pytest.raises(LeaseLostError, match="d-new"):
        lifecycle(world).end(old, END)


def test_an_end_chain_must_follow_the_state_table(world: World) -> None:
    uuid, doc = new_document(world, {"n": 12})
    lease = lifecycle(world).start(uuid, holder="d", event_id="d:run", new=doc).lease
    running = world.jobs.get(uuid)
    with nothing_written(world, running):
        with pytest.raises(InvalidTransitionError):
            lifecycle(world).end(lease, [("fail", {}, "a"), ("finish", {}, "b")])
        with pytest.raises(InvalidRequestError, match="at least one"):
            lifecycle(world).end(lease, [])
        with pytest.raises(InvalidRequestError, match="cannot end"):
            lifecycle(world).end(lease, [("update", {}, "a")])
        with pytest.raises(InvalidTransitionError):
            lifecycle(world).end(lease, [("index", {}, "a")])


def test_a_key_used_for_another_event_is_a_conflict(world: World) -> None:
    uuid, doc = new_document(world, {"n": 13})
    lease = lifecycle(world).start(uuid, holder="d", event_id="d:run", new=doc).lease
    lifecycle(world).end(lease, [("fail", {}, "d:end")])
    with pytest.raises(ConflictError, match="already used"):
        lifecycle(world).end(lease, [("finish", {}, "d:end")])


# -- races on the real server ---------------------------------------------------------------


def together(calls: list[Any]) -> list[Any]:
    """Run the calls on threads released at once; each result or the error it raised."""
    gate = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def body(i: int) -> None:
        gate.wait()
        try:
            out[i] = calls[i]()
        except DataCatalogError as exc:
            out[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return out


@pytest.fixture
def real(mongo_uri: str, database_name: str, tmp_path: Path) -> Any:
    store = connect(mongo_uri, database=database_name)
    try:
        yield make_world(store, tmp_path)
    finally:
        store.drop_database()
        store.close()


def test_two_starts_creating_one_job_at_once_one_wins_every_time(real: World) -> None:
    for n in range(50):
        uuid, doc = new_document(real, {"race": n})
        out = together(
            [
                lambda h=h, u=uuid, d=doc: lifecycle(real).start(
                    u, holder=h, event_id=f"{h}:run", new=d
                )
                for h in ("d-a", "d-b")
            ]
        )
        won = [o for o in out if not isinstance(o, Exception)]
        lost = [o for o in out if isinstance(o, Exception)]
        assert len(won) == 1 and len(lost) == 1, out
        assert isinstance(lost[0], ActiveExecutionsError), lost
        assert lost[0].details["holder"] == won[0].lease.holder
        assert names(real, uuid) == ["create", "run"]
        assert real.store.count("job", {"uuid": uuid}) == 1


def test_a_finish_racing_a_takeover_ends_one_way_only(real: World) -> None:
    for n in range(20):
        uuid, doc = new_document(real, {"takeover": n})
        old = lifecycle(real).start(uuid, holder="d-old", event_id="d-old:run", new=doc).lease
        lapse(real, uuid, "d-old")
        end, take = together(
            [
                lambda o=old: lifecycle(real).end(o, [("finish", {}, "d-old:finish")]),
                lambda u=uuid: lifecycle(real).start(u, holder="d-new", event_id="d-new:run"),
            ]
        )
        job = real.jobs.get(uuid)
        if isinstance(end, Exception):  # the takeover came first: the job is d-new's
            assert isinstance(end, LeaseLostError), end
            assert job.state == "RUNNING" and job.lease is not None
            assert job.lease.holder == "d-new"
            assert "finish" not in names(real, uuid)
        else:  # the finish came first: the late start finds nothing to run
            assert isinstance(take, InvalidTransitionError), take
            assert job.state == "FINISHED" and job.lease is None
            assert names(real, uuid) == ["create", "run", "finish"]


# -- the stage driver's round trips -----------------------------------------------------------


def test_a_driver_runs_a_created_job_in_three_round_trips(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.driver import Driver

    job = world.new_job({"n": 20}, setup_archive_path=False)
    calls = spy(world.store, monkeypatch)
    driver = Driver(job.uuid, catalog=world.catalog, execute=lambda d, p: None)
    driver.start()
    result = driver.wait_for_completion(timeout=30)
    assert result.succeeded and result.lease_released and result.state == "FINISHED"
    # The job read once; lease + run in one write; finish + lease release in one write.
    assert calls == Counter({"find": 1, "update_pipeline": 1, "update": 1})
    assert names(world, job.uuid) == ["create", "run", "finish"]
    assert world.jobs.get(job.uuid).lease is None


def test_a_failing_driver_ends_with_fail_and_the_release_in_one_write(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.driver import Driver

    job = world.new_job({"n": 21}, setup_archive_path=False)
    calls = spy(world.store, monkeypatch)
    driver = Driver(job.uuid, catalog=world.catalog, execute=lambda d, p: False)
    driver.start()
    result = driver.wait_for_completion(timeout=30)
    assert not result.succeeded and result.lease_released and result.state == "FAILED"
    # The error note (an update event) is the one write more.
    assert calls == Counter({"find": 1, "update_pipeline": 1, "update": 2})
    assert names(world, job.uuid) == ["create", "run", "update", "fail"]


def test_a_driver_indexing_its_outputs_ends_in_two_round_trips(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.driver import Driver, Payload

    job = world.new_job({"n": 22})

    def execute(driver: Driver, payload: Payload) -> None:
        out = Path(payload.output_entries[0].path or "")
        for n in range(3):
            (out / f"part-{n}.csv").write_text(f"{n}\n", encoding="utf-8")

    calls = spy(world.store, monkeypatch)
    driver = Driver(job.uuid, catalog=world.catalog, execute=execute, index_outputs=True)
    driver.start()
    result = driver.wait_for_completion(timeout=30)
    assert result.succeeded and result.lease_released and result.state == "FINISHED"
    assert result.index_report is not None and result.index_report.written == 3
    # Read, start; then the records in one bulk write and finish + index + indexed +
    # the release in one conditional write.
    assert calls == Counter({"find": 1, "update_pipeline": 1, "bulk_upsert": 1, "update": 1})
    history = world.jobs.history(job.uuid)
    assert [e.name for e in history] == ["create", "run", "finish", "index", "indexed"]
    assert history[-1].data == {"files": 3, "errors": 0, "skipped": 0}
    assert len(world.catalog.indexing.files(job.uuid)) == 3


def test_a_driver_given_a_plan_creates_runs_and_indexes_in_three_round_trips(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.driver import Driver, Payload

    plan = world.plan({"n": 25})

    def execute(driver: Driver, payload: Payload) -> None:
        Path(payload.output_entries[0].path or "", "result.csv").write_text("1\n")

    calls = spy(world.store, monkeypatch)
    driver = Driver(plan, catalog=world.catalog, execute=execute, index_outputs=True)
    driver.start()
    result = driver.wait_for_completion(timeout=30)
    assert result.succeeded and result.lease_released and result.state == "FINISHED"
    # Create + lease + run in one write (nothing read first); the records; the end.
    assert calls == Counter({"update_pipeline": 1, "bulk_upsert": 1, "update": 1})
    assert names(world, plan.uuid) == ["create", "run", "finish", "index", "indexed"]
    assert world.store.count("job", {"uuid": plan.uuid}) == 1
    assert len(world.catalog.indexing.files(plan.uuid)) == 1


def test_a_driver_given_the_plan_of_a_job_that_exists_decides_on_it(world: World) -> None:
    from datacatalog.driver import Driver, Payload

    plan = world.plan({"n": 26})
    runs: list[str] = []

    def execute(driver: Driver, payload: Payload) -> None:
        runs.append(driver.job.uuid)
        Path(payload.output_entries[0].path or "", "result.csv").write_text("1\n")

    created, _ = world.jobs.create(plan)  # made earlier, never run: this driver runs it
    first = Driver(plan, catalog=world.catalog, execute=execute, index_outputs=True)
    first.start()
    assert first.wait_for_completion(timeout=30).state == "FINISHED"
    assert world.jobs.get(plan.uuid).created_date == created.created_date  # the same job
    # Finished with its outputs intact: the same plan again runs nothing.
    again = Driver(plan, catalog=world.catalog, execute=execute, index_outputs=True)
    again.start()
    result = again.wait_for_completion(timeout=30)
    assert result.up_to_date and runs == [plan.uuid]
    assert names(world, plan.uuid) == ["create", "run", "finish", "index", "indexed", "reuse"]
    assert world.store.count("job", {"uuid": plan.uuid}) == 1


def test_a_driver_given_the_plan_of_a_deleted_job_is_refused_naming_undelete(
    world: World,
) -> None:
    from datacatalog.driver import Driver

    plan = world.plan({"n": 28})
    job, _ = world.jobs.create(plan)
    world.jobs.delete(job.uuid, token=world.jobs.admin_token())
    before = world.store.get("job", {"uuid": plan.uuid})
    driver = Driver(plan, catalog=world.catalog, execute=lambda d, p: None)
    with pytest.raises(InvalidTransitionError, match="undelete"):
        driver.start()
    assert world.store.get("job", {"uuid": plan.uuid}) == before


def test_a_driver_given_a_plan_on_an_unknown_system_writes_nothing(world: World) -> None:
    from datacatalog.driver import Driver

    plan = replace(world.plan({"n": 27}), archive_system="no-such-system")
    with pytest.raises(NotFoundError, match="no-such-system"):
        Driver(plan, catalog=world.catalog, execute=lambda d, p: None)
    assert world.store.count("job", {"uuid": plan.uuid}) == 0


def test_the_bare_api_lifecycle_is_three_round_trips(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plan = world.plan({"n": 23})
    doc = world.jobs.planner.document(plan)
    calls = spy(world.store, monkeypatch)
    started = world.jobs.lifecycle.start(plan.uuid, holder="me", event_id="me:run", new=doc)
    out = world.archive_dir(started.job)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.txt").write_text("42\n", encoding="utf-8")
    job, report = world.catalog.indexing.complete(started.job, started.lease, key="me")
    assert calls == Counter({"update_pipeline": 1, "bulk_upsert": 1, "update": 1})
    assert job.state == "FINISHED" and job.lease is None
    assert report is not None and report.written == 1 and report.state == "FINISHED"
    assert names(world, plan.uuid) == ["create", "run", "finish", "index", "indexed"]


def test_resending_a_whole_completion_changes_nothing(world: World) -> None:
    plan = world.plan({"n": 24})
    started = world.jobs.lifecycle.start(
        plan.uuid, holder="me", event_id="me:run", new=world.jobs.planner.document(plan)
    )
    out = world.archive_dir(started.job)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.txt").write_text("42\n", encoding="utf-8")
    world.catalog.indexing.complete(started.job, started.lease, key="me")
    before = world.store.get("job", {"uuid": plan.uuid})
    records = world.store.find("file", {})
    again, _ = world.catalog.indexing.complete(started.job, started.lease, key="me")
    assert again.state == "FINISHED"
    assert world.store.get("job", {"uuid": plan.uuid}) == before
    assert [r["uuid"] for r in world.store.find("file", {})] == [r["uuid"] for r in records]


def test_a_completion_whose_lease_was_taken_over_leaves_the_job_to_its_new_holder(
    world: World,
) -> None:
    plan = world.plan({"n": 25})
    old = world.jobs.lifecycle.start(
        plan.uuid, holder="d-old", event_id="d-old:run", new=world.jobs.planner.document(plan)
    )
    out = world.archive_dir(old.job)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.txt").write_text("42\n", encoding="utf-8")
    lapse(world, plan.uuid, "d-old")
    world.jobs.lifecycle.start(plan.uuid, holder="d-new", event_id="d-new:run")
    with pytest.raises(LeaseLostError):
        world.catalog.indexing.complete(old.job, old.lease, key="d-old")
    job = world.jobs.get(plan.uuid)
    assert job.state == "RUNNING" and job.lease is not None and job.lease.holder == "d-new"
    assert "finish" not in names(world, plan.uuid)


def test_a_completion_after_a_reset_unlinks_what_it_wrote(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = world.plan({"n": 26})
    old = world.jobs.lifecycle.start(
        plan.uuid, holder="d", event_id="d:run", new=world.jobs.planner.document(plan)
    )
    out = world.archive_dir(old.job)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.txt").write_text("42\n", encoding="utf-8")
    real_write = world.store.bulk_upsert

    def reset_first(*args: Any, **kwargs: Any) -> Any:
        # The administrator resets the job just before the records are written.
        world.store.update("job", {"uuid": plan.uuid}, {"$set": {"state": "RESET"}})
        return real_write(*args, **kwargs)

    monkeypatch.setattr(world.store, "bulk_upsert", reset_first)
    with pytest.raises((LeaseLostError, InvalidTransitionError)):
        world.catalog.indexing.complete(old.job, old.lease, key="d")
    assert world.jobs.get(plan.uuid).state == "RESET"
    assert world.catalog.indexing.files(plan.uuid) == []
    (record,) = world.store.find("file", {})
    assert record["generated_by"] == []


def test_a_driver_given_a_job_just_created_does_not_read_it_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.driver import Driver

    job = world.new_job({"n": 27}, setup_archive_path=False)
    calls = spy(world.store, monkeypatch)
    driver = Driver(job, catalog=world.catalog, execute=lambda d, p: None)
    driver.start()
    assert driver.wait_for_completion(timeout=30).succeeded
    assert calls == Counter({"update_pipeline": 1, "update": 1})


def test_a_driver_given_a_stale_job_decides_again_on_what_is_stored(world: World) -> None:
    from datacatalog.driver import Driver

    job = world.new_job({"n": 28}, setup_archive_path=False)
    world.jobs.send(job.uuid, "run")
    world.jobs.send(job.uuid, "finish")
    driver = Driver(job, catalog=world.catalog, execute=lambda d, p: None)  # says CREATED
    driver.start()
    result = driver.wait_for_completion(timeout=30)
    assert result.up_to_date and result.state == "FINISHED"
    assert names(world, job.uuid) == ["create", "run", "finish", "reuse"]


def test_driver_callbacks_reuse_idle_worker_threads() -> None:
    from datacatalog.driver.core import _Workers

    workers = _Workers(linger=60.0)
    seen: list[int] = []

    def one() -> None:
        done = threading.Event()
        workers.submit(lambda: (seen.append(threading.get_ident()), done.set()))
        assert done.wait(timeout=30)
        for _ in range(100_000):  # until the thread is back among the idle ones
            if workers._idle == 1:
                break
            threading.Event().wait(0.001)

    one()
    one()
    one()
    assert len(seen) == 3 and len(set(seen)) == 1
    assert workers._idle == 1


def test_a_stuck_callback_keeps_only_its_own_worker() -> None:
    from datacatalog.driver.core import _Workers

    workers = _Workers(linger=60.0)
    stuck, release, ran = threading.Event(), threading.Event(), threading.Event()
    workers.submit(lambda: (stuck.set(), release.wait()))
    assert stuck.wait(timeout=30)
    workers.submit(ran.set)  # no idle thread: a new one runs it
    assert ran.wait(timeout=30)
    release.set()
