"""Running a job again: the one decision every entry point takes before it runs a job.

A job's identity is its computation, so running the same computation again finds the
same job. What happens then depends on the job, and is decided here once for the stage
driver, ``datacatalog run``, the compatibility API and the workflow runner:

=========================================  ==============  ==========================
the job is                                 outcome         event that begins the run
=========================================  ==============  ==========================
new, or CREATED                            ``RUN``         ``run``
RUNNING, no lease or the caller's own      ``RUN``         ``run``
RUNNING, its holder's lease lapsed         ``TAKE_OVER``   ``run``
RUNNING (or any state), leased by another  ``HELD``        —
  live holder
FAILED (its last execution failed or was   ``RERUN``       ``retry``
  cancelled)
FINISHED, VALIDATED, REJECTED, FINALIZED   ``UP_TO_DATE``  — (``reuse`` records it)
  and the indexed outputs verify
the same, outputs missing or changed       ``STALE``       — (``if_stale="rerun"``:
                                                           ``RERUN``, ``rerun``)
forced (any state that ran)                ``RERUN``       ``retry`` / ``rerun``
INDEXING or VALIDATING, not forced         ``REFUSED``     —
RETIRED, RESET, deleted (even forced)      ``REFUSED``     —
=========================================  ==============  ==========================

"Verify" is the indexed SHA-256 fixity (:func:`datacatalog.indexing.verify.compare_files`):
every indexed file with a recorded checksum is hashed again; ``verify="size"`` compares
sizes only and the :class:`Verification` says so. A job that ran without indexing its
outputs has nothing to verify: it is up to date with 0 files verified, and says that.

A caller that runs jobs does::

    decision = decide(catalog, job_uuid, holder=my_id, force=..., if_stale=...)
    if not decision.runs:
        ...                        # up to date (record_up_to_date), or decision.error()
    lease = catalog.leases.acquire(job_uuid, holder=my_id, kind="driver")
    decision = decide(catalog, job_uuid, holder=my_id, ...)   # again, under the lease
    job = begin(catalog, decision, token=token, data={"driver": my_id})

Deciding writes nothing. The second decision, under the lease, sees what another
execution did meanwhile (it may have finished the job: then it is up to date). The
event :func:`begin` sends is one atomic conditional update, so a job can still never
run twice at once nor leave a state the table does not allow; ``retry`` and ``rerun``
supersede the earlier file records and clear the archive directory
(:mod:`datacatalog.jobs.leftovers`).

Who may: the holder of the job token (the agent that made the job, or anyone it handed
the token to) runs, retries and forces its job, as it sends every other event of its
life-cycle; in-process callers that created the job need no token. ``reset`` and
``ready`` stay the administrator's.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from datacatalog import states, tokens
from datacatalog.clock import utc_now
from datacatalog.errors import (
    ActiveExecutionsError,
    DataCatalogError,
    InvalidRequestError,
    InvalidTransitionError,
    PayloadTooLargeError,
    StaleOutputsError,
)
from datacatalog.identifiers import require_kind
from datacatalog.jobs.model import Job, Lease

if TYPE_CHECKING:
    from datacatalog.catalog import Catalog

__all__ = [
    "IF_STALE",
    "VERIFY_MODES",
    "Decision",
    "Outcome",
    "Verification",
    "begin",
    "check_options",
    "decide",
    "event_data",
    "record_up_to_date",
]

IF_STALE = ("error", "rerun")
"""What a stale job does: refuse naming its files (``error``) or run again (``rerun``)."""

VERIFY_MODES = ("sha256", "size")
"""How outputs are verified: hashed again (``sha256``) or sizes compared (``size``)."""

MAX_NAMED = 20  # files named in a message; the Verification keeps them all


class Outcome(enum.Enum):
    """What a request to run a job comes to."""

    RUN = "run"
    TAKE_OVER = "take_over"
    RERUN = "rerun"
    UP_TO_DATE = "up_to_date"
    STALE = "stale"
    HELD = "held"
    REFUSED = "refused"


_RUNS = frozenset({Outcome.RUN, Outcome.TAKE_OVER, Outcome.RERUN})


@dataclass(frozen=True)
class Verification:
    """What an up-to-date check verified.

    Attributes:
        mode: ``sha256`` (files with a recorded checksum hashed again) or ``size``.
        files: Indexed files checked.
        hashed: Files whose SHA-256 was computed again and matched.
        by_size: Files compared by size only (no recorded checksum, or ``mode="size"``).
        missing: Names of indexed files gone from storage.
        changed: Names of indexed files whose content (or size) differs.
        finished: When the job's last execution finished, when known.
    """

    mode: str
    files: int
    hashed: int
    by_size: int
    missing: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    finished: datetime | None = None

    @property
    def ok(self) -> bool:
        """True when no indexed file is missing or changed."""
        return not self.missing and not self.changed

    def summary(self) -> str:
        """What was verified, in a few words (``3 files verified by sha256``)."""
        if self.files == 0:
            return "no indexed files to verify"
        parts = []
        if self.hashed:
            parts.append(f"{self.hashed} by sha256")
        if self.by_size:
            parts.append(f"{self.by_size} by size only")
        verified = self.hashed + self.by_size
        noun = "file" if verified == 1 else "files"
        text = f"{verified} {noun} verified" + (f" ({', '.join(parts)})" if parts else "")
        if not self.ok:
            text += f"; {_named(self.missing, self.changed)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "mode": self.mode,
            "files": self.files,
            "hashed": self.hashed,
            "by_size": self.by_size,
            "missing": list(self.missing),
            "changed": list(self.changed),
            "finished": self.finished.isoformat() if self.finished else None,
        }


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide`.

    Attributes:
        outcome: What the request comes to.
        job: The job as read.
        message: One line saying so (the command line prints it).
        event: The event :func:`begin` sends (``run``, ``retry``, ``rerun``) when the job
            runs; None otherwise.
        reason: Why it runs again (``failed``, ``forced``, ``stale``); for a refusal,
            what refused it (the state, or ``deleted``); else None.
        verification: What was verified (up to date, stale, or a stale job run again).
        lease: The live holder's lease (HELD) or the lapsed one taken over (TAKE_OVER).
    """

    outcome: Outcome
    job: Job
    message: str
    event: str | None = None
    reason: str | None = None
    verification: Verification | None = None
    lease: Lease | None = None

    @property
    def runs(self) -> bool:
        """Whether the job is to run (RUN, TAKE_OVER, RERUN)."""
        return self.outcome in _RUNS

    @property
    def up_to_date(self) -> bool:
        """Whether the job is up to date: nothing is to run."""
        return self.outcome is Outcome.UP_TO_DATE

    def error(self) -> DataCatalogError | None:
        """The error for HELD (exit 9), REFUSED (exit 4) and STALE (exit 10); else None."""
        job = self.job.uuid
        if self.outcome is Outcome.HELD:
            lease = self.lease
            return ActiveExecutionsError(
                self.message,
                job=job,
                holder=lease.holder if lease else None,
                kind=lease.kind if lease else None,
                host=lease.host if lease else None,
                pid=lease.pid if lease else None,
                expires=lease.expires.isoformat() if lease else None,
            )
        if self.outcome is Outcome.REFUSED:
            return InvalidTransitionError(
                self.message, job=job, state=self.job.state, reason=self.reason
            )
        if self.outcome is Outcome.STALE:
            verification = self.verification
            return StaleOutputsError(
                self.message,
                job=job,
                missing=list(verification.missing) if verification else [],
                changed=list(verification.changed) if verification else [],
            )
        return None

    def raise_for_outcome(self) -> None:
        """Raise :meth:`error` when there is one."""
        error = self.error()
        if error is not None:
            raise error

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "outcome": self.outcome.value,
            "job": self.job.uuid,
            "state": self.job.state,
            "message": self.message,
            "event": self.event,
            "reason": self.reason,
            "up_to_date": self.up_to_date,
            "verification": self.verification.to_dict() if self.verification else None,
            "lease": self.lease.to_dict() if self.lease else None,
        }


def decide(
    catalog: Catalog,
    job: str | Job,
    *,
    holder: str | None = None,
    token: str | None = None,
    force: bool = False,
    if_stale: str = "error",
    verify: str = "sha256",
    hash_workers: int | None = None,
    current: Job | None = None,
) -> Decision:
    """Decide what a request to run ``job`` comes to (see the module docstring).

    Reads the job (with its history and file records, when it ran and is to be verified);
    writes nothing.

    Args:
        catalog: The catalog.
        job: The job, or its UUID.
        holder: The caller's lease holder id: its own lease does not hold the job.
        token: The job token; checked when given.
        force: Run again whatever the outputs (not a RETIRED, RESET or deleted job, nor
            one a live execution holds).
        if_stale: ``error`` (STALE) or ``rerun`` (RERUN) when the outputs do not verify.
        verify: ``sha256`` or ``size`` (see :data:`VERIFY_MODES`).
        hash_workers: Threads hashing files (default: the indexing default).
        current: The job as the caller has just read it (deleted ones included), to
            decide on without reading it again; the write that follows is conditional
            on what was decided, so a job changed since fails that write, not silently.

    Raises:
        InvalidRequestError: A bad UUID or option.
        NotFoundError: No such job (a deleted one is REFUSED, not unknown).
        ForbiddenError: ``token`` is not the job's.
        StorageFailureError: The archive path cannot be listed to verify it.
    """
    check_options(force=force, if_stale=if_stale, verify=verify)
    uuid = job.uuid if isinstance(job, Job) else require_kind(job, "pipelinejob", what="job")
    if token is not None:
        tokens.check_job_token(catalog.jobs.secret, uuid, token)
    if current is None or current.uuid != uuid:
        current = catalog.jobs.get(uuid, include_deleted=True)
    decision = _parked(current) or _by_state(current, holder=holder, force=force)
    if decision is not None:
        return decision
    return _by_outputs(
        catalog, current, if_stale=if_stale, verify=verify, hash_workers=hash_workers
    )


def check_options(*, force: Any, if_stale: Any, verify: Any) -> None:
    """Refuse rerun options that :func:`decide` does not know."""
    if not isinstance(force, bool):
        raise InvalidRequestError(f"force must be True or False, not {force!r}")
    if if_stale not in IF_STALE:
        raise InvalidRequestError(
            f"if_stale must be one of {', '.join(IF_STALE)}, not {if_stale!r}"
        )
    if verify not in VERIFY_MODES:
        raise InvalidRequestError(
            f"verify must be one of {', '.join(VERIFY_MODES)}, not {verify!r}"
        )


_PARKED_STATES = {
    "RETIRED": "is RETIRED: kept for the record only, it does not run again; an "
    "administrator's reset and ready (datacatalog admin reset, ready) re-arm it",
    "RESET": "is RESET: an administrator's ready (datacatalog admin ready) makes it CREATED, "
    "and then it runs",
}


def _parked(current: Job) -> Decision | None:
    """REFUSED for a deleted, RETIRED or RESET job, whatever else holds; else None."""
    if not current.visible:
        return _refused(
            current,
            "deleted",
            "is deleted; an administrator's undelete (datacatalog admin undelete) restores it",
        )
    if current.state in _PARKED_STATES:
        return _refused(current, current.state, _PARKED_STATES[current.state])
    return None


def _by_state(current: Job, *, holder: str | None, force: bool) -> Decision | None:
    """What the lease and the state decide without looking at the outputs; None when the
    outputs are to be verified."""
    uuid, state, lease = current.uuid, current.state, current.lease
    if lease is not None and lease.holder != holder and lease.expires > utc_now():
        return Decision(
            Outcome.HELD,
            current,
            f"job {uuid} has an active execution: {lease.kind} {lease.holder} on "
            f"{lease.host} (pid {lease.pid}), lease expires {lease.expires.isoformat()}",
            lease=lease,
        )
    lapsed = lease if lease is not None and lease.holder != holder else None
    if state == "CREATED":
        return Decision(Outcome.RUN, current, f"job {uuid} is CREATED: it runs", event="run")
    if state == "RUNNING":
        if lapsed is not None:
            return Decision(
                Outcome.TAKE_OVER,
                current,
                f"job {uuid} is RUNNING but {lapsed.kind} {lapsed.holder} stopped renewing "
                f"its lease (it lapsed at {lapsed.expires.isoformat()}): taken over",
                event="run",
                lease=lapsed,
            )
        return Decision(Outcome.RUN, current, f"job {uuid} is RUNNING: it runs", event="run")
    if state == "FAILED":
        return Decision(
            Outcome.RERUN,
            current,
            f"job {uuid} FAILED: it runs again as a new execution (what the failed run "
            "left in its archive directory is cleared first)",
            event="retry",
            reason="forced" if force else "failed",
        )
    if force:
        return Decision(
            Outcome.RERUN,
            current,
            f"job {uuid} is {state}: forced to run again as a new execution (its earlier "
            "file records are superseded, its archive directory cleared)",
            event="rerun",
            reason="forced",
        )
    if state not in states.UP_TO_DATE_STATES:  # INDEXING, VALIDATING
        todo = (
            "index it (datacatalog jobs index --transition) to finish"
            if state == "INDEXING"
            else "send validated or reject to finish"
        )
        return _refused(
            current,
            state,
            f"is {state}: its outputs are being handled, or that stopped half-way; "
            f"{todo}, or force a new run (--force, force=True)",
        )
    return None


def _by_outputs(
    catalog: Catalog, current: Job, *, if_stale: str, verify: str, hash_workers: int | None
) -> Decision:
    """UP_TO_DATE, RERUN or STALE, by verifying the outputs of a finished job."""
    uuid, state = current.uuid, current.state
    verification = verify_outputs(catalog, current, mode=verify, hash_workers=hash_workers)
    when = f", finished {_date(verification.finished)}" if verification.finished else ""
    if verification.ok:
        return Decision(
            Outcome.UP_TO_DATE,
            current,
            f"job {uuid} is up to date ({state}{when}; {verification.summary()}): nothing ran",
            verification=verification,
        )
    named = _named(verification.missing, verification.changed)
    if if_stale == "rerun":
        return Decision(
            Outcome.RERUN,
            current,
            f"job {uuid} is stale ({named}): it runs again as a new execution",
            event="rerun",
            reason="stale",
            verification=verification,
        )
    return Decision(
        Outcome.STALE,
        current,
        f"job {uuid} is {state} but its outputs no longer verify: {named}; run it again "
        "with --rerun-stale (if_stale='rerun')",
        reason="stale",
        verification=verification,
    )


def verify_outputs(
    catalog: Catalog, job: Job, *, mode: str = "sha256", hash_workers: int | None = None
) -> Verification:
    """Compare the job's indexed files with their records (writes nothing)."""
    from datacatalog.indexing.fixity import DEFAULT_HASH_WORKERS
    from datacatalog.indexing.verify import compare_files

    records, outcome = compare_files(
        catalog.store,
        catalog.jobs.storage,
        job,
        mode=mode,
        hash_workers=DEFAULT_HASH_WORKERS if hash_workers is None else hash_workers,
    )
    names = {r.uuid: r.name for r in records}
    finished = None
    for execution in reversed(catalog.jobs.executions(job.uuid)):
        if execution.outcome == "finished":
            finished = execution.ended
            break
    return Verification(
        mode=mode,
        files=len(records),
        hashed=len(outcome["unchanged"]),
        by_size=len(outcome["unhashed"]),
        missing=tuple(names[u] for u in outcome["missing"]),
        changed=tuple(names[u] for u in outcome["changed"]),
        finished=finished,
    )


def begin(
    catalog: Catalog,
    decision: Decision,
    *,
    token: str | None = None,
    data: Mapping[str, Any] | None = None,
    leftovers: str = "clear",
    event_id: str | None = None,
) -> Job:
    """Send the event that begins the run ``decision`` calls for; return the job after it.

    ``run`` for RUN and TAKE_OVER; ``retry`` or ``rerun`` for RERUN, with ``reason`` and
    ``leftovers`` (``clear``, the default, or ``keep``: see
    :mod:`datacatalog.jobs.leftovers`) added to ``data``. One atomic conditional update.

    Raises:
        InvalidRequestError: The decision does not run the job.
        InvalidTransitionError: The job's state changed since the decision.
    """
    result = catalog.jobs.send(
        decision.job.uuid,
        _event_of(decision),
        data=event_data(decision, data, leftovers=leftovers),
        token=token,
        event_id=event_id,
    )
    return result.job


def event_data(
    decision: Decision, data: Mapping[str, Any] | None = None, *, leftovers: str = "clear"
) -> dict[str, Any]:
    """The data of the event that begins the run ``decision`` calls for: ``data``, plus
    for ``retry``/``rerun`` its ``reason``, ``leftovers`` and the stale files (for a
    runner that sends the event itself, as :func:`begin` does)."""
    _event_of(decision)
    body = dict(data or {})
    if decision.event != "run":
        body.update({"reason": decision.reason, "leftovers": leftovers})
        if decision.verification is not None and not decision.verification.ok:
            body["stale"] = {
                "missing": list(decision.verification.missing[:MAX_NAMED]),
                "changed": list(decision.verification.changed[:MAX_NAMED]),
            }
    return body


def _event_of(decision: Decision) -> str:
    if not decision.runs or decision.event is None:
        raise InvalidRequestError(
            f"job {decision.job.uuid} is not to run ({decision.outcome.value}): {decision.message}"
        )
    return decision.event


def record_up_to_date(
    catalog: Catalog,
    decision: Decision,
    *,
    token: str | None = None,
    holder: str | None = None,
    event_id: str | None = None,
) -> bool:
    """Record an up-to-date check in the job's history (a ``reuse`` event); the state
    stays as it is. Returns whether it was recorded: a full history, or a job whose state
    changed meanwhile, records nothing (the check stands). ``event_id`` keys the event
    (an execution's own check: safe to send again)."""
    if not decision.up_to_date:
        raise InvalidRequestError(f"job {decision.job.uuid} is not up to date")
    data: dict[str, Any] = {
        "verified": decision.verification.to_dict() if decision.verification else {}
    }
    if holder is not None:
        data["holder"] = holder
    with suppress(PayloadTooLargeError, InvalidTransitionError):
        catalog.jobs.send(decision.job.uuid, "reuse", data=data, token=token, event_id=event_id)
        return True
    return False


def _refused(job: Job, reason: str, text: str) -> Decision:
    return Decision(Outcome.REFUSED, job, f"job {job.uuid} {text}", reason=reason)


def _named(missing: tuple[str, ...], changed: tuple[str, ...]) -> str:
    parts = []
    for label, names in (("missing", missing), ("changed", changed)):
        if names:
            shown = ", ".join(names[:MAX_NAMED])
            more = f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
            parts.append(f"{label}: {shown}{more}")
    return "; ".join(parts)


def _date(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")
