"""What the job and file pages work out from stored documents (no queries here).

* the events a job may be sent next, with what each does;
* who holds a running job: the lease when one is recorded, else whoever sent ``run``;
* the last verify result, which :meth:`IndexingService.verify` records in the history as
  an ``update`` event carrying ``verify`` counts;
* where a file is stored: its storage system's root URL joined with its catalog path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from datacatalog import states
from datacatalog.clock import as_utc
from datacatalog.jobs import HistoryEntry

MAX_TIMELINE = 1000
"""Most history entries a job page shows (the newest); the API has the whole history."""


@dataclass(frozen=True)
class NextEvent:
    """An event the job may be sent from its state."""

    name: str
    target: str | None
    description: str
    admin: bool


@dataclass(frozen=True)
class Holder:
    """Who is running a job, and since when."""

    source: str  # "lease" or "run event"
    fields: dict[str, Any]
    since: datetime | None
    lapsed: bool = False  # the lease expired without being renewed (its holder may be gone)


@dataclass(frozen=True)
class VerifyResult:
    """The counts of the job's last verify run."""

    date: datetime
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        """True when no file changed or went missing."""
        return not self.counts.get("changed") and not self.counts.get("missing")


def next_events(state: str) -> list[NextEvent]:
    """The events allowed from ``state``, in the table's order."""
    return [
        NextEvent(
            name=name,
            target=states.TRANSITIONS[name].target,
            description=states.TRANSITIONS[name].description,
            admin=states.TRANSITIONS[name].admin,
        )
        for name in states.allowed_events(state)
    ]


def holder(
    document: Mapping[str, Any], history: Sequence[HistoryEntry], *, now: datetime
) -> Holder | None:
    """Who holds the job (None when nobody does and it is not running).

    A recorded ``lease`` (the job's ``lease`` field: holder, kind, host, pid, since,
    expires, ...) is shown as it is, marked lapsed once ``expires`` is before ``now``;
    without one, the sender of the latest ``run`` event of a running job is the holder.
    """
    lease = document.get("lease")
    if isinstance(lease, Mapping) and lease:
        since, expires = lease.get("since"), lease.get("expires")
        return Holder(
            source="lease",
            fields={str(k): v for k, v in lease.items()},
            since=since if isinstance(since, datetime) else None,
            lapsed=isinstance(expires, datetime) and as_utc(expires) < as_utc(now),
        )
    if document.get("state") != "RUNNING":
        return None
    for entry in reversed(history):
        if entry.name == "run":
            who = {"agent": entry.agent, "host": entry.host, "pid": entry.pid}
            return Holder(
                source="run event",
                fields={k: v for k, v in who.items() if v is not None},
                since=entry.date,
            )
    return None


def last_verify(history: Sequence[HistoryEntry]) -> VerifyResult | None:
    """The latest verify counts recorded in ``history``, if any."""
    for entry in reversed(history):
        counts = entry.data.get("verify") if entry.name == "update" else None
        if isinstance(counts, Mapping) and all(isinstance(v, int) for v in counts.values()):
            return VerifyResult(date=entry.date, counts={str(k): v for k, v in counts.items()})
    return None


def timeline(history: Sequence[HistoryEntry]) -> tuple[list[HistoryEntry], int]:
    """The newest :data:`MAX_TIMELINE` entries, oldest first, and how many were left out."""
    left_out = max(0, len(history) - MAX_TIMELINE)
    return list(history[left_out:]), left_out


def location(url: str | None, name: str) -> str | None:
    """Where the catalog path ``name`` is on a system rooted at ``url`` (password hidden)."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        user = f"{parts.username}:***@" if parts.username else "***@"
        port = f":{parts.port}" if parts.port else ""
        parts = parts._replace(netloc=f"{user}{host}{port}")
    return urlunsplit(parts).rstrip("/") + name


def relative_name(archive_path: str, name: str) -> str:
    """A file's name relative to the job's archive path (the whole name elsewhere)."""
    prefix = archive_path.rstrip("/") + "/"
    return name[len(prefix) :] if name.startswith(prefix) else name
