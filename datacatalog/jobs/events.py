"""Applying an event to a job: the one place a job's state and history change.

One atomic conditional update per event: the filter names the job, the states the
event is allowed from (:mod:`datacatalog.states`), that the event's idempotency key is
not yet in the history, and that the history has room; the update sets the state and
``last_event``, appends the history entry and bumps the revision. Nothing is read first.
When the update matches nothing, one read says why: unknown job, replayed event (a
no-op returning the job as it is), invalid transition, or full history.

An event with an idempotency key is safe to send again, so while the database is
unavailable (a replica set electing a new primary) it is sent again within the store's
failover budget (:mod:`datacatalog.store.failover`); an event without one is sent once.

Events that arrive with a token are checked against the job token; callers outside
the process must present one. Admin events (``reset``, ``ready``) need an admin token
and are handed to the admin actions (:mod:`datacatalog.jobs.admin`), which apply them
here too; so are ``retry`` and ``rerun`` to :mod:`datacatalog.jobs.leftovers`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from datacatalog import states, tokens
from datacatalog.clock import utc_now
from datacatalog.errors import ConflictError, InvalidRequestError, PayloadTooLargeError
from datacatalog.freeform import check_object, encoded_size
from datacatalog.identifiers import random_uuid, require_kind, typed_uuid
from datacatalog.jobs import limits
from datacatalog.jobs.credentials import Credentials
from datacatalog.jobs.model import Actor, EventResult, HistoryEntry, Job
from datacatalog.jobs.queries import job_document
from datacatalog.store import Document, Store

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventCall:
    """One checked event on its way to the job: what :meth:`EventApplier.apply` writes
    and what the handlers of events that entail more (reset, ready, retry, rerun) take."""

    job_uuid: str
    row: states.Transition
    payload: Mapping[str, Any]
    event_id: str | None
    who: Actor


AdminHandler = Callable[[EventCall], EventResult]


class EventOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`EventApplier.send`, which documents them; declared
    once for the services that pass them on (``catalog.jobs.send(...)``)."""

    data: Mapping[str, Any] | None
    event_id: str | None
    token: str | None
    require_token: bool
    actor: Actor | None


class EventApplier:
    """Sends events to jobs on one store."""

    def __init__(self, store: Store, *, credentials: Credentials, actor: Actor) -> None:
        self.store = store
        self.credentials = credentials
        self.actor = actor
        # Set by the admin actions, which own what a reset or ready entails.
        self.admin_handler: AdminHandler | None = None
        # Events that entail more than their update, by name: ``retry`` and ``rerun``
        # (datacatalog.jobs.leftovers). Each applies the event through :meth:`apply`.
        self.handlers: dict[str, AdminHandler] = {}
        # Called with each event sent through :meth:`send` after its write succeeded (live
        # OpenLineage emission, datacatalog.provenance.emitter); an observer never fails
        # the event.
        self.observers: list[Callable[[EventResult], None]] = []

    def send(
        self,
        job_uuid: str,
        event: str,
        *,
        data: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        token: str | None = None,
        require_token: bool = False,
        actor: Actor | None = None,
    ) -> EventResult:
        """Apply one event to a job atomically.

        Args:
            job_uuid: The job.
            event: An event name from :data:`datacatalog.states.EVENTS`.
            data: Event data (a JSON object, at most 64 KiB).
            event_id: Client-chosen idempotency key; resending it changes nothing.
            token: The job token (or, for ``reset``/``ready``, an admin token). When
                given it is always checked.
            require_token: Refuse the event when no token is given.
            actor: Who sends it (defaults to this process).

        Raises:
            InvalidRequestError: Unknown event, bad data or key.
            UnauthorizedError: A required token is missing (or wrong: ForbiddenError).
            UnavailableError: The database did not answer (with ``event_id``: through
                the failover budget).
            NotFoundError: No such job.
            InvalidTransitionError: The event is not allowed from the job's state.
            PayloadTooLargeError: The data or the job's history is over its limit.
        """
        row = states.transition(event)
        require_kind(job_uuid, "pipelinejob", what="job")
        if row.admin:
            self.credentials.check_admin(token, action=f"the {event} event")
        elif token is not None or require_token:
            tokens.check_job_token(self.credentials.secret, job_uuid, token)
        payload = check_object(data, where="event data", max_bytes=limits.MAX_EVENT_DATA_BYTES)
        if event_id is not None and (not isinstance(event_id, str) or not 0 < len(event_id) <= 128):
            raise InvalidRequestError("event_id must be a string of 1-128 characters")
        call = EventCall(job_uuid, row, payload, event_id, actor or self.actor)
        if row.admin:
            if self.admin_handler is None:
                raise InvalidRequestError(f"the {event} event needs the admin actions")
            result = self.admin_handler(call)
        elif event in self.handlers:
            # Not resent here: what such an event entails beyond its update may have
            # half-happened; its handler says what a replay does.
            result = self.handlers[event](call)
        elif event_id is None:
            result = self.apply(call)
        else:
            result = self.store.failover.call(
                lambda: self.apply(call),
                what=f"event {event} ({event_id}) of job {job_uuid}",
            )
        self._notify_observers(result)
        return result

    def replayed(self, job_uuid: str, event_id: str | None) -> bool:
        """Whether the event with idempotency key ``event_id`` is in the job's history."""
        if event_id is None:
            return False
        entry = keyed_entry_uuid(job_uuid, event_id)
        return self.store.count("job", {"uuid": job_uuid, "history.uuid": entry}) > 0

    def _notify_observers(self, result: EventResult) -> None:
        """Tell the observers about an event whose write succeeded; their failures are logged."""
        for observer in self.observers:
            try:
                observer(result)
            except Exception:
                _log.exception("job event observer %r failed", observer)

    def apply(self, call: EventCall) -> EventResult:
        """The one conditional update that applies an event (arguments already checked)."""
        job_uuid, row, event_id, who = call.job_uuid, call.row, call.event_id, call.who
        event = row.event
        entry = new_entry(
            event, call.payload, event_id=event_id, to_state=row.target, actor=who, job=job_uuid
        )
        size = entry_size(entry)
        update: dict[str, Any] = {
            "$set": {"last_event": event, **({"state": row.target} if row.target else {})},
            "$push": {"history": entry},
            "$inc": {"_properties.history_bytes": size},
        }
        query = {
            "uuid": job_uuid,
            "_visible": True,
            "state": {"$in": list(row.sources)},
            "history.uuid": {"$ne": entry["uuid"]},
            "_properties.history_bytes": {"$lte": history_limit(row) - size},
        }
        for _attempt in range(3):
            after = self.store.update("job", query, update, projection={"history": 0})
            if after is not None:
                return EventResult(
                    Job.from_document(after), HistoryEntry.from_document(entry), True
                )
            outcome = self._explain_miss(job_uuid, event, entry["uuid"], size)
            if outcome is not None:
                return outcome
        raise ConflictError(f"job {job_uuid} kept changing while {event!r} was applied; retry")

    def _explain_miss(
        self, job_uuid: str, event: str, entry_uuid: str, size: int
    ) -> EventResult | None:
        doc = job_document(self.store, job_uuid, entry=entry_uuid)
        for stored in doc.get("history", []):
            if stored["uuid"] == entry_uuid:
                if stored["name"] != event:
                    # A retry resends the same event; another event under the same key is
                    # a client bug, and pretending it happened would hide it.
                    raise ConflictError(
                        f"event_id {stored.get('event_id')!r} was already used for the "
                        f"{stored['name']!r} event of job {job_uuid}, not {event!r}; "
                        "use a new key for a new event",
                        job=job_uuid,
                        event_id=stored.get("event_id"),
                    )
                doc.pop("history", None)
                return EventResult(
                    Job.from_document(doc), HistoryEntry.from_document(stored), False
                )
        if doc["state"] not in states.transition(event).sources:
            raise states.invalid_transition(event, doc["state"])
        used = int(doc.get("_properties", {}).get("history_bytes", 0))
        if used + size > history_limit(states.transition(event)):
            raise PayloadTooLargeError(
                f"the history of job {job_uuid} is full "
                f"({used} of {limits.MAX_HISTORY_BYTES} bytes); "
                "send smaller event data or retire the job",
                job=job_uuid,
            )
        return None  # the job changed between the update and the read: try again


def keyed_entry_uuid(job: str | None, event_id: str) -> str:
    """The UUID of the history entry of ``job``'s event with idempotency key ``event_id``."""
    return typed_uuid(f"{job}:{event_id}", "pipelinejob_event")


def new_entry(
    name: str,
    data: Mapping[str, Any],
    *,
    event_id: str | None,
    to_state: str | None,
    actor: Actor,
    job: str | None = None,
) -> Document:
    """A history entry as stored; its UUID derives from ``event_id`` when one is given."""
    return {
        "uuid": random_uuid("pipelinejob_event")
        if event_id is None
        else keyed_entry_uuid(job, event_id),
        "event_id": event_id,
        "name": name,
        "date": utc_now(),
        "data": dict(data),
        "to_state": to_state,
        **actor.to_dict(),
    }


def history_limit(row: states.Transition) -> int:
    """The history bytes an event of ``row`` may fill up to."""
    return limits.MAX_HISTORY_BYTES + (limits.ADMIN_HISTORY_RESERVE if row.admin else 0)


def entry_size(entry: Mapping[str, Any]) -> int:
    """The bytes an entry counts against its job's history."""
    return encoded_size(entry.get("data") or {}) + limits.ENTRY_OVERHEAD
