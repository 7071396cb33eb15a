"""Compound writes: a job's start and end, each in one conditional update.

An execution's life needs two writes on its job, besides its file records:

* **start** — take the lease and append the event that begins the run (``run``), in one
  conditional update pipeline. Its filter is the event's (the job is visible, in one of
  the event's source states, the key not yet in its history, the history has room) and
  the lease's (free, already this holder's, or lapsed), so exactly one of any number of
  executions starting at once matches. When the job does not exist yet, its creation is
  folded in: the same write is an upsert that builds the job document, with the
  ``create`` and ``run`` entries pushed together.
* **end** — append the terminal events (``fail``; ``finish``; or ``finish``, ``index``,
  ``indexed``) and release the lease, in one conditional update whose filter names the
  holder: an execution whose lease was taken over ends nothing (:class:`LeaseLostError`),
  and the job is left to its new holder.

Each entry is an event as :mod:`datacatalog.jobs.events` would append it one at a time:
the same entry document, the same state-table rules (checked for the whole chain here,
and for its first event by the filter), the same idempotency: every entry carries a key,
and resending a compound write whose first entry is in the history changes nothing and
returns the job as it is. Being keyed, both writes are resent through an election within
the store's failover budget. The events' observers hear of each entry once the write
succeeded. Heartbeat renewals stay :meth:`LeaseService.renew`'s, one small write each.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datacatalog import states, tokens
from datacatalog.clock import utc_now
from datacatalog.errors import (
    ConflictError,
    InvalidRequestError,
    LeaseLostError,
    PayloadTooLargeError,
)
from datacatalog.freeform import check_object
from datacatalog.identifiers import require_kind
from datacatalog.jobs import limits
from datacatalog.jobs.events import EventApplier, entry_size, history_limit, new_entry
from datacatalog.jobs.leases import (
    KINDS,
    LeaseService,
    _describe,
    _holder,
    _ttl,
    held_elsewhere,
    lease_expressions,
)
from datacatalog.jobs.model import Actor, EventResult, HistoryEntry, Job, Lease
from datacatalog.jobs.queries import job_document
from datacatalog.schemas import validate, validate_fragment
from datacatalog.store import SERVER_NOW, Document, Store

__all__ = ["Lifecycle", "Started"]

_ATTEMPTS = 3
# The events a compound start may begin an execution with. ``retry`` and ``rerun`` entail
# more than their update (datacatalog.jobs.leftovers) and are sent on their own.
START_EVENTS = ("run",)


@dataclass(frozen=True)
class Started:
    """What a compound start wrote: the job after it, its lease, and whether it was new."""

    job: Job
    lease: Lease
    entries: tuple[HistoryEntry, ...]
    applied: bool  # False: the write had been made before (a resend), nothing changed
    created: bool = False


class Lifecycle:
    """The compound start and end writes of executions, on one store."""

    def __init__(self, store: Store, *, events: EventApplier, leases: LeaseService) -> None:
        self.store = store
        self.events = events
        self.leases = leases

    # -- start ------------------------------------------------------------------------------

    def start(
        self,
        job_uuid: str,
        *,
        holder: str,
        event_id: str,
        data: Mapping[str, Any] | None = None,
        event: str = "run",
        kind: str = "driver",
        ttl: float = 30.0,
        token: str | None = None,
        new: Mapping[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> Started:
        """Take the job's lease and append ``event`` in one conditional write.

        Args:
            job_uuid: The job.
            holder: The lease holder (the driver's or execution's id).
            event_id: The event's idempotency key.
            data: The event's data.
            event: The starting event (``run``).
            kind: The lease kind (``driver`` or ``workflow``).
            ttl: Seconds the lease lasts unless renewed.
            token: The job token; checked when given.
            new: The job document as :meth:`JobPlanner.document` builds it, to create the
                job in the same write when it does not exist (an existing job is left as
                it is, and only started).
            actor: Who starts it (default: the events' actor).

        Raises:
            InvalidRequestError: Bad arguments.
            NotFoundError: No such job (and no ``new`` document).
            ActiveExecutionsError: Another holder's lease is live; nothing changed.
            InvalidTransitionError: The job's state does not allow ``event``.
            PayloadTooLargeError: The job's history is full.
        """
        if event not in START_EVENTS:
            raise InvalidRequestError(
                f"a compound start begins with {', '.join(START_EVENTS)}, not {event!r}"
            )
        row = states.transition(event)
        job = require_kind(job_uuid, "pipelinejob", what="job")
        holder = _holder(holder)
        if kind not in KINDS:
            raise InvalidRequestError(
                f"a lease kind must be one of {', '.join(KINDS)}, not {kind!r}"
            )
        seconds = _ttl(ttl)
        _check_key(event_id)
        if token is not None:
            tokens.check_job_token(self.events.credentials.secret, job, token)
        payload = check_object(data, where="event data", max_bytes=limits.MAX_EVENT_DATA_BYTES)
        who = actor or self.events.actor
        entry = new_entry(
            event, payload, event_id=event_id, to_state=row.target, actor=who, job=job
        )
        validate_fragment("job", "history", entry, item=True)
        base: Document | None = None
        if new is not None:
            base = dict(new)
            if base.get("uuid") != job or base.get("state") != states.INITIAL_STATE:
                raise InvalidRequestError(f"the new job document is not a CREATED job {job}")
            validate("job", base)
        result = self.store.failover.call(
            lambda: self._start(job, row, entry, holder, kind, seconds, base),
            what=f"starting job {job} ({event_id})",
        )
        if result.applied:
            if result.lease.taken_over is not None:
                self.leases._record_takeover(result.lease)
            for stored in result.entries:
                self.events._notify_observers(EventResult(result.job, stored, True))
        return result

    def _start(
        self,
        job: str,
        row: states.Transition,
        entry: Document,
        holder: str,
        kind: str,
        seconds: float,
        base: Document | None,
    ) -> Started:
        size = entry_size(entry)
        lease, example = lease_expressions(holder, kind, seconds)
        query: Document = {
            "uuid": job,
            "_visible": True,
            "state": {"$in": list(row.sources)},
            "history.uuid": {"$ne": entry["uuid"]},
            "_properties.history_bytes": {"$lte": history_limit(row) - size},
        }
        free = [{"lease": None}, {"lease.holder": holder}]
        # The server refuses $expr in an upsert's filter: the first try of a new job takes
        # only a free lease (or its own); a job found holding a lapsed one is tried again
        # as an update, which takes it over.
        lapsed = {"$expr": {"$lt": ["$lease.expires", SERVER_NOW]}}
        upsert = base is not None
        stages: list[Document] = []
        if base is not None:
            # A new job is built from the planned document; an existing one is kept as it is.
            missing = {"$eq": [{"$ifNull": ["$state", None]}, None]}
            built = {"$mergeObjects": [{"$literal": _built(base)}, "$$ROOT"]}
            stages.append({"$replaceWith": {"$cond": [missing, built, "$$ROOT"]}})
        stages.append(
            {
                "$set": {
                    "lease": lease,
                    "state": {"$literal": row.target},
                    "last_event": {"$literal": row.event},
                    "history": {"$concatArrays": ["$history", {"$literal": [entry]}]},
                    "_properties.history_bytes": {"$add": ["$_properties.history_bytes", size]},
                }
            }
        )
        for _attempt in range(_ATTEMPTS):
            try:
                after = self.store.update_pipeline(
                    "job",
                    {**query, "$or": free if upsert else [*free, lapsed]},
                    stages,
                    fragments={"lease": example},
                    projection={"history": 0},
                    upsert=upsert,
                )
            except ConflictError as exc:
                if exc.details.get("key") != ["uuid"]:
                    raise
                after = None  # the job exists and does not match: say why below
            if after is not None:
                started = Job.from_document(after)
                entries = [HistoryEntry.from_document(entry)]
                # A job this write built has revision 0, as one inserted (see _built).
                created = base is not None and int(after["_properties"]["revision"]) == 0
                if created:
                    assert base is not None
                    entries.insert(0, HistoryEntry.from_document(base["history"][0]))
                assert started.lease is not None
                return Started(started, started.lease, tuple(entries), True, created)
            found = self._explain_start(job, row, entry, holder, size)
            if found is not None:
                return found
            upsert = False
        raise ConflictError(f"job {job} kept changing while it was being started; retry")

    def _explain_start(
        self,
        job: str,
        row: states.Transition,
        entry: Document,
        holder: str,
        size: int,
    ) -> Started | None:
        # A deleted job is not found (nor built again: its uuid is taken).
        doc = job_document(self.store, job, entry=entry["uuid"])
        stored = next((e for e in doc.get("history", []) if e["uuid"] == entry["uuid"]), None)
        doc.pop("history", None)
        current = Job.from_document(doc)
        if stored is not None:
            _same_event(stored, row.event, job)
            lease = current.lease
            if lease is None or lease.holder != holder:
                raise LeaseLostError(
                    f"{holder} started job {job} before but no longer holds its lease",
                    job=job,
                    holder=holder,
                    current=lease.holder if lease is not None else None,
                )
            return Started(current, lease, (HistoryEntry.from_document(stored),), False)
        lease = current.lease
        if lease is not None and lease.holder != holder and lease.expires > utc_now():
            raise held_elsewhere(job, lease)
        if current.state not in row.sources:
            raise states.invalid_transition(row.event, current.state)
        used = int(doc.get("_properties", {}).get("history_bytes", 0))
        if used + size > history_limit(row):
            raise _full(job, used)
        return None  # changed between the write and the read (a lease lapsed): again

    # -- end --------------------------------------------------------------------------------

    def end(
        self,
        lease: Lease,
        events: Sequence[tuple[str, Mapping[str, Any] | None, str]],
        *,
        token: str | None = None,
        actor: Actor | None = None,
    ) -> EventResult:
        """Append ``events`` (name, data, idempotency key) and release ``lease``, in one
        conditional update; returns the job after it and the last entry.

        The chain must follow the state table (each event allowed from the state the one
        before it leaves), and the filter holds the job to the first event's source states
        and to ``lease.holder``.

        Raises:
            InvalidRequestError: An empty or disallowed chain, bad data or key.
            LeaseLostError: The lease is not ``lease.holder``'s any more: nothing changed,
                the job is its new holder's.
            InvalidTransitionError: The job's state does not allow the first event.
            PayloadTooLargeError: The job's history is full.
        """
        job = require_kind(str(lease.job_uuid), "pipelinejob", what="job")
        if not events:
            raise InvalidRequestError("an end write appends at least one event")
        rows = [states.transition(name) for name, _data, _key in events]
        for row in rows:
            if row.admin or row.target is None or row.event in ("retry", "rerun", "reuse"):
                raise InvalidRequestError(f"the {row.event} event cannot end an execution")
        for before, after in itertools.pairwise(rows):
            assert before.target is not None
            if before.target not in after.sources:
                raise states.invalid_transition(after.event, before.target)
        if token is not None:
            tokens.check_job_token(self.events.credentials.secret, job, token)
        who = actor or self.events.actor
        entries = []
        for (name, data, key), row in zip(events, rows, strict=True):
            _check_key(key)
            payload = check_object(data, where="event data", max_bytes=limits.MAX_EVENT_DATA_BYTES)
            entries.append(
                new_entry(name, payload, event_id=key, to_state=row.target, actor=who, job=job)
            )
        result = self.store.failover.call(
            lambda: self._end(job, lease.holder, rows, entries),
            what=f"ending job {job} ({events[0][2]})",
        )
        if result.applied:
            for entry in entries:
                self.events._notify_observers(
                    EventResult(result.job, HistoryEntry.from_document(entry), True)
                )
        return result

    def _end(
        self, job: str, holder: str, rows: list[states.Transition], entries: list[Document]
    ) -> EventResult:
        size = sum(entry_size(e) for e in entries)
        last = rows[-1]
        query = {
            "uuid": job,
            "_visible": True,
            "lease.holder": holder,
            "state": {"$in": list(rows[0].sources)},
            "history.uuid": {"$nin": [e["uuid"] for e in entries]},
            "_properties.history_bytes": {"$lte": history_limit(rows[0]) - size},
        }
        update = {
            "$set": {"state": last.target, "last_event": last.event, "lease": None},
            "$push": {"history": {"$each": entries}},
            "$inc": {"_properties.history_bytes": size},
        }
        for _attempt in range(_ATTEMPTS):
            after = self.store.update("job", query, update, projection={"history": 0})
            if after is not None:
                return EventResult(
                    Job.from_document(after), HistoryEntry.from_document(entries[-1]), True
                )
            first = entries[0]
            doc = job_document(self.store, job, entry=first["uuid"])
            stored = next((e for e in doc.get("history", []) if e["uuid"] == first["uuid"]), None)
            doc.pop("history", None)
            current = Job.from_document(doc)
            if stored is not None:
                _same_event(stored, rows[0].event, job)
                return EventResult(current, HistoryEntry.from_document(stored), False)
            if current.lease is None or current.lease.holder != holder:
                now = current.lease
                who = f"it is held by {_describe(now)}" if now is not None else "it is free"
                raise LeaseLostError(
                    f"{holder} no longer holds the lease of job {job}: {who}; "
                    f"its {rows[0].event} was not recorded",
                    job=job,
                    holder=holder,
                    current=now.holder if now is not None else None,
                )
            if current.state not in rows[0].sources:
                raise states.invalid_transition(rows[0].event, current.state)
            used = int(doc.get("_properties", {}).get("history_bytes", 0))
            if used + size > history_limit(rows[0]):
                raise _full(job, used)
        raise ConflictError(f"job {job} kept changing while it was being ended; retry")


def _built(base: Document) -> Document:
    """The new job document as the upsert's first stage builds it: its revision one below
    the inserted one's, so that after the write's own increment it is 0, as an inserted
    job's is (and a job started, not built, by the write is at 1 or more)."""
    properties = dict(base["_properties"])
    properties["revision"] = int(properties.get("revision", 0)) - 1
    return {**base, "_properties": properties}


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= 128:
        raise InvalidRequestError("event_id must be a string of 1-128 characters")


def _same_event(stored: Mapping[str, Any], event: str, job: str) -> None:
    if stored["name"] != event:
        raise ConflictError(
            f"event_id {stored.get('event_id')!r} was already used for the "
            f"{stored['name']!r} event of job {job}, not {event!r}; use a new key for a new event",
            job=job,
            event_id=stored.get("event_id"),
        )


def _full(job: str, used: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the history of job {job} is full ({used} of {limits.MAX_HISTORY_BYTES} bytes); "
        "send smaller event data or retire the job",
        job=job,
    )
