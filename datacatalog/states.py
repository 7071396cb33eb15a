"""The job state machine, declared once as a data table.

A job moves between states only by events. :data:`TRANSITIONS` lists, for every
event, the states it may be sent from and the state it leads to (``None`` means
"unchanged"). Everything else — the store's conditional updates, the JSON
Schema enums, the CLI help, the HTTP status mapping — is derived from this table.

``reset`` and ``ready`` are administrative events: they need an admin token.
``retry``, ``rerun`` and ``reuse`` are a second run of the same job (see
:mod:`datacatalog.jobs.reruns`): the first two start a new execution and are sent by the
holder of the job token, like ``run``; ``reuse`` records that a run found the outputs
up to date.
``delete`` and ``purge`` are admin *actions*, not transitions (see ``jobs``).
"""

from __future__ import annotations

from dataclasses import dataclass

from datacatalog.errors import InvalidRequestError, InvalidTransitionError

STATE_DESCRIPTIONS: dict[str, str] = {
    "CREATED": "registered, not yet running",
    "RUNNING": "the pipeline is computing",
    "FAILED": "the run ended in an error",
    "FINISHED": "the run ended and its outputs are in the archive path",
    "INDEXING": "outputs are being indexed",
    "VALIDATING": "outputs are being validated",
    "VALIDATED": "outputs passed validation",
    "REJECTED": "outputs failed validation",
    "FINALIZED": "outputs are released for use",
    "RETIRED": "kept for the record, no longer current",
    "RESET": "emptied by an administrator; may be made ready again",
}

STATES: tuple[str, ...] = tuple(STATE_DESCRIPTIONS)
INITIAL_STATE = "CREATED"


@dataclass(frozen=True)
class Transition:
    """One row of the table: ``event`` moves a job from any of ``sources`` to ``target``."""

    event: str
    sources: tuple[str, ...]
    target: str | None
    description: str
    admin: bool = False

    def destination(self, current: str) -> str:
        """Return the state a job in ``current`` ends in after this event."""
        return current if self.target is None else self.target


_ANY = STATES
# States whose outputs count as made: a second run of the job is up to date when they verify.
UP_TO_DATE_STATES: tuple[str, ...] = ("FINISHED", "VALIDATED", "REJECTED", "FINALIZED")
_UP_TO_DATE = UP_TO_DATE_STATES
# States a forced (or stale) re-run starts from: the run ended, or its outputs are handled.
_ENDED = ("FINISHED", "INDEXING", "VALIDATING", "VALIDATED", "REJECTED", "FINALIZED")

TRANSITIONS: dict[str, Transition] = {
    t.event: t
    for t in (
        Transition("create", ("CREATED",), "CREATED", "the job was registered"),
        Transition("run", ("CREATED", "RUNNING"), "RUNNING", "the run started"),
        Transition(
            "update",
            ("CREATED", "RUNNING", "VALIDATING", "INDEXING"),
            None,
            "progress or a note; the state is unchanged",
        ),
        Transition(
            "resource",
            ("CREATED", "RUNNING"),
            None,
            "a scheduler or resource status; the state is unchanged",
        ),
        Transition(
            "fail", ("CREATED", "RUNNING", "VALIDATING", "INDEXING"), "FAILED", "the run failed"
        ),
        Transition("finish", ("RUNNING", "FINISHED"), "FINISHED", "the run completed"),
        Transition("index", ("FINISHED", "INDEXING"), "INDEXING", "indexing of outputs began"),
        Transition("indexed", ("FINISHED", "INDEXING"), "FINISHED", "indexing of outputs ended"),
        Transition("validate", ("FINISHED", "VALIDATED"), "VALIDATING", "validation began"),
        Transition("validated", ("VALIDATING", "VALIDATED"), "VALIDATED", "validation passed"),
        Transition("reject", ("VALIDATING",), "REJECTED", "validation failed"),
        Transition("finalize", ("VALIDATED",), "FINALIZED", "outputs released"),
        Transition(
            "retire",
            ("FAILED", "FINALIZED", "FINISHED", "REJECTED", "VALIDATING", "VALIDATED"),
            "RETIRED",
            "the job is kept for the record only",
        ),
        Transition(
            "retry",
            ("FAILED",),
            "RUNNING",
            "a failed job runs again: a new execution; what the failed one left is cleared",
        ),
        Transition(
            "rerun",
            _ENDED,
            "RUNNING",
            "a job that ran runs again (forced, or its outputs are stale): a new execution; "
            "its earlier file records are superseded",
        ),
        Transition(
            "reuse",
            _UP_TO_DATE,
            None,
            "a run was asked for and the outputs verified: nothing ran; the state is unchanged",
        ),
        Transition("reset", _ANY, "RESET", "an administrator emptied the job", admin=True),
        Transition("ready", ("RESET",), "CREATED", "an administrator re-armed the job", admin=True),
    )
}

EVENTS: tuple[str, ...] = tuple(TRANSITIONS)
ADMIN_EVENTS: tuple[str, ...] = tuple(e for e, t in TRANSITIONS.items() if t.admin)
ADMIN_ACTIONS: tuple[str, ...] = ("reset", "ready", "delete", "purge")

# Scheduler statuses reported by webhook callers, mapped to events (docs/service.md,
# "Scheduler statuses").
_STATUS_EVENTS: dict[str, str] = {
    "RUNNING": "run",
    "FINISHED": "finish",
    "FAILED": "fail",
    "STOPPED": "fail",
    "ARCHIVING_FAILED": "fail",
    "HEARTBEAT": "update",
}


def transition(event: str) -> Transition:
    """Return the table row for ``event``; an unknown name is an invalid request."""
    if not isinstance(event, str):
        raise InvalidRequestError(
            f"an event name must be a string, not {type(event).__name__}; "
            f"known events: {', '.join(EVENTS)}"
        )
    try:
        return TRANSITIONS[event]
    except KeyError:
        raise InvalidRequestError(
            f"unknown event {event!r}; known events: {', '.join(EVENTS)}", event=event
        ) from None


def allowed_events(state: str) -> list[str]:
    """Events that may be sent to a job in ``state``."""
    return [e for e, t in TRANSITIONS.items() if state in t.sources]


def next_state(state: str, event: str) -> str:
    """Pure transition function: the state after ``event``, or an error naming both."""
    row = transition(event)
    if state not in row.sources:
        raise invalid_transition(event, state)
    return row.destination(state)


def invalid_transition(event: str, state: str) -> InvalidTransitionError:
    """The error for ``event`` arriving at a job in ``state``."""
    allowed = allowed_events(state)
    return InvalidTransitionError(
        f"invalid transition: event {event!r} is not allowed from {state}; "
        f"allowed events: {', '.join(allowed) if allowed else 'none'}",
        event=event,
        state=state,
        allowed=allowed,
    )


def event_for_status(status: str) -> str:
    """Map an external scheduler status (``RUNNING``, ``QUEUED``, ...) to an event."""
    if not isinstance(status, str):
        raise InvalidRequestError(f"status must be a string, not {type(status).__name__}")
    normalized = status.strip().upper()
    if not normalized:
        raise InvalidRequestError("status must be a non-empty string")
    return _STATUS_EVENTS.get(normalized, "resource")
