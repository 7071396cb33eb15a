"""A Hypothesis state machine that drives a stored job with random events.

The model is the pure transition function (:func:`datacatalog.states.next_state`) plus
the set of idempotency keys already used. Rules send valid and invalid events, with and
without repeated keys, admin events with the admin token, unknown events and events with
a wrong token. After every step the stored job must agree with the model: same state,
same last event, one history entry per applied event (plus ``create``), and replays
never add an entry. The in-memory engine is enough here: the store code is the same on
every engine and the real server's races are covered by ``test_concurrency``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from datacatalog import states
from datacatalog.errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    InvalidTransitionError,
    UnauthorizedError,
)
from datacatalog.jobs import HistoryEntry, Job
from datacatalog.store import connect
from tests.support.jobs import World, make_world

KEYS = ("k1", "k2", "k3", "k4")
ADMIN_EVENTS = frozenset(states.ADMIN_EVENTS)
DEAD_ENDS = ("FAILED", "REJECTED", "RETIRED", "RESET")


class StoredJobMachine(RuleBasedStateMachine):
    """One job on the in-memory engine, checked against the pure model after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.data_dir = Path(tempfile.mkdtemp(prefix="datacatalog-stateful-"))
        self.world: World = make_world(connect("mongomock://", database="stateful"), self.data_dir)
        self.job: Job = self.world.new_job({"stateful": True})
        self.state = states.INITIAL_STATE
        self.last_event = "create"
        self.applied = 0
        self.keys: dict[str, HistoryEntry] = {}

    def teardown(self) -> None:
        self.world.store.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def token(self, event: str, *, with_job_token: bool) -> str | None:
        if event in ADMIN_EVENTS:
            return self.world.admin()
        return self.world.jobs.job_token(self.job.uuid) if with_job_token else None

    # -- rules ----------------------------------------------------------------------------

    @rule(
        event=st.sampled_from(states.EVENTS),
        key=st.none() | st.sampled_from(KEYS),
        with_job_token=st.booleans(),
        note=st.none() | st.integers(min_value=0, max_value=99),
    )
    def send(self, event: str, key: str | None, with_job_token: bool, note: int | None) -> None:
        data = None if note is None else {"note": note}
        token = self.token(event, with_job_token=with_job_token)
        if key is not None and key in self.keys:
            self._replay(event, key, token)
            return
        allowed = self.state in states.TRANSITIONS[event].sources
        before = len(self.world.jobs.history(self.job.uuid))
        try:
            result = self.world.jobs.send(
                self.job.uuid, event, data=data, event_id=key, token=token
            )
        except InvalidTransitionError as exc:
            assert not allowed, f"{event} from {self.state} was refused: {exc}"
            assert exc.details["state"] == self.state
            assert exc.details["event"] == event
            assert len(self.world.jobs.history(self.job.uuid)) == before
            return
        assert allowed, f"{event} from {self.state} was accepted"
        assert result.applied
        self.state = states.next_state(self.state, event)
        self.last_event = event
        self.applied += 1
        assert result.job.state == self.state
        assert result.entry.name == event
        assert result.entry.event_id == key
        # A new execution's entry also says what it superseded and cleared (jobs.leftovers).
        extra = {"leftovers", "superseded", "cleared"} if event in ("retry", "rerun") else set()
        assert {k: v for k, v in result.entry.data.items() if k not in extra} == (data or {})
        if key is not None:
            self.keys[key] = result.entry

    @rule(data=st.data())
    def send_an_allowed_event(self, data: st.DataObject) -> None:
        """Pick from the events the model allows, so runs reach the far states."""
        event = data.draw(st.sampled_from(states.allowed_events(self.state)), label="event")
        key = data.draw(st.none() | st.sampled_from(KEYS), label="key")
        self.send(event, key, with_job_token=data.draw(st.booleans()), note=None)

    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """Send an event that moves the job forward (random events rarely get far)."""
        moves = [
            event
            for event in states.allowed_events(self.state)
            if states.next_state(self.state, event) not in (self.state, *DEAD_ENDS)
        ]
        if not moves:  # from the dead ends and FINALIZED: anything but create
            moves = [e for e in states.allowed_events(self.state) if e != "create"]
        event = data.draw(st.sampled_from(moves), label="event")
        self.send(event, None, with_job_token=False, note=None)

    @precondition(lambda self: bool(self.keys))
    @rule(data=st.data())
    def replay_a_used_key(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.keys)), label="key")
        event = data.draw(st.sampled_from(states.EVENTS), label="event")
        self._replay(event, key, self.token(event, with_job_token=False))

    def _replay(self, event: str, key: str, token: str | None) -> None:
        history = self.world.jobs.history(self.job.uuid)
        if event != self.keys[key].name:
            # A key names one event: reusing it for another is refused, nothing written.
            with pytest.raises(ConflictError, match="already used"):
                self.world.jobs.send(self.job.uuid, event, event_id=key, token=token)
            assert self.world.jobs.history(self.job.uuid) == history
            return
        result = self.world.jobs.send(self.job.uuid, event, event_id=key, token=token)
        assert result.applied is False
        assert result.entry == self.keys[key]
        assert result.job.state == self.state
        assert self.world.jobs.history(self.job.uuid) == history

    @rule(event=st.sampled_from(["", "Run", "start", "delete", "purge", "RUNNING"]))
    def send_an_unknown_event(self, event: str) -> None:
        try:
            self.world.jobs.send(self.job.uuid, event, token=self.world.admin())
        except InvalidRequestError as exc:
            assert "unknown event" in str(exc)
        else:
            raise AssertionError(f"unknown event {event!r} was accepted")

    @rule(
        event=st.sampled_from(states.EVENTS),
        token=st.sampled_from(["", "f" * 64, "not-a-token"]),
    )
    def send_with_a_wrong_token(self, event: str, token: str) -> None:
        try:
            self.world.jobs.send(self.job.uuid, event, token=token, require_token=True)
        except UnauthorizedError as exc:
            assert isinstance(exc, ForbiddenError) == (token != "")
        else:
            raise AssertionError(f"{event!r} with token {token!r} was accepted")

    @rule()
    def send_an_admin_event_without_the_admin_token(self) -> None:
        try:
            self.world.jobs.send(
                self.job.uuid, "reset", token=self.world.jobs.job_token(self.job.uuid)
            )
        except ForbiddenError:
            return
        raise AssertionError("reset was accepted with a job token")

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def stored_job_matches_the_model(self) -> None:
        stored = self.world.jobs.get(self.job.uuid)
        history = self.world.jobs.history(self.job.uuid)
        assert stored.state == self.state
        assert stored.last_event == self.last_event
        assert len(history) == self.applied + 1
        assert stored.revision == self.applied
        assert history[0].name == "create"
        assert history[-1].name == self.last_event
        assert {e.event_id for e in history if e.event_id is not None} == set(self.keys)
        assert len({e.uuid for e in history}) == len(history)
        state = states.INITIAL_STATE
        for entry in history[1:]:  # replaying the history through the table ends here too
            state = states.next_state(state, entry.name)
        assert state == self.state


StoredJobMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoredJobMachine = StoredJobMachine.TestCase
