"""Tests for datacatalog.states: the transition table of SPEC §5 (with the re-run events
of docs/reruns.md), as pure data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacatalog.errors import InvalidRequestError, InvalidTransitionError
from datacatalog.states import (
    ADMIN_EVENTS,
    EVENTS,
    INITIAL_STATE,
    STATE_DESCRIPTIONS,
    STATES,
    TRANSITIONS,
    allowed_events,
    event_for_status,
    next_state,
    transition,
)

SPEC_STATES = {
    "CREATED",
    "RUNNING",
    "FAILED",
    "FINISHED",
    "INDEXING",
    "VALIDATING",
    "VALIDATED",
    "REJECTED",
    "FINALIZED",
    "RETIRED",
    "RESET",
}
UNCHANGED = None

# SPEC §5, copied by hand: event -> (sources, target); None means "unchanged".
SPEC_TABLE: dict[str, tuple[set[str], str | None]] = {
    "create": ({"CREATED"}, "CREATED"),
    "run": ({"CREATED", "RUNNING"}, "RUNNING"),
    "update": ({"CREATED", "RUNNING", "VALIDATING", "INDEXING"}, UNCHANGED),
    "resource": ({"CREATED", "RUNNING"}, UNCHANGED),
    "fail": ({"CREATED", "RUNNING", "VALIDATING", "INDEXING"}, "FAILED"),
    "finish": ({"RUNNING", "FINISHED"}, "FINISHED"),
    "index": ({"FINISHED", "INDEXING"}, "INDEXING"),
    "indexed": ({"FINISHED", "INDEXING"}, "FINISHED"),
    "validate": ({"FINISHED", "VALIDATED"}, "VALIDATING"),
    "validated": ({"VALIDATING", "VALIDATED"}, "VALIDATED"),
    "reject": ({"VALIDATING"}, "REJECTED"),
    "finalize": ({"VALIDATED"}, "FINALIZED"),
    "retire": (
        {"FAILED", "FINALIZED", "FINISHED", "REJECTED", "VALIDATING", "VALIDATED"},
        "RETIRED",
    ),
    # RERUNS: a second run of the same job (datacatalog.jobs.reruns).
    "retry": ({"FAILED"}, "RUNNING"),
    "rerun": (
        {"FINISHED", "INDEXING", "VALIDATING", "VALIDATED", "REJECTED", "FINALIZED"},
        "RUNNING",
    ),
    "reuse": ({"FINISHED", "VALIDATED", "REJECTED", "FINALIZED"}, UNCHANGED),
    "reset": (set(SPEC_STATES), "RESET"),
    "ready": ({"RESET"}, "CREATED"),
}

PAIRS = [(state, event) for state in sorted(SPEC_STATES) for event in sorted(SPEC_TABLE)]


def expected_next(state: str, event: str) -> str | None:
    """What SPEC §5 says ``event`` does to a job in ``state`` (None: not allowed)."""
    sources, target = SPEC_TABLE[event]
    if state not in sources:
        return None
    return state if target is UNCHANGED else target


def test_states_and_events_match_spec() -> None:
    assert set(STATES) == SPEC_STATES
    assert set(EVENTS) == set(SPEC_TABLE)
    assert INITIAL_STATE == "CREATED"
    assert "delete" not in EVENTS and "purge" not in EVENTS


@pytest.mark.parametrize("event", sorted(SPEC_TABLE))
def test_table_row_matches_spec(event: str) -> None:
    sources, target = SPEC_TABLE[event]
    row = TRANSITIONS[event]
    assert row.event == event
    assert set(row.sources) == sources
    assert row.target == target
    assert row.description.strip()


def test_every_state_has_a_description() -> None:
    assert set(STATE_DESCRIPTIONS) == SPEC_STATES
    assert all(text.strip() for text in STATE_DESCRIPTIONS.values())


def test_admin_events() -> None:
    assert set(ADMIN_EVENTS) == {"reset", "ready"}
    assert all(TRANSITIONS[e].admin == (e in {"reset", "ready"}) for e in EVENTS)


@pytest.mark.parametrize(("state", "event"), PAIRS)
def test_next_state(state: str, event: str) -> None:
    expected = expected_next(state, event)
    if expected is not None:
        assert next_state(state, event) == expected
        return
    with pytest.raises(InvalidTransitionError) as info:
        next_state(state, event)
    allowed = sorted(e for e in SPEC_TABLE if expected_next(state, e) is not None)
    message = str(info.value)
    assert repr(event) in message
    assert state in message
    for name in allowed:
        assert name in message
    assert sorted(info.value.details["allowed"]) == allowed
    assert info.value.details["event"] == event
    assert info.value.details["state"] == state


@pytest.mark.parametrize("state", sorted(SPEC_STATES))
def test_allowed_events(state: str) -> None:
    expected = {e for e in SPEC_TABLE if expected_next(state, e) is not None}
    assert set(allowed_events(state)) == expected


def test_invalid_transition_message_example() -> None:
    with pytest.raises(InvalidTransitionError) as info:
        next_state("FINISHED", "fail")
    assert str(info.value) == (
        "invalid transition: event 'fail' is not allowed from FINISHED; "
        "allowed events: finish, index, indexed, validate, retire, rerun, reuse, reset"
    )
    assert info.value.code == "invalid_transition"


def test_unknown_event_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequestError, match="unknown event 'explode'") as info:
        transition("explode")
    assert "finalize" in str(info.value)
    with pytest.raises(InvalidRequestError):
        next_state("CREATED", "explode")


def test_destination_keeps_state_when_unchanged() -> None:
    assert TRANSITIONS["update"].destination("INDEXING") == "INDEXING"
    assert TRANSITIONS["run"].destination("CREATED") == "RUNNING"


@settings(max_examples=100, deadline=None)
@given(events=st.lists(st.sampled_from(sorted(SPEC_TABLE)), max_size=30))
def test_random_event_sequences_follow_the_table(events: list[str]) -> None:
    state = "CREATED"
    for event in events:
        expected = expected_next(state, event)
        if expected is None:
            with pytest.raises(InvalidTransitionError):
                next_state(state, event)
        else:
            state = next_state(state, event)
            assert state == expected
        assert state in SPEC_STATES


# -- scheduler statuses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "event"),
    [
        ("RUNNING", "run"),
        ("FINISHED", "finish"),
        ("FAILED", "fail"),
        ("STOPPED", "fail"),
        ("ARCHIVING_FAILED", "fail"),
        ("HEARTBEAT", "update"),
        ("PENDING", "resource"),
        ("QUEUED", "resource"),
        ("STAGING_INPUTS", "resource"),
        ("STAGING_JOB", "resource"),
        ("ARCHIVING", "resource"),
        ("SUBMITTING", "resource"),
        ("running", "run"),
        (" failed ", "fail"),
    ],
)
def test_scheduler_status_mapping(status: str, event: str) -> None:
    assert event_for_status(status) == event
    assert event in EVENTS


@pytest.mark.parametrize("status", ["", "   "])
def test_empty_status_refused(status: str) -> None:
    with pytest.raises(InvalidRequestError, match="non-empty"):
        event_for_status(status)
