"""Concurrency on the real server: racing writers never lose events or break the table.

These tests need a real ``mongod`` (the in-memory engine serializes everything behind the
GIL, so a race there proves nothing); they use the ``mongo_uri`` fixture and are skipped
with the real-server lane.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from datacatalog.catalog import Catalog
from datacatalog.errors import ConflictError, DataCatalogError, InvalidTransitionError
from datacatalog.freeform import encoded_size
from datacatalog.jobs import _ENTRY_OVERHEAD, EventResult, JobPlan
from datacatalog.settings import Settings
from datacatalog.store import Store, connect
from tests.support.jobs import SECRET, World, make_world

THREADS = 8
EVENTS_PER_THREAD = 50
RACES = 100
BARRIER_TIMEOUT = 60.0
Outcome = EventResult | DataCatalogError


@pytest.fixture
def real_store(mongo_uri: str, database_name: str) -> Iterator[Store]:
    store = connect(mongo_uri, database=database_name)
    try:
        yield store
    finally:
        try:
            store.drop_database()
        finally:
            store.close()


@pytest.fixture
def world(real_store: Store, tmp_path: Path) -> World:
    return make_world(real_store, tmp_path)


def test_parallel_updates_never_lose_history(world: World) -> None:
    job = world.new_job({"concurrency": "updates"})
    job = world.jobs.send(job.uuid, "run").job
    barrier = threading.Barrier(THREADS)

    def beat(worker: int) -> list[EventResult]:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        return [
            world.jobs.send(job.uuid, "update", data={"worker": worker, "beat": n})
            for n in range(EVENTS_PER_THREAD)
        ]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = [r for batch in pool.map(beat, range(THREADS)) for r in batch]

    total = THREADS * EVENTS_PER_THREAD
    assert all(r.applied for r in results)
    history = world.jobs.history(job.uuid)
    assert len(history) == 2 + total
    updates = history[2:]
    assert {(e.data["worker"], e.data["beat"]) for e in updates} == {
        (w, n) for w in range(THREADS) for n in range(EVENTS_PER_THREAD)
    }
    assert len({e.uuid for e in history}) == len(history)
    for worker in range(THREADS):  # each thread's own events stay in the order it sent them
        beats = [e.data["beat"] for e in updates if e.data["worker"] == worker]
        assert beats == list(range(EVENTS_PER_THREAD))

    stored = world.jobs.get(job.uuid)
    assert stored.state == "RUNNING"
    assert stored.revision == job.revision + total
    assert sorted(r.job.revision for r in results) == list(
        range(job.revision + 1, job.revision + total + 1)
    )
    raw = world.store.get("job", {"uuid": job.uuid})
    assert raw is not None
    expected_bytes = sum(encoded_size(e["data"]) + _ENTRY_OVERHEAD for e in raw["history"])
    assert raw["_properties"]["history_bytes"] == expected_bytes


def race(world: World, job_uuid: str, events: tuple[str, ...]) -> dict[str, Outcome]:
    """Send ``events`` to one job from one thread each, released together by a barrier."""
    barrier = threading.Barrier(len(events))
    outcomes: dict[str, Outcome] = {}

    def send(event: str) -> None:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        try:
            outcomes[event] = world.jobs.send(job_uuid, event)
        except DataCatalogError as exc:
            outcomes[event] = exc

    threads = [threading.Thread(target=send, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BARRIER_TIMEOUT)
    return outcomes


def test_finish_and_fail_racing_from_running(world: World) -> None:
    racers = []
    for n in range(RACES):
        job = world.new_job({"concurrency": "race", "n": n})
        racers.append(world.jobs.send(job.uuid, "run").job)

    winners: dict[str, int] = {"finish": 0, "fail": 0}
    for job in racers:
        outcomes = race(world, job.uuid, ("finish", "fail"))
        won = [e for e, o in outcomes.items() if isinstance(o, EventResult)]
        lost = [e for e, o in outcomes.items() if not isinstance(o, EventResult)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        winner, loser = won[0], lost[0]
        winners[winner] += 1
        final = {"finish": "FINISHED", "fail": "FAILED"}[winner]
        error = outcomes[loser]
        assert isinstance(error, InvalidTransitionError)
        assert f"not allowed from {final}" in str(error)
        assert error.details["state"] == final
        assert error.details["event"] == loser

        stored = world.jobs.get(job.uuid)
        history = world.jobs.history(job.uuid)
        assert stored.state == final
        assert [e.name for e in history] == ["create", "run", winner]
        assert history[-1].to_state == stored.state
        assert stored.last_event == history[-1].name == winner
        assert stored.revision == job.revision + 1

    assert sum(winners.values()) == RACES


def test_the_same_idempotency_key_sent_in_parallel_applies_once(world: World) -> None:
    job = world.new_job({"concurrency": "replays"})
    job = world.jobs.send(job.uuid, "run").job
    barrier = threading.Barrier(THREADS)

    def retry(_: int) -> EventResult:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        return world.jobs.send(job.uuid, "finish", data={"ok": True}, event_id="finish-once")

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(retry, range(THREADS)))

    assert sum(r.applied for r in results) == 1
    assert all(r.entry == results[0].entry for r in results)
    history = world.jobs.history(job.uuid)
    assert [e.name for e in history] == ["create", "run", "finish"]
    assert history[-1] == results[0].entry
    assert world.jobs.get(job.uuid).revision == job.revision + 1


def _create_in_child(
    uri: str,
    database: str,
    data_dir: str,
    plan: JobPlan,
    barrier: Any,
    results: Any,
) -> None:
    """Run in a spawned process: create ``plan`` as soon as every process is ready."""
    store = connect(uri, database=database)
    settings = Settings.load(env={}, data_dir=data_dir, secret=SECRET)
    catalog = Catalog(store, settings=settings)
    barrier.wait(timeout=BARRIER_TIMEOUT)
    try:
        job, created = catalog.jobs.create(plan)
    except DataCatalogError as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))
    else:
        results.put((job.uuid, created))
    finally:
        store.close()


@pytest.mark.parametrize("instanced", [False, True], ids=["plain", "instanced"])
def test_two_processes_creating_the_same_job_make_one_document(
    world: World, mongo_uri: str, instanced: bool
) -> None:
    plan = world.plan({"concurrency": "processes"}, instanced=instanced)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(
            target=_create_in_child,
            args=(
                mongo_uri,
                world.store.database_name,
                str(world.data_dir),
                plan,
                barrier,
                results,
            ),
        )
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    assert sorted(outcomes) == [(plan.uuid, False), (plan.uuid, True)]
    assert world.store.count("job", {"uuid": plan.uuid}) == 1
    assert world.job_count() == 1
    job = world.jobs.get(plan.uuid)
    assert job.archive_path == plan.archive_path
    assert [e.name for e in world.jobs.history(plan.uuid)] == ["create"]


def _race_reset(world: World, job_uuid: str, admin: str) -> dict[str, Any]:
    """Reset the job while ``finish`` and ``update`` are sent to it from other threads."""
    barrier = threading.Barrier(3)
    outcomes: dict[str, Any] = {}

    def act(name: str) -> None:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        try:
            if name == "reset":
                outcomes[name] = world.jobs.reset(job_uuid, token=admin)
            else:
                outcomes[name] = world.jobs.send(job_uuid, name)
        except DataCatalogError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=act, args=(e,)) for e in ("reset", "finish", "update")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BARRIER_TIMEOUT)
    return outcomes


def test_reset_racing_events_leaves_a_reset_job_and_clear_refusals(world: World) -> None:
    admin = world.admin()
    for n in range(20):
        job = world.jobs.send(world.new_job({"concurrency": "reset", "n": n}).uuid, "run").job

        outcomes = _race_reset(world, job.uuid, admin)

        assert not isinstance(outcomes["reset"], DataCatalogError), outcomes
        history = [e.name for e in world.jobs.history(job.uuid)]
        assert world.jobs.get(job.uuid).state == "RESET"
        assert history[:2] == ["create", "run"] and "reset" in history
        for event in ("finish", "update"):
            outcome = outcomes[event]
            if isinstance(outcome, DataCatalogError):
                # Refused only for arriving after the reset (or, for update, after finish).
                assert isinstance(outcome, InvalidTransitionError), outcome
                assert outcome.details["state"] in ("RESET", "FINISHED")
                assert event not in history
            else:
                assert history.index(event) < history.index("reset")
        assert [r.action for r in world.jobs.audit_log(job.uuid)] == ["reset"]


def test_two_indexers_on_one_job_end_consistent(world: World) -> None:
    job = world.new_job({"concurrency": "indexers"})
    for event in ("run", "finish"):
        world.jobs.send(job.uuid, event)
    root = world.archive_dir(job)
    names = [f"out/{n:02}.csv" for n in range(40)]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name, encoding="utf-8")
    barrier = threading.Barrier(2)

    def index(_: int) -> Any:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        try:
            return world.catalog.indexing.index(job.uuid, batch_size=3, transition=True)
        except DataCatalogError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(index, range(2)))

    for outcome in outcomes:  # each run finished, was refused at the start, or was stopped
        if isinstance(outcome, DataCatalogError):
            assert isinstance(outcome, (ConflictError, InvalidTransitionError)), outcome
    assert any(not isinstance(o, DataCatalogError) for o in outcomes), outcomes
    assert world.jobs.get(job.uuid).state == "FINISHED"
    records = world.catalog.indexing.files(job.uuid)
    assert sorted(r.name for r in records) == [f"{job.archive_path}/{n}" for n in names]
    assert all(r.generated_by.count(job.uuid) == 1 for r in records)
