"""What the job and file pages work out from stored documents (no queries here).

* the events a job may be sent next, with what each does;
* who holds a running job: the lease when one is recorded, else whoever sent ``run``;
* the last verify result, which :meth:`IndexingService.verify` records in the history as
  an ``update`` event carrying ``verify`` counts;
* where a file is stored: its storage system's root URL joined with its catalog path;
* why a failed job failed: the reason, phase, attempts, error, exit code and the end of
  the stderr or traceback, from the data of its ``fail`` event (the driver's, the
  workflow runner's or any caller's);
* how long a job took.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from datacatalog import states
from datacatalog.clock import as_utc
from datacatalog.jobs import HistoryEntry

MAX_TIMELINE = 1000
"""Most history entries a job page shows (the newest); the API has the whole history."""

MAX_TAIL_LINES = 20
"""Lines of a failed command's stderr (or of a traceback) shown on the job page."""

MAX_SUMMARY_CHARS = 160
"""Longest one-line failure summary (the jobs list's column and tooltip)."""

# What a person can do next from each event's states, and how. The other events are the
# running pipeline's or the indexer's own (update, resource, finish, fail, indexed).
USER_COMMANDS: dict[str, str] = {
    "run": "datacatalog run --job {uuid} -- COMMAND",
    "retry": "datacatalog run --job {uuid} -- COMMAND",
    "rerun": "datacatalog run --job {uuid} --force -- COMMAND",
    "index": "datacatalog jobs index {uuid} --fixity",
    "validate": "datacatalog jobs event {uuid} validate",
    "validated": "datacatalog jobs event {uuid} validated",
    "reject": "datacatalog jobs event {uuid} reject",
    "finalize": "datacatalog jobs event {uuid} finalize",
    "retire": "datacatalog jobs event {uuid} retire",
    "reset": "datacatalog admin reset {uuid}",
    "ready": "datacatalog admin ready {uuid}",
}
# ``run`` is offered only before the first run: a running job is someone's already.
_USER_SOURCES: dict[str, tuple[str, ...]] = {"run": ("CREATED",)}


@dataclass(frozen=True)
class NextEvent:
    """An event the job may be sent from its state."""

    name: str
    target: str | None
    description: str
    admin: bool
    command: str = ""


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


def next_events(state: str, uuid: str = "UUID") -> list[NextEvent]:
    """What a person can do to a job in ``state``, in the table's order, each with the
    command that does it (for the job ``uuid``). Events only the running pipeline or the
    indexer sends are left out."""
    return [
        NextEvent(
            name=name,
            target=states.TRANSITIONS[name].target,
            description=states.TRANSITIONS[name].description,
            admin=states.TRANSITIONS[name].admin,
            command=USER_COMMANDS[name].format(uuid=uuid),
        )
        for name in states.allowed_events(state)
        if name in USER_COMMANDS and state in _USER_SOURCES.get(name, (state,))
    ]


@dataclass(frozen=True)
class Failure:
    """Why a job failed, from its latest ``fail`` event."""

    date: datetime
    reason: str | None
    phase: str | None
    attempts: int | None
    error: str | None  # "Type: message"
    exit_code: int | None
    tail: str | None  # the end of the stderr, or of the traceback
    tail_kind: str | None  # "stderr" or "traceback"

    @property
    def summary(self) -> str:
        """One line: reason, phase, exit code and error (for lists and tooltips)."""
        parts = [self.reason or "failed"]
        if self.phase:
            parts.append(f"in {self.phase}")
        if self.exit_code is not None:
            parts.append(f"(exit code {self.exit_code})")
        text = " ".join(parts)
        if self.error:
            text += f": {self.error}"
        text = " ".join(text.split())
        if len(text) > MAX_SUMMARY_CHARS:
            text = text[: MAX_SUMMARY_CHARS - 1] + "…"
        return text


def failure(history: Sequence[HistoryEntry]) -> Failure | None:
    """The latest ``fail`` event of ``history`` as a :class:`Failure` (None: none)."""
    for entry in reversed(history):
        if entry.name == "fail":
            return failure_of(entry.date, entry.data)
    return None


def failure_of(date: datetime, data: Mapping[str, Any]) -> Failure:
    """A :class:`Failure` from a ``fail`` event's data, whatever of it was recorded."""
    error = data.get("error")
    record: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
    details = record.get("details")
    extra: Mapping[str, Any] = details if isinstance(details, Mapping) else {}
    message = record.get("message") if record else error
    kind = record.get("type")
    described = f"{kind}: {message}" if kind and message else message or kind
    exit_code = extra.get("exit_code", data.get("exit_code"))
    tail, tail_kind = None, None
    stderr = extra.get("stderr_tail", data.get("stderr_tail"))
    if isinstance(stderr, list):  # a command's stderr, line by line
        stderr = "\n".join(str(line) for line in stderr)
    if isinstance(stderr, str) and stderr.strip():
        tail, tail_kind = _last_lines(stderr), "stderr"
    elif isinstance(record.get("traceback"), str) and record["traceback"].strip():
        tail, tail_kind = _last_lines(record["traceback"]), "traceback"
    attempts = data.get("attempts")
    return Failure(
        date=date,
        reason=_text(data.get("reason")),
        phase=_text(data.get("phase")),
        attempts=attempts if isinstance(attempts, int) else None,
        error=_text(described),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        tail=tail,
        tail_kind=tail_kind,
    )


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _last_lines(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-MAX_TAIL_LINES:])


def duration(
    created: datetime | None, modified: datetime | None, *, live: bool, now: datetime
) -> timedelta | None:
    """How long a job has taken: from its creation to its latest event, or to ``now``
    while it is live (its agents are still at work)."""
    if created is None:
        return None
    end = now if live or modified is None else modified
    return max(as_utc(end) - as_utc(created), timedelta(0))


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
