"""A job's executions: each attempt at its computation, read from its history.

A job is one computation (pipeline, metadata, parameters); an *execution* is one run of
it. The history says where each begins and ends:

* ``run`` from CREATED begins an execution; ``run`` while one is open continues it (a
  resent event, or a lapsed lease taken over: the new holder is recorded);
* ``retry`` (a FAILED job run again) and ``rerun`` (a forced or stale one) begin a new
  execution, and so does the first ``run`` after an administrator's ``reset``/``ready``;
* ``finish`` ends it ``finished``; ``fail`` ends it ``failed`` with the reason the runner
  recorded (``cancelled``, ``timeout``, an exit code ...), also after ``finish`` when the
  outputs could not be indexed; ``reset`` ends an open one ``reset``;
* ``reuse`` is a run that found the outputs up to date: listed (outcome ``up_to_date``),
  though nothing ran, so it has no run id.

Execution ``n`` (0 first) has the OpenLineage run id :func:`run_id`, the one the lineage
events of that execution carry (:mod:`datacatalog.provenance.openlineage`).
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from datacatalog.jobs.model import HistoryEntry

__all__ = ["BEGINS", "Execution", "executions", "run_id"]

BEGINS = ("retry", "rerun")
"""Events that always begin a new execution (``run`` does when none is open)."""


# What a retry or rerun entry says about the files before it (datacatalog.jobs.leftovers).
_BEGIN_DETAILS = ("leftovers", "superseded", "cleared", "stale")


def run_id(job_uuid: str, execution: int) -> str:
    """The run id of execution ``execution`` (0 first) of a job: the job UUID for the
    first, a UUID5 of it for every later one."""
    if execution == 0:
        return job_uuid
    return str(uuidlib.uuid5(uuidlib.UUID(job_uuid), f"execution-{execution}"))


@dataclass(frozen=True)
class Execution:
    """One execution of a job (or, with outcome ``up_to_date``, a run that found nothing
    to do).

    Attributes:
        number: 0 for the first execution, then 1, 2 ...; None for an up-to-date check.
        run_id: The execution's run id (:func:`run_id`); None for an up-to-date check.
        began_with: The event that began it: ``run``, ``retry``, ``rerun`` (or ``reuse``).
        started: When it began.
        ended: When it ended; None while it runs.
        outcome: ``running``, ``finished``, ``failed``, ``reset`` or ``up_to_date``.
        reason: Why it failed (the ``fail`` event's ``reason``), or why it began
            (``forced``, ``stale``, ``failed``) for a re-run; None otherwise.
        holder: Who ran it: the driver or workflow execution id, else the agent.
        host: The host it ran on.
        pid: The process id.
        taken_over_from: Holders whose lapsed lease this execution took over.
        details: What the beginning (or the check) recorded besides: the files a re-run
            superseded or cleared, the files an up-to-date check verified.
    """

    number: int | None
    run_id: str | None
    began_with: str
    started: datetime
    ended: datetime | None
    outcome: str
    reason: str | None = None
    holder: str | None = None
    host: str | None = None
    pid: int | None = None
    taken_over_from: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "number": self.number,
            "run_id": self.run_id,
            "began_with": self.began_with,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat() if self.ended else None,
            "outcome": self.outcome,
            "reason": self.reason,
            "holder": self.holder,
            "host": self.host,
            "pid": self.pid,
            "taken_over_from": list(self.taken_over_from),
            "details": self.details,
        }


def executions(job_uuid: str, history: Iterable[HistoryEntry]) -> list[Execution]:
    """The job's executions and up-to-date checks, in the order they began."""
    found: list[Execution] = []
    open_at: int | None = None  # index in ``found`` of the execution still open
    last_run: int | None = None  # index of the last execution (open or ended)
    count = 0
    for entry in history:
        name = entry.name
        if name == "run" and open_at is not None:
            current = found[open_at]
            holder = _holder(entry)
            if holder is not None and current.holder is not None and holder != current.holder:
                found[open_at] = replace(
                    current,
                    holder=holder,
                    host=entry.host,
                    pid=entry.pid,
                    taken_over_from=(*current.taken_over_from, current.holder),
                )
            continue
        if name == "run" or name in BEGINS:
            reason = _text(entry.data.get("reason")) if name in BEGINS else None
            details = {k: v for k, v in entry.data.items() if k in _BEGIN_DETAILS}
            found.append(_begun(job_uuid, count, entry, "running", reason=reason, details=details))
            count += 1
            open_at = last_run = len(found) - 1
        elif name == "finish" and open_at is not None:
            found[open_at] = replace(found[open_at], ended=entry.date, outcome="finished")
            open_at = None
        elif name == "fail":
            target = open_at if open_at is not None else last_run
            reason = _text(entry.data.get("reason"))
            if target is None:  # failed before it ever ran: still an execution
                found.append(_begun(job_uuid, count, entry, "failed", reason=reason))
                count += 1
                last_run = len(found) - 1
            else:
                found[target] = replace(
                    found[target], ended=entry.date, outcome="failed", reason=reason
                )
            open_at = None
        elif name == "reset":
            if open_at is not None:
                found[open_at] = replace(found[open_at], ended=entry.date, outcome="reset")
            open_at = last_run = None
        elif name == "reuse":
            verified = dict(entry.data.get("verified") or {})
            found.append(_begun(job_uuid, None, entry, "up_to_date", details=verified))
    return found


def _begun(
    job_uuid: str,
    number: int | None,
    entry: HistoryEntry,
    outcome: str,
    *,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> Execution:
    """The execution (or up-to-date check, ``number`` None) that ``entry`` began: still
    open when ``outcome`` is ``running``, else ended by the same entry."""
    return Execution(
        number=number,
        run_id=None if number is None else run_id(job_uuid, number),
        began_with=entry.name,
        started=entry.date,
        ended=None if outcome == "running" else entry.date,
        outcome=outcome,
        reason=reason,
        holder=_holder(entry),
        host=entry.host,
        pid=entry.pid,
        details={} if details is None else details,
    )


def _holder(entry: HistoryEntry) -> str | None:
    """Who sent the entry: a driver's or workflow execution's id, else the agent."""
    data: Mapping[str, Any] = entry.data
    for key in ("holder", "driver", "execution_id"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return entry.agent


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
