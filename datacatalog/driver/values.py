"""The values a stage driver hands out: its result, notifications, the execute payload.

Errors are kept as plain records (type, message, traceback), each cut to a bound with a
marker saying how much was left out, so that a result or an event never carries an
unbounded string.
"""

from __future__ import annotations

import traceback as tb
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from datacatalog.errors import InvalidRequestError

if TYPE_CHECKING:
    from datacatalog.indexing import IndexReport
    from datacatalog.jobs.reruns import Verification

__all__ = [
    "PHASES",
    "REASONS",
    "DriverAbort",
    "DriverError",
    "DriverResult",
    "Entry",
    "Notification",
    "Payload",
]

MAX_MESSAGE = 2000
MAX_TRACEBACK = 8000

# The reasons a life-cycle fails with, recorded in the ``fail`` event and the result.
REASONS = (
    "callback_returned_false",
    "callback_raised",
    "max_attempts_exceeded",
    "aborted",
    "timeout",
    "cancelled",
    "cleanup_failed",
    "indexing_failed",
    "lease_lost",
    "store_failed",
    "driver_failed",
)
PHASES = ("prepare", "execute", "cleanup", "index", "finish")


class DriverError(InvalidRequestError):
    """A stage driver was used out of order (started twice, waited on before starting)."""


class DriverAbort(Exception):
    """Raised by a callback (see :meth:`Driver.abort`) to fail the stage without retries."""


def cut(text: str, limit: int, *, keep: str = "head") -> str:
    """``text`` within ``limit`` characters, with a marker saying how many were left out.

    ``keep="tail"`` keeps the end (for tracebacks, whose last lines name the error).
    """
    if len(text) <= limit:
        return text
    marker = f"[... {len(text) - limit} characters cut ...]"
    if keep == "tail":
        return marker + "\n" + text[len(text) - limit :]
    return text[:limit] + " " + marker


def error_record(error: BaseException, *, traceback: bool = True) -> dict[str, Any]:
    """An error as the driver records it: type, message and a bounded traceback.

    An error with a ``record_details`` mapping (a failed command's exit code and the end
    of its stderr, for instance) is described by those details instead of a traceback of
    the code that noticed it.
    """
    details = getattr(error, "record_details", None)
    record: dict[str, Any] = {
        "type": type(error).__name__,
        "message": cut(str(error) or type(error).__name__, MAX_MESSAGE),
        "traceback": None,
    }
    if isinstance(details, dict):
        record["details"] = dict(details)
    elif traceback:
        text = "".join(tb.format_exception(type(error), error, error.__traceback__))
        record["traceback"] = cut(text, MAX_TRACEBACK, keep="tail")
    return record


@dataclass(frozen=True)
class Notification:
    """A significant event inside the driver, handed to ``notify(driver, notification)``.

    Attributes:
        kind: ``started``, ``phase_started``, ``phase_ended``, ``retry_scheduled``,
            ``timeout``, ``cancel_requested``, ``lease_lost``, ``completed`` or ``error``.
        phase: The phase concerned (``prepare``, ``execute``, ``cleanup``, ``index``), if any.
        message: What happened, in a sentence.
        date: When (UTC).
        attempt: The execute attempt concerned, if any.
        error: The error record (type, message, traceback), if any.
    """

    kind: str
    phase: str | None
    message: str
    date: datetime
    attempt: int | None = None
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the traceback left out: history entries stay small)."""
        body: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.phase is not None:
            body["phase"] = self.phase
        if self.attempt is not None:
            body["attempt"] = self.attempt
        if self.error is not None:
            body["error"] = {"type": self.error["type"], "message": self.error["message"]}
        return body


@dataclass(frozen=True)
class Entry:
    """One input or output of the stage: its catalog ``name`` and, when local, its ``path``.

    Attributes:
        name: The catalog path (an input file's name, the job's archive path) or the
            reference as the job names it.
        path: A local path when there is one (a local storage system), else None.
        uuid: The file's UUID (inputs), when known.
        system: The storage system, when known.
    """

    name: str
    path: str | None
    uuid: str | None = None
    system: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"name": self.name, "path": self.path, "uuid": self.uuid, "system": self.system}


class Payload:
    """What ``execute(driver, payload)`` works on; valid only during that call.

    Attributes:
        input_entries: The job's input files.
        output_entries: Where the outputs go: the job's archive location.
        parameters: The job's ``data``.
    """

    def __init__(
        self,
        input_entries: Sequence[Entry],
        output_entries: Sequence[Entry],
        parameters: dict[str, Any],
    ) -> None:
        self._inputs = tuple(input_entries)
        self._outputs = tuple(output_entries)
        self._parameters = parameters
        self._valid = True

    def _check(self) -> None:
        if not self._valid:
            raise DriverError("the payload is valid only during the execute callback")

    @property
    def input_entries(self) -> tuple[Entry, ...]:
        """The job's input files."""
        self._check()
        return self._inputs

    @property
    def output_entries(self) -> tuple[Entry, ...]:
        """The job's archive location."""
        self._check()
        return self._outputs

    @property
    def parameters(self) -> dict[str, Any]:
        """The job's parameters (its ``data``)."""
        self._check()
        return self._parameters

    def close(self) -> None:
        """End the payload's validity (the execute call returned)."""
        self._valid = False


@dataclass(frozen=True)
class DriverResult:
    """How a stage driver's life-cycle ended.

    Attributes:
        succeeded: True when the job finished (and, when asked, its outputs were indexed).
        state: The job's state at the end (as last read or written).
        reason: Why it failed (one of :data:`REASONS`), None on success.
        phase: The phase that failed, None on success.
        attempts: Execute attempts made.
        error: The root error (type, message, traceback), None when there was none.
        started: When the life-cycle began (UTC).
        ended: When it ended (UTC).
        index_report: What indexing did, when the driver indexed the outputs.
        events: The job events the driver posted, in order.
        lease_released: Whether the lease was given back (else it lapses by itself).
        event_error: The error of a terminal event that could not be posted, if any.
        outcome: What running the job came to (:class:`datacatalog.jobs.reruns.Outcome`
            value): ``run``, ``take_over``, ``rerun`` or ``up_to_date``; None when the
            driver was cancelled before it decided.
        up_to_date: True when the job was up to date and nothing ran (``succeeded`` is
            then True, ``attempts`` 0).
        verification: What the up-to-date check verified (or found stale, for a stale
            job run again), else None.
        message: One line saying what was decided (for an up-to-date job: when it
            finished, how many files verified).
    """

    succeeded: bool
    state: str
    reason: str | None
    phase: str | None
    attempts: int
    error: dict[str, Any] | None
    started: datetime
    ended: datetime
    index_report: IndexReport | None = None
    events: tuple[str, ...] = field(default_factory=tuple)
    lease_released: bool = False
    event_error: dict[str, Any] | None = None
    outcome: str | None = None
    up_to_date: bool = False
    verification: Verification | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "succeeded": self.succeeded,
            "state": self.state,
            "reason": self.reason,
            "phase": self.phase,
            "attempts": self.attempts,
            "error": self.error,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat(),
            "index_report": self.index_report.to_dict() if self.index_report else None,
            "events": list(self.events),
            "lease_released": self.lease_released,
            "event_error": self.event_error,
            "outcome": self.outcome,
            "up_to_date": self.up_to_date,
            "verification": self.verification.to_dict() if self.verification else None,
            "message": self.message,
        }
