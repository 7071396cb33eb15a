"""Leases: at most one active execution per job.

A stage driver or a workflow run takes its job's lease before it does anything and
gives it back when it ends. The lease is the job document's ``lease`` field::

    lease: null                       free
    lease: {holder, kind, host, pid,  held by ``holder`` (a driver's or execution's id)
            since, renewed, expires,  until ``expires`` unless renewed
            ttl, taken_over}

Taking it is ONE conditional write: "set the holder and expiry where there is no
holder, the holder is this one, or the expiry has passed". Its success is the whole
concurrency story: of any number of executions starting at once, exactly one matches.
Every date is the database server's (``$$NOW`` in an update pipeline), so hosts whose
clocks disagree cannot steal a lease from each other; the in-memory engine, which has
no server, uses the process clock.

The holder renews the lease well inside its time to live (:class:`Heartbeat`; the
heartbeats of a process share one scheduler thread). A holder that died stops renewing;
its lease lapses and the next execution takes it over, which is recorded on the new
lease (``taken_over``) and in the job history as an ``update`` event (when the job's
state allows one: a job that has already ended records no more events). Renewing and
releasing are conditional on the holder's own id: a holder whose lease was taken over
gets :class:`LeaseLostError`, and its release changes nothing.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from datacatalog.clock import utc_now
from datacatalog.errors import (
    ActiveExecutionsError,
    DataCatalogError,
    InvalidRequestError,
    InvalidTransitionError,
    LeaseLostError,
    NotFoundError,
    PayloadTooLargeError,
)
from datacatalog.identifiers import require_kind
from datacatalog.jobs.credentials import Credentials
from datacatalog.jobs.events import EventApplier
from datacatalog.jobs.model import Actor, Lease
from datacatalog.lifetime import StartStop
from datacatalog.settings import Settings
from datacatalog.store import SERVER_NOW, Store
from datacatalog.stored import to_stored
from datacatalog.threads import Workers

__all__ = [
    "DEFAULT_TTL",
    "HEARTBEATS",
    "KINDS",
    "Heartbeat",
    "HeartbeatScheduler",
    "Lease",
    "LeaseService",
]

KINDS = ("driver", "workflow")
DEFAULT_TTL = 30.0  # seconds; a heartbeat renews three times per ttl
MAX_TTL = 7 * 24 * 3600.0
_TAKEOVER_FIELDS = ("holder", "kind", "host", "pid", "expires")
_ATTEMPTS = 3


class LeaseService:
    """Takes, renews, releases and reads job leases on one store."""

    def __init__(
        self, store: Store, *, events: EventApplier | None = None, actor: Actor | None = None
    ) -> None:
        self.store = store
        self.actor = actor or Actor.current()
        # Takeovers are recorded through the one place events are applied.
        self.events = events or EventApplier(
            store, credentials=Credentials(Settings.load()), actor=self.actor
        )

    def acquire(
        self,
        job_uuid: str | uuidlib.UUID,
        *,
        holder: str,
        kind: str,
        ttl: float = DEFAULT_TTL,
        host: str | None = None,
        pid: int | None = None,
    ) -> Lease:
        """Take the job's lease for ``holder``, in one conditional write.

        The lease is taken when it is free, already ``holder``'s (taking it again renews
        it), or lapsed (taken over: recorded on the lease and in the job history).

        Args:
            job_uuid: The job.
            holder: The driver's or execution's id.
            kind: ``"driver"`` or ``"workflow"``.
            ttl: Seconds until the lease lapses unless renewed.
            host: The holder's host (default: this one).
            pid: The holder's process id (default: this one).

        Raises:
            InvalidRequestError: A bad job UUID, holder, kind or ttl.
            NotFoundError: No such job (or it is deleted).
            ActiveExecutionsError: Another holder has the lease; the error names it.
        """
        job = _job(job_uuid)
        holder = _holder(holder)
        if kind not in KINDS:
            raise InvalidRequestError(
                f"a lease kind must be one of {', '.join(KINDS)}, not {kind!r}", kind=str(kind)
            )
        seconds = _ttl(ttl)
        who_host = socket.gethostname() if host is None else host
        who_pid = os.getpid() if pid is None else pid
        if (
            not isinstance(who_host, str)
            or isinstance(who_pid, bool)
            or not isinstance(who_pid, int)
        ):
            raise InvalidRequestError("a lease's host must be a string and its pid an integer")
        lease, example = lease_expressions(holder, kind, seconds, host=who_host, pid=who_pid)
        query = {
            "uuid": job,
            "_visible": True,
            "$or": [
                {"lease": None},
                {"lease.holder": holder},
                {"$expr": {"$lt": ["$lease.expires", SERVER_NOW]}},
            ],
        }
        for _attempt in range(_ATTEMPTS):
            after = self.store.update_pipeline(
                "job",
                query,
                [{"$set": {"lease": lease}}],
                fragments={"lease": example},
                projection={"uuid": 1, "lease": 1},
            )
            if after is not None:
                taken = Lease.from_document(job, after["lease"])
                if taken.taken_over is not None:
                    self._record_takeover(taken)
                return taken
            held = self.get(job)
            if held is not None and held.holder != holder:
                raise held_elsewhere(job, held)
            # The lease lapsed or was released between the write and the read: try again.
        raise ActiveExecutionsError(
            f"job {job}'s lease kept changing hands while {holder} tried to take it", job=job
        )

    def renew(self, lease: Lease) -> Lease:
        """Extend ``lease`` by its ttl from now (server time).

        Raises:
            LeaseLostError: The lease is no longer ``lease.holder``'s (it lapsed and was
                taken over, or was released); the error names who holds it now.
        """
        job = _job(lease.job_uuid)
        now = utc_now()
        example = {**to_stored(lease, without=("job_uuid",)), "renewed": now, "expires": now}
        renewal = {
            "renewed": SERVER_NOW,
            "expires": {"$add": [SERVER_NOW, {"$multiply": ["$lease.ttl", 1000]}]},
        }
        after = self.store.update_pipeline(
            "job",
            {"uuid": job, "lease.holder": lease.holder},
            [{"$set": {"lease": {"$mergeObjects": ["$lease", renewal]}}}],
            fragments={"lease": example},
            projection={"uuid": 1, "lease": 1},
        )
        if after is None:
            raise self._lost(lease)
        return Lease.from_document(job, after["lease"])

    def release(self, lease: Lease) -> bool:
        """Give the lease back; returns False when it was no longer ``lease.holder``'s."""
        after = self.store.update(
            "job",
            {"uuid": _job(lease.job_uuid), "lease.holder": lease.holder},
            {"$set": {"lease": None}},
            projection={"uuid": 1},
        )
        return after is not None

    def get(self, job_uuid: str | uuidlib.UUID) -> Lease | None:
        """The job's lease as stored (it may have lapsed), or None when it is free.

        Raises:
            NotFoundError: No such job (or it is deleted).
        """
        job = _job(job_uuid)
        found = self.store.find(
            "job", {"uuid": job, "_visible": True}, projection={"uuid": 1, "lease": 1}
        )
        if not found:
            raise NotFoundError(f"job {job} not found", job=job)
        stored = found[0].get("lease")
        return Lease.from_document(job, stored) if stored else None

    # -- internals --------------------------------------------------------------------------

    def _lost(self, lease: Lease) -> LeaseLostError:
        try:
            now = self.get(lease.job_uuid)
        except NotFoundError:
            return LeaseLostError(
                f"job {lease.job_uuid} is gone; {lease.holder} no longer holds its lease",
                job=str(lease.job_uuid),
                holder=lease.holder,
            )
        who = f"it is held by {_describe(now)}" if now is not None else "it is free"
        return LeaseLostError(
            f"{lease.holder} no longer holds the lease of job {lease.job_uuid}: {who}",
            job=str(lease.job_uuid),
            holder=lease.holder,
            current=now.holder if now is not None else None,
        )

    def _record_takeover(self, lease: Lease) -> None:
        taken = dict(lease.taken_over or {})
        data = {
            "lease": {
                "taken_over_from": {
                    k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in taken.items()
                },
                "holder": lease.holder,
                "kind": lease.kind,
                "host": lease.host,
                "pid": lease.pid,
            }
        }
        # A job that has ended takes no more events; the takeover stays on the lease.
        with suppress(InvalidTransitionError, PayloadTooLargeError):
            self.events.send(str(lease.job_uuid), "update", data=data)


class HeartbeatScheduler:
    """Renews the leases of any number of heartbeats from one long-lived thread.

    The scheduler's thread keeps the heartbeats in order of their next renewal and, when
    one is due, hands its renewal to a reused worker thread (:class:`~datacatalog.threads.
    Workers`), so a renewal that waits on an unreachable database delays no other. A
    heartbeat costs no thread of its own: starting and stopping one is a few list
    operations, which matters to a stage driver that runs a short job after another.

    :data:`HEARTBEATS` is the process's scheduler; its thread starts with the first
    heartbeat and lasts as long as the process (a daemon, idle while nothing is due).

    Args:
        clock: Monotonic seconds the renewals are scheduled on (default ``time.monotonic``).
        submit: Runs a renewal (default: on a reused worker thread). With ``threaded=False``
            nothing runs by itself: :meth:`tick` renews what is due (tests drive it with
            an injected ``clock`` and ``submit=lambda renewal: renewal()``).
        threaded: Run the scheduler's own thread.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        submit: Callable[[Callable[[], None]], None] | None = None,
        threaded: bool = True,
    ) -> None:
        self._clock = clock or time.monotonic
        self._submit = submit or _RENEWALS.submit
        self._threaded = threaded
        self._changed = threading.Condition()
        self._due: list[tuple[float, int, Heartbeat]] = []  # a heap
        self._numbers = itertools.count()
        self._thread: threading.Thread | None = None
        if threaded and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_thread)

    def add(self, beat: Heartbeat) -> None:
        """Renew ``beat``'s lease every ``beat.interval`` seconds until it is stopped."""
        with self._changed:
            self._push(beat)
            if self._threaded and self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="datacatalog-lease-heartbeats", daemon=True
                )
                self._thread.start()
            elif self._due[0][2] is beat:  # due before anything the thread waits for
                self._changed.notify()

    def tick(self) -> float | None:
        """Hand every renewal due by now to ``submit``; return when the next one is due
        (on the scheduler's clock), or None when no heartbeat is running."""
        with self._changed:
            due = self._pop_due(self._clock())
        for beat in due:
            self._submit(beat._beat)
        with self._changed:
            return self._due[0][0] if self._due else None

    def _push(self, beat: Heartbeat) -> None:
        heapq.heappush(self._due, (self._clock() + beat.interval, next(self._numbers), beat))

    def _pop_due(self, now: float) -> list[Heartbeat]:
        due = []
        while self._due and self._due[0][0] <= now:
            _when, _number, beat = heapq.heappop(self._due)
            if beat._claim():  # stopped heartbeats are dropped here
                due.append(beat)
        return due

    def _reschedule(self, beat: Heartbeat) -> None:
        """After a renewal: the next one ``interval`` from now, unless it was stopped."""
        with self._changed:
            if beat._release():
                self._push(beat)
                if self._due[0][2] is beat:
                    self._changed.notify()

    def _run(self) -> None:
        while True:
            self.tick()
            with self._changed:  # looked at again: a heartbeat may have come meanwhile
                if self._due:
                    self._changed.wait(max(0.0, self._due[0][0] - self._clock()))
                else:
                    self._changed.wait()

    def _forget_thread(self) -> None:
        """In a forked child: the parent's thread and heartbeats are not there."""
        self._changed = threading.Condition()
        self._due = []
        self._thread = None


class Heartbeat(StartStop):
    """Renews a lease, well inside its ttl, while the block runs.

    ::

        with Heartbeat(leases, lease) as beat:
            ...                     # beat.lease is the latest renewal
            if beat.lost: ...       # the lease was taken over: stop working

    The renewals run on the process's shared :class:`HeartbeatScheduler` (no thread per
    heartbeat). A renewal that fails because the database is unreachable is tried again at
    the next beat (the lease lapses only if the outage outlasts the ttl). A lost lease stops
    the heartbeat and calls ``on_lost``.

    Args:
        leases: The lease service.
        lease: The lease to keep.
        interval: Seconds between renewals (default: a third of the lease's ttl).
        on_lost: Called once, on the thread that ran the renewal, when the lease is lost.
        clock: Monotonic seconds (default ``time.monotonic``): :attr:`renewed_at` is read
            on it.
        scheduler: What runs the renewals (default :data:`HEARTBEATS`).
    """

    def __init__(
        self,
        leases: LeaseService,
        lease: Lease,
        *,
        interval: float | None = None,
        on_lost: Callable[[LeaseLostError], None] | None = None,
        clock: Callable[[], float] | None = None,
        scheduler: HeartbeatScheduler | None = None,
    ) -> None:
        self.leases = leases
        self.interval = lease.ttl / 3 if interval is None else float(interval)
        if not self.interval > 0:
            raise InvalidRequestError(f"a heartbeat interval must be positive, not {interval!r}")
        self.on_lost = on_lost
        self.lost: LeaseLostError | None = None
        self.last_error: DataCatalogError | None = None
        self.renewals = 0
        self._lease = lease
        self._scheduler = scheduler or HEARTBEATS
        # _started, _stopped and _renewing change under _state.
        self._state = threading.Condition()
        self._started = False
        self._stopped = False
        self._renewing = False
        self._renewer: int | None = None
        self._clock = clock or time.monotonic
        # When the lease was last known good, on this host's clock: it lasts until
        # renewed_at + ttl at least (the heartbeat starts on a lease just taken).
        self.renewed_at = self._clock()

    @property
    def lease(self) -> Lease:
        """The lease as last renewed."""
        with self._state:
            return self._lease

    @property
    def stopped(self) -> bool:
        """True once stopped (by :meth:`stop`, or a lost lease)."""
        with self._state:
            return self._stopped

    def start(self) -> Heartbeat:
        """Start renewing (once)."""
        with self._state:
            if self._started or self._stopped:
                return self
            self._started = True
        self._scheduler.add(self)
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop renewing; wait (up to ``timeout`` seconds) for a renewal under way to end."""
        with self._state:
            self._stopped = True
            if self._renewer != threading.get_ident():
                self._state.wait_for(lambda: not self._renewing, timeout)

    def _claim(self) -> bool:
        """The scheduler's: True when a renewal may begin (not stopped)."""
        with self._state:
            if self._stopped:
                return False
            self._renewing = True
            return True

    def _release(self) -> bool:
        """The scheduler's: a renewal ended; True when the heartbeat goes on."""
        with self._state:
            self._renewing = False
            self._renewer = None
            self._state.notify_all()
            return not self._stopped

    def _beat(self) -> None:
        """One renewal (on the thread ``submit`` runs it on), then the next one scheduled."""
        with self._state:
            self._renewer = threading.get_ident()
        try:
            self._renew()
        finally:
            self._scheduler._reschedule(self)

    def _renew(self) -> None:
        sent = self._clock()  # the renewal counts from no later than this
        try:
            renewed = self.leases.renew(self.lease)
        except LeaseLostError as exc:
            with self._state:
                self.lost = exc
                self._stopped = True
            if self.on_lost is not None:
                self.on_lost(exc)
            return
        except DataCatalogError as exc:
            self.last_error = exc  # unreachable for now: try again at the next beat
            return
        with self._state:
            self._lease = renewed
            self.renewals += 1
            self.renewed_at = sent


_RENEWALS = Workers("datacatalog-lease-renewal", limit=4)
HEARTBEATS = HeartbeatScheduler()


def _job(job_uuid: Any) -> str:
    text = str(job_uuid) if isinstance(job_uuid, uuidlib.UUID) else job_uuid
    if not isinstance(text, str):
        raise InvalidRequestError(f"a job UUID must be a string or uuid.UUID, not {job_uuid!r}")
    return require_kind(text, "pipelinejob", what="job")


def _holder(holder: Any) -> str:
    if not isinstance(holder, str) or not 0 < len(holder) <= 200:
        raise InvalidRequestError(
            f"a lease holder must be a string of 1-200 characters, not {holder!r}"
        )
    return holder


def _ttl(ttl: Any) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl <= MAX_TTL:
        raise InvalidRequestError(
            f"a lease ttl must be a number of seconds within (0, {MAX_TTL:g}], not {ttl!r}"
        )
    return float(ttl)


def held_elsewhere(job: str, lease: Lease) -> ActiveExecutionsError:
    """The error for ``job`` held by ``lease`` (another holder's), naming the holder."""
    return ActiveExecutionsError(
        f"job {job} has an active execution: {_describe(lease)}",
        job=job,
        holder=lease.holder,
        kind=lease.kind,
        host=lease.host,
        pid=lease.pid,
        expires=lease.expires.isoformat(),
    )


def _describe(lease: Lease) -> str:
    return (
        f"{lease.kind} {lease.holder} on {lease.host} (pid {lease.pid}), "
        f"lease expires {lease.expires.isoformat()}"
    )


def lease_expressions(
    holder: str, kind: str, seconds: float, *, host: str | None = None, pid: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A lease taken by ``holder`` as an update-pipeline expression (server dates; its
    ``since`` kept when the holder renews, the previous holder recorded on a takeover) and
    as an example value to validate in its place. ``host`` and ``pid`` default to this
    process's."""
    host = socket.gethostname() if host is None else host
    pid = os.getpid() if pid is None else pid
    current = "$lease.holder"
    mine = {"$eq": [{"$ifNull": [current, None]}, {"$literal": holder}]}
    other = {
        "$and": [
            {"$ne": [{"$ifNull": [current, None]}, None]},
            {"$ne": [current, {"$literal": holder}]},
        ]
    }
    previous = {f: f"$lease.{f}" for f in _TAKEOVER_FIELDS}
    expression = {
        "holder": {"$literal": holder},
        "kind": {"$literal": kind},
        "host": {"$literal": host},
        "pid": {"$literal": pid},
        "ttl": {"$literal": seconds},
        "since": {"$cond": [mine, "$lease.since", SERVER_NOW]},
        "renewed": SERVER_NOW,
        "expires": {"$add": [SERVER_NOW, round(seconds * 1000)]},
        "taken_over": {"$cond": [other, previous, None]},
    }
    now = utc_now()  # stands for the server's dates when the fragment is validated
    example = {
        "holder": holder,
        "kind": kind,
        "host": host,
        "pid": pid,
        "ttl": seconds,
        "since": now,
        "renewed": now,
        "expires": now,
        "taken_over": None,
    }
    return expression, example
