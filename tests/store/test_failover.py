"""Riding through a replica set election, without one: the retry policy, the errors a
failover produces, the pinned durability, and every caller that resends what is safe to
resend (keyed events, file record batches), with an injected clock and injected failures.

The real elections are in ``tests/faults/test_failover_faults.py``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymongo
import pymongo.monitoring
import pytest
from pymongo import errors as mongo_errors

from datacatalog.catalog import Catalog
from datacatalog.errors import (
    DataCatalogError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    UnavailableError,
)
from datacatalog.settings import Settings
from datacatalog.store import RetryPolicy, connect, durability_warning
from datacatalog.store.failures import translated as _translated
from tests.support.jobs import World


class Time:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 500.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def policy(self, budget: float = 15.0) -> RetryPolicy:
        return RetryPolicy(budget=budget, attempt_timeout=2.0, clock=self.clock, sleep=self.sleep)


class Flaky:
    """A call that fails as ``unavailable`` ``failures`` times (time passing in each)."""

    def __init__(self, time: Time, failures: int, *, each: float = 2.0, value: Any = "done"):
        self.time, self.failures, self.each, self.value = time, failures, each, value
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            self.time.now += self.each  # an attempt that waited for a primary in vain
            raise UnavailableError(f"no primary (attempt {self.calls})")
        return self.value


# -- the policy -------------------------------------------------------------------------


def test_an_unavailable_call_is_sent_again_until_it_succeeds() -> None:
    time = Time()
    flaky = Flaky(time, failures=4)
    assert time.policy().call(flaky, what="event") == "done"
    assert flaky.calls == 5
    # Waits grow from 50 ms and never pass a second.
    assert time.waits == [0.05, 0.1, 0.2, 0.4]


def test_a_call_that_keeps_failing_fails_unavailable_once_the_budget_is_spent() -> None:
    time = Time()
    flaky = Flaky(time, failures=1000)
    start = time.now
    with pytest.raises(UnavailableError, match=r"event x: still unavailable after \d+ attempts"):
        time.policy(budget=15.0).call(flaky, what="event x")
    spent = time.now - start
    assert 15.0 <= spent <= 15.0 + flaky.each  # the last attempt started inside the budget
    assert flaky.calls == 7  # every attempt costs 2 s here, and the waits in between


def test_each_attempt_is_bounded_by_what_is_left_of_the_budget() -> None:
    time = Time()
    seen: list[float | None] = []

    def attempt() -> str:
        from pymongo import _csot

        seen.append(_csot.get_timeout())
        time.now += 1.5
        if len(seen) < 4:
            raise UnavailableError("no primary")
        return "ok"

    RetryPolicy(budget=5.0, attempt_timeout=2.0, clock=time.clock, sleep=time.sleep).call(
        attempt, what="x"
    )
    assert seen[0] == 2.0  # the store's own timeout
    assert seen[-1] is not None and seen[-1] < 2.0  # then only what the budget has left


@pytest.mark.parametrize(
    "error", [InvalidTransitionError("moved on"), NotFoundError("gone"), DataCatalogError("x")]
)
def test_other_errors_are_answers_and_are_raised_at_once(error: DataCatalogError) -> None:
    time = Time()
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        time.policy().call(attempt, what="x")
    assert (calls, time.waits) == ([1], [])


def test_a_zero_budget_sends_once() -> None:
    time = Time()
    flaky = Flaky(time, failures=1)
    with pytest.raises(UnavailableError, match=r"no primary \(attempt 1\)"):
        time.policy(budget=0).call(flaky, what="x")
    assert flaky.calls == 1


@pytest.mark.parametrize("budget", [-1, float("nan"), "15", True])
def test_a_bad_budget_is_refused(budget: Any) -> None:
    with pytest.raises(InvalidRequestError, match="failover budget"):
        RetryPolicy(budget=budget)


def test_the_failover_setting(tmp_path: Path) -> None:
    assert Settings.load(env={}, data_dir=tmp_path).mongodb_failover == 15.0
    env = {"DATACATALOG_MONGODB_FAILOVER": "0"}
    assert Settings.load(env=env, data_dir=tmp_path).mongodb_failover == 0.0
    for bad in ("-1", "soon", "inf"):
        with pytest.raises(InvalidRequestError, match="mongodb_failover"):
            Settings.load(env={"DATACATALOG_MONGODB_FAILOVER": bad}, data_dir=tmp_path)
    store = connect("mongomock://", failover_budget=3.5, timeout_ms=1500)
    assert (store.failover.budget, store.failover.attempt_timeout) == (3.5, 1.5)


# -- what a failover looks like to the store -----------------------------------------------


def _raised(exc: Exception) -> DataCatalogError:
    with pytest.raises(DataCatalogError) as caught, _translated("mongodb://db"):
        raise exc
    return caught.value


@pytest.mark.parametrize(
    "exc",
    [
        mongo_errors.NotPrimaryError("not primary", {"code": 10107}),
        mongo_errors.AutoReconnect("connection closed"),
        mongo_errors.OperationFailure("stepped down", code=189),
        mongo_errors.OperationFailure("interrupted", code=11602),
        mongo_errors.OperationFailure(
            "labelled", code=1, details={"errorLabels": ["RetryableWriteError"]}
        ),
        mongo_errors.WriteConcernError("shutting down", code=91),
        mongo_errors.BulkWriteError(
            {"writeErrors": [], "writeConcernErrors": [{"code": 189, "errmsg": "stepped down"}]}
        ),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_failover_is_unavailable(exc: Exception) -> None:
    assert type(_raised(exc)) is UnavailableError


@pytest.mark.parametrize(
    "exc",
    [
        mongo_errors.OperationFailure("bad query", code=2),
        mongo_errors.WriteConcernError("cannot satisfy", code=100),
        mongo_errors.BulkWriteError({"writeErrors": [{"index": 0, "code": 121}]}),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_refusal_is_not_unavailable(exc: Exception) -> None:
    assert not isinstance(_raised(exc), UnavailableError)


# -- durability ---------------------------------------------------------------------------


def test_a_set_without_arbiters_and_a_single_server_give_majority_writes() -> None:
    assert durability_warning({"setName": "rs0", "hosts": ["a", "b", "c"]}) is None
    assert durability_warning({"isWritablePrimary": True}) is None
    assert durability_warning({"msg": "isdbgrid"}) is None


def test_an_arbiter_is_warned_about() -> None:
    psa = durability_warning({"setName": "rs0", "hosts": ["a", "b"], "arbiters": ["c"]})
    assert psa is not None
    assert "1 arbiter(s) (c) and 2 data-bearing member(s)" in psa
    assert "majority writes cannot be acknowledged" in psa
    paa = durability_warning({"setName": "rs0", "hosts": ["a"], "arbiters": ["b", "c"]})
    assert paa is not None and "rolled back by a failover" in paa


@pytest.mark.mongod
def test_every_write_is_majority_and_journaled_and_reads_are_majority(
    mongo_uri: str, database_name: str
) -> None:
    commands = _Commands()
    store = connect(mongo_uri.replace("?", "?w=1&readConcernLevel=local&"), database=database_name)
    client = store._db.client  # the URI asked for w=1 and local reads: pinned anyway
    assert client.write_concern.document == {"w": "majority", "j": True}
    assert client.read_concern.level == "majority"
    listening: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        mongo_uri, event_listeners=[commands], w="majority", journal=True,
        readConcernLevel="majority",
    )  # fmt: skip
    try:
        spied = connect(listening[database_name])
        spied.next_sequence("writes")
        spied.bulk_upsert("reference", [])
        spied.find("audit", {})
    finally:
        listening.close()
        store.drop_database()
    writes = [c for c in commands.seen if c.command_name == "findAndModify"]
    finds = [c for c in commands.seen if c.command_name == "find"]
    assert writes and all(c.command["writeConcern"] == {"w": "majority", "j": True} for c in writes)
    assert finds and all(c.command["readConcern"] == {"level": "majority"} for c in finds)


@pytest.mark.mongod
def test_connecting_to_a_single_member_set_warns_nothing(
    mongo_uri: str, database_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="datacatalog.store"):
        connect(mongo_uri, database=database_name, timeout_ms=4321).close()
    assert not [r for r in caplog.records if r.name == "datacatalog.store"]


class _Commands(pymongo.monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: list[pymongo.monitoring.CommandStartedEvent] = []

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:
        self.seen.append(event)

    def succeeded(self, event: pymongo.monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: pymongo.monitoring.CommandFailedEvent) -> None:
        pass


# -- keyed events --------------------------------------------------------------------------


def _failing_updates(
    world: World, monkeypatch: pytest.MonkeyPatch, time: Time, failures: int, *, lose: int = 0
) -> list[int]:
    """Make the job updates fail ``failures`` times; the first ``lose`` of them after
    applying (the primary wrote it and died before answering)."""
    real = world.store.update
    calls: list[int] = []

    def update(kind: str, *args: Any, **kwargs: Any) -> Any:
        if kind != "job":
            return real(kind, *args, **kwargs)
        calls.append(1)
        if len(calls) <= failures:
            if len(calls) <= lose:
                real(kind, *args, **kwargs)
            time.now += 1.0
            raise UnavailableError("no primary")
        return real(kind, *args, **kwargs)

    monkeypatch.setattr(world.store, "update", update)
    world.store.failover = time.policy()
    return calls


def test_a_keyed_event_rides_through_an_election_and_is_applied_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = world.new_job({"n": uuid.uuid4().hex})
    time = Time()
    calls = _failing_updates(world, monkeypatch, time, failures=3, lose=1)
    result = world.jobs.send(job.uuid, "run", data={"x": 1}, event_id="run-1")
    assert result.job.state == "RUNNING"
    assert len(calls) == 4 and len(time.waits) == 3
    names = [(e.name, e.event_id) for e in world.jobs.history(job.uuid)]
    assert names == [("create", None), ("run", "run-1")]


def test_a_keyed_event_fails_unavailable_when_the_election_outlasts_the_budget(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = world.new_job({"n": uuid.uuid4().hex})
    time = Time()
    _failing_updates(world, monkeypatch, time, failures=10_000)
    start = time.now
    with pytest.raises(UnavailableError, match=r"event run \(run-2\) of job"):
        world.jobs.send(job.uuid, "run", event_id="run-2")
    assert time.now - start <= 15.0 + 1.0


def test_an_event_without_a_key_is_sent_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    job = world.new_job({"n": uuid.uuid4().hex})
    time = Time()
    calls = _failing_updates(world, monkeypatch, time, failures=1)
    with pytest.raises(UnavailableError, match="no primary"):
        world.jobs.send(job.uuid, "run")
    assert (len(calls), time.waits) == (1, [])


# -- indexing -------------------------------------------------------------------------------


def test_an_indexing_batch_that_fails_unavailable_is_written_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog: Catalog = world.catalog
    job = world.new_job({"n": uuid.uuid4().hex})
    catalog.jobs.send(job.uuid, "run")
    catalog.jobs.send(job.uuid, "finish")
    root = Path(catalog.storage.get(job.archive_system).resolve(job.archive_path))
    root.mkdir(parents=True, exist_ok=True)
    for i in range(25):
        (root / f"f{i:02}.txt").write_text(str(i))
    time = Time()
    world.store.failover = time.policy()
    real: Callable[..., Any] = world.store.bulk_upsert
    calls: list[int] = []

    def bulk_upsert(kind: str, operations: Any, **kwargs: Any) -> Any:
        calls.append(len(operations))
        if len(calls) in (2, 3):  # the second batch: written, then its answer lost; then down
            if len(calls) == 2:
                real(kind, operations, **kwargs)
            time.now += 1.0
            raise UnavailableError("no primary")
        return real(kind, operations, **kwargs)

    monkeypatch.setattr(world.store, "bulk_upsert", bulk_upsert)
    report = catalog.indexing.index(job.uuid, transition=True, batch_size=10)
    assert (report.written, report.state) == (25, "FINISHED")
    assert calls == [10, 10, 10, 10, 5]
    assert world.store.count("file", {"generated_by": job.uuid}) == 25
    keyed = [(e.name, e.event_id) for e in catalog.jobs.history(job.uuid)][-2:]
    assert [name for name, _ in keyed] == ["index", "indexed"]
    run_key = str(keyed[0][1]).rpartition(":")[0]
    assert run_key.startswith("indexing-") and keyed[1][1] == f"{run_key}:indexed"


# -- the workflow runner --------------------------------------------------------------------


def test_the_workflow_runners_events_are_keyed_by_execution_and_resent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.orchestrator_ops import many_noops
    from tests.support.runners import runner

    time = Time()
    job = world.new_job({"n": uuid.uuid4().hex})
    run = runner(world, many_noops, job=job, inputs={"count": 2})
    real = world.store.update
    lost: list[str] = []

    def update(kind: str, query: Any, change: Any, **kwargs: Any) -> Any:
        pushed = (change.get("$push") or {}).get("history") if kind == "job" else None
        if pushed is not None and pushed["name"] == "finish" and not lost:
            lost.append(pushed["event_id"])  # applied, and the answer lost with the primary
            real(kind, query, change, **kwargs)
            raise UnavailableError("no primary")
        return real(kind, query, change, **kwargs)

    monkeypatch.setattr(world.store, "update", update)
    world.store.failover = time.policy()
    assert run.execute().status == "succeeded"
    history = [(e.name, e.event_id) for e in world.jobs.history(job.uuid)]
    assert [name for name, _ in history] == ["create", "run", "update", "finish"]
    prefix = f"{run.execution_id}:0:"
    assert [key for _, key in history[1:]] == [
        f"{prefix}1-run",
        f"{prefix}2-update",
        f"{prefix}3-finish",
    ]
    assert lost == [f"{prefix}3-finish"] and len(time.waits) == 1
    assert world.jobs.get(job.uuid).state == "FINISHED"


def test_an_arbiter_set_is_warned_about_once_per_set(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import datacatalog.store as store_module

    made: list[dict[str, Any]] = []

    class FakeClient:
        def __init__(self, uri: str, **options: Any) -> None:
            made.append(options)
            self.admin = self

        def command(self, name: str) -> dict[str, Any]:
            assert name == "hello"
            return {"setName": "psa-" + str(id(made)), "hosts": ["a", "b"], "arbiters": ["c"]}

    monkeypatch.setattr(store_module, "MongoClient", FakeClient)
    with caplog.at_level(logging.WARNING, logger="datacatalog.store"):
        for _ in range(3):
            store_module._new_client("mongodb://a,b/?replicaSet=psa", 1000, "mongodb://a,b")
    warnings = [r.getMessage() for r in caplog.records if r.name == "datacatalog.store"]
    assert len(warnings) == 1 and "1 arbiter(s) (c)" in warnings[0]
    assert all(
        (o["w"], o["journal"], o["readConcernLevel"]) == ("majority", True, "majority")
        for o in made
    )
