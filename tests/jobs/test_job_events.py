"""Tests for sending events to jobs: the transition table, idempotency, history, refusals.

Every test runs on both engines through the ``store`` fixture.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import datacatalog
from datacatalog import jobs, states
from datacatalog.errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    PayloadTooLargeError,
    UnauthorizedError,
)
from datacatalog.identifiers import typed_uuid
from datacatalog.jobs import MAX_EVENT_DATA_BYTES, Actor, Job
from tests.support.jobs import World, nothing_written


def routes() -> dict[str, list[str]]:
    """The shortest event sequence from CREATED to every state, found in the table."""
    found: dict[str, list[str]] = {states.INITIAL_STATE: []}
    queue = deque([states.INITIAL_STATE])
    while queue:
        state = queue.popleft()
        for event in states.allowed_events(state):
            target = states.next_state(state, event)
            if target not in found:
                found[target] = [*found[state], event]
                queue.append(target)
    return found


ROUTES = routes()
PAIRS = [(t.event, source) for t in states.TRANSITIONS.values() for source in t.sources]
INVALID = [
    (event, state)
    for state in states.STATES
    for event in states.EVENTS
    if state not in states.TRANSITIONS[event].sources
]


def token_for(world: World, event: str) -> str | None:
    return world.admin() if states.TRANSITIONS[event].admin else None


def job_in(world: World, state: str, **data: Any) -> Job:
    """A new job driven to ``state`` through the table's events."""
    job = world.new_job({"target": state, **data})
    for event in ROUTES[state]:
        job = world.jobs.send(job.uuid, event, token=token_for(world, event)).job
    assert job.state == state
    return job


def test_every_state_is_reachable() -> None:
    assert set(ROUTES) == set(states.STATES)


@pytest.mark.parametrize("event", states.EVENTS)
def test_every_row_of_the_table_from_each_source_state(world: World, event: str) -> None:
    row = states.TRANSITIONS[event]
    for source in row.sources:
        job = job_in(world, source, event=event)
        before = world.jobs.history(job.uuid)

        result = world.jobs.send(job.uuid, event, token=token_for(world, event))

        expected = row.destination(source)
        assert result.applied is True
        assert result.job.state == expected == states.next_state(source, event)
        assert result.job.last_event == event
        assert result.job.revision == job.revision + 1
        stored = world.jobs.get(job.uuid)
        assert (stored.state, stored.last_event) == (expected, event)
        after = world.jobs.history(job.uuid)
        assert after[:-1] == before
        assert after[-1] == result.entry
        assert (after[-1].name, after[-1].to_state) == (event, row.target)


@pytest.mark.parametrize("state", states.STATES)
def test_events_not_in_the_table_change_nothing(world: World, state: str) -> None:
    job = job_in(world, state)
    refused = [event for event, source in INVALID if source == state]
    for event in refused:
        with nothing_written(world, job), pytest.raises(InvalidTransitionError) as caught:
            world.jobs.send(job.uuid, event, token=token_for(world, event))
        message = str(caught.value)
        assert repr(event) in message
        assert state in message
        allowed = states.allowed_events(state)
        assert caught.value.details == {"event": event, "state": state, "allowed": allowed}
        for name in allowed:
            assert name in message


def test_table_pairs_cover_the_specification() -> None:
    assert len(PAIRS) + len(INVALID) == len(states.EVENTS) * len(states.STATES)
    assert ("retire", "VALIDATING") in PAIRS
    assert ("finish", "FAILED") in INVALID


# -- idempotency --------------------------------------------------------------------------


def test_resending_an_idempotency_key_changes_nothing(world: World) -> None:
    job = job_in(world, "RUNNING")
    first = world.jobs.send(job.uuid, "update", data={"progress": 10}, event_id="beat-1")
    assert first.applied is True
    history = world.jobs.history(job.uuid)

    again = world.jobs.send(job.uuid, "update", data={"progress": 10}, event_id="beat-1")

    assert again.applied is False
    assert again.entry == first.entry
    assert again.job == first.job
    assert world.jobs.history(job.uuid) == history
    assert history[-1].event_id == "beat-1"


def test_a_replayed_transition_is_a_no_op_even_after_the_state_moved_on(world: World) -> None:
    job = job_in(world, "RUNNING")
    finished = world.jobs.send(job.uuid, "finish", event_id="done")
    world.jobs.send(job.uuid, "retire")
    history = world.jobs.history(job.uuid)

    replay = world.jobs.send(job.uuid, "finish", event_id="done")

    assert replay.applied is False
    assert replay.entry == finished.entry
    assert replay.job.state == "RETIRED"
    assert world.jobs.history(job.uuid) == history


def test_an_idempotency_key_reused_for_another_event_is_refused(world: World) -> None:
    job = job_in(world, "RUNNING")
    world.jobs.send(job.uuid, "update", data={"progress": 10}, event_id="k-1")

    with nothing_written(world, job), pytest.raises(ConflictError, match="already used"):
        world.jobs.send(job.uuid, "fail", event_id="k-1")

    assert world.jobs.get(job.uuid).state == "RUNNING"


def test_a_replay_or_a_refusal_reads_one_history_entry_not_the_whole_history(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = job_in(world, "RUNNING")
    for n in range(5):
        world.jobs.send(job.uuid, "update", data={"n": n, "pad": "x" * 1000})
    sent = world.jobs.send(job.uuid, "update", data={"beat": 1}, event_id="beat")
    projections: list[Any] = []
    find = world.store.find

    def spy(kind: str, query: Any, **options: Any) -> Any:
        projections.append(options.get("projection"))
        return find(kind, query, **options)

    monkeypatch.setattr(world.store, "find", spy)
    replay = world.jobs.send(job.uuid, "update", data={"beat": 1}, event_id="beat")
    with pytest.raises(InvalidTransitionError, match="RUNNING"):
        world.jobs.send(job.uuid, "validate")

    assert (replay.applied, replay.entry, replay.job) == (False, sent.entry, sent.job)
    assert projections, "the misses were explained by a read"
    for projection in projections:
        assert projection is not None
        history = projection.get("history")
        assert history == 0 or set(history) == {"$elemMatch"}, projection


def test_idempotency_keys_belong_to_one_job(world: World) -> None:
    one = job_in(world, "RUNNING", n=1)
    two = job_in(world, "RUNNING", n=2)
    a = world.jobs.send(one.uuid, "update", event_id="same-key")
    b = world.jobs.send(two.uuid, "update", event_id="same-key")
    assert a.applied and b.applied
    assert a.entry.uuid != b.entry.uuid
    assert a.entry.uuid == typed_uuid(f"{one.uuid}:same-key", "pipelinejob_event")


def test_a_refused_event_does_not_use_up_its_key(world: World) -> None:
    job = job_in(world, "CREATED")
    with pytest.raises(InvalidTransitionError):
        world.jobs.send(job.uuid, "finish", event_id="k")
    world.jobs.send(job.uuid, "run")
    assert world.jobs.send(job.uuid, "finish", event_id="k").applied is True


@pytest.mark.parametrize("key", ["", "x" * 129])
def test_bad_idempotency_keys_are_refused(world: World, key: str) -> None:
    job = job_in(world, "RUNNING")
    with nothing_written(world, job), pytest.raises(InvalidRequestError, match="event_id"):
        world.jobs.send(job.uuid, "update", event_id=key)


# -- history entries ------------------------------------------------------------------------


def test_history_entries_say_who_and_when(world: World) -> None:
    job = world.new_job({"n": 1})
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    world.jobs.send(job.uuid, "run", data={"note": "go", "n": 3, "nested": {"a": [1, None]}})
    someone = Actor(agent="https://agents.example.org/x", host="node-7", pid=4242, version="9.9")
    world.jobs.send(job.uuid, "update", actor=someone)

    create, run, update = world.jobs.history(job.uuid)
    assert [e.name for e in (create, run, update)] == ["create", "run", "update"]
    assert run.data == {"note": "go", "n": 3, "nested": {"a": [1, None]}}
    for entry in (create, run):
        assert entry.host == socket.gethostname()
        assert entry.pid == os.getpid()
        assert entry.version == datacatalog.__version__
    assert (update.agent, update.host, update.pid, update.version) == (
        "https://agents.example.org/x",
        "node-7",
        4242,
        "9.9",
    )
    for entry in (create, run, update):
        assert entry.date.tzinfo is not None
        assert entry.date.utcoffset() == timedelta(0)
        assert entry.date.microsecond % 1000 == 0
        assert entry.date >= start
        assert entry.uuid.startswith("108")
    assert create.date <= run.date <= update.date
    assert len({e.uuid for e in (create, run, update)}) == 3


def test_history_entry_as_json(world: World) -> None:
    job = world.new_job({"n": 1})
    entry = world.jobs.send(job.uuid, "run", event_id="k1").entry
    as_json = entry.to_dict()
    assert as_json["name"] == "run"
    assert as_json["event_id"] == "k1"
    assert datetime.fromisoformat(as_json["date"]) == entry.date


def test_a_full_history_refuses_events_and_writes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = job_in(world, "RUNNING")
    # create + run used two entries of the overhead each; room for exactly one more.
    monkeypatch.setattr(jobs.limits, "MAX_HISTORY_BYTES", 3 * jobs.limits.ENTRY_OVERHEAD + 100)
    world.jobs.send(job.uuid, "update")
    full = world.jobs.get(job.uuid)
    with nothing_written(world, full), pytest.raises(PayloadTooLargeError, match="full"):
        world.jobs.send(job.uuid, "update", data={"note": "one too many"})
    assert len(world.jobs.history(job.uuid)) == 3
    # Admin events have a reserve, so a full job can still be reset.
    assert world.jobs.reset(job.uuid, token=world.admin()).state == "RESET"


# -- refusals -----------------------------------------------------------------------------


def test_unknown_event_names_the_known_events(world: World) -> None:
    job = job_in(world, "RUNNING")
    with nothing_written(world, job), pytest.raises(InvalidRequestError) as caught:
        world.jobs.send(job.uuid, "explode")
    assert "'explode'" in str(caught.value)
    assert "finish" in str(caught.value)


def test_event_for_an_unknown_job_names_it(world: World) -> None:
    world.new_job({"n": 1})
    missing = typed_uuid("no such job", "pipelinejob")
    with nothing_written(world), pytest.raises(NotFoundError, match=missing):
        world.jobs.send(missing, "run")


def test_event_for_something_that_is_not_a_job_uuid(world: World) -> None:
    with nothing_written(world), pytest.raises(InvalidRequestError):
        world.jobs.send(world.pipeline.uuid, "run")


def test_job_tokens(world: World) -> None:
    job = job_in(world, "CREATED")
    other = job_in(world, "CREATED", n=2)
    with nothing_written(world, job), pytest.raises(ForbiddenError, match=job.uuid):
        world.jobs.send(job.uuid, "run", token="0" * 64)
    with nothing_written(world, job), pytest.raises(ForbiddenError):
        world.jobs.send(job.uuid, "run", token=world.jobs.job_token(other.uuid))
    with nothing_written(world, job), pytest.raises(UnauthorizedError, match="token is required"):
        world.jobs.send(job.uuid, "run", require_token=True)
    with nothing_written(world, job), pytest.raises(UnauthorizedError):
        world.jobs.send(job.uuid, "run", token="", require_token=True)

    ran = world.jobs.send(job.uuid, "run", token=world.jobs.job_token(job.uuid), require_token=True)
    assert ran.job.state == "RUNNING"


def test_admin_events_need_the_admin_token(world: World) -> None:
    job = job_in(world, "RUNNING")
    with nothing_written(world, job), pytest.raises(UnauthorizedError):
        world.jobs.send(job.uuid, "reset")
    with nothing_written(world, job), pytest.raises(ForbiddenError):
        world.jobs.send(job.uuid, "reset", token=world.jobs.job_token(job.uuid))
    assert world.jobs.send(job.uuid, "reset", token=world.admin()).job.state == "RESET"


BAD_EVENT_DATA: list[tuple[str, Any, type[Exception], str]] = [
    (
        "oversized",
        {"blob": "x" * MAX_EVENT_DATA_BYTES},
        PayloadTooLargeError,
        "over the limit",
    ),
    ("dollar key", {"$inc": {"n": 1}}, InvalidRequestError, r"\$inc"),
    ("nested dollar key", {"a": {"$ne": 1}}, InvalidRequestError, r"event data\.a"),
    ("dotted key", {"a.b": 1}, InvalidRequestError, "'a.b'"),
    (
        "datetime",
        {"at": datetime(2024, 1, 1, tzinfo=timezone.utc)},
        InvalidRequestError,
        "datetime",
    ),
    ("set", {"ids": {"a", "b"}}, InvalidRequestError, "set"),
    ("nan", {"x": float("nan")}, InvalidRequestError, "nan"),
    ("not an object", ["a", "list"], InvalidRequestError, "JSON object"),
]


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [case[1:] for case in BAD_EVENT_DATA],
    ids=[case[0] for case in BAD_EVENT_DATA],
)
def test_bad_event_data_is_refused(
    world: World, data: Any, error: type[Exception], match: str
) -> None:
    job = job_in(world, "RUNNING")
    with nothing_written(world, job), pytest.raises(error, match=match):
        world.jobs.send(job.uuid, "update", data=data)


def test_an_integer_wider_than_64_bits_is_refused(world: World) -> None:
    job = job_in(world, "RUNNING")
    with nothing_written(world, job), pytest.raises(InvalidRequestError, match="64-bit"):
        world.jobs.send(job.uuid, "update", data={"n": 2**64})
    with nothing_written(world, job), pytest.raises(InvalidRequestError, match=r"data\.m\[0\]"):
        world.jobs.send(job.uuid, "update", data={"m": [-(2**63) - 1]})
    assert world.jobs.send(job.uuid, "update", data={"n": 2**63 - 1}).applied


def test_event_data_at_the_limit_is_accepted(world: World) -> None:
    job = job_in(world, "RUNNING")
    data = {"blob": ""}
    data["blob"] = "x" * (MAX_EVENT_DATA_BYTES - len('{"blob":""}'))
    result = world.jobs.send(job.uuid, "update", data=data)
    assert result.applied
    assert world.jobs.history(job.uuid)[-1].data == data
