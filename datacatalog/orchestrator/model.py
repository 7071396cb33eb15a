"""The orchestrator's records: executions and tasks, and their status tables.

An execution moves ``pending → started → (cancelling) → succeeded | failed | cancelled``;
a resumed execution goes back to ``pending``. A task moves ``pending → started →
(retrying → started ...) → success | failed``. The tables below list, for every status,
the statuses it may be reached from; the records service turns each change into one
conditional update on them, so a late change (a task's "started" after the execution was
cancelled) never overwrites a later one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from datacatalog.stored import from_stored

EXECUTION_STATUSES = ("pending", "started", "cancelling", "succeeded", "failed", "cancelled")
ACTIVE_EXECUTION_STATUSES = ("pending", "started", "cancelling")
LEASED_EXECUTION_STATUSES = ("started", "cancelling")  # only while the job's lease is held
END_EXECUTION_STATUSES = ("succeeded", "failed", "cancelled")

EXECUTION_SOURCES: dict[str, tuple[str, ...]] = {
    "pending": ("cancelled", "failed"),  # a resume
    "started": ("pending",),
    "cancelling": ("pending", "started"),
    "succeeded": ("started",),
    "failed": ("pending", "started", "cancelling"),
    "cancelled": ("pending", "started", "cancelling"),
}

UNLIMITED_ATTEMPTS = -1
"""``max_attempts`` of a task retried until it succeeds (ARIA's ``INFINITE_RETRIES``;
docs/workflows.md, "Retry rules")."""


def attempts_left(attempts: int, max_attempts: int) -> bool:
    """Whether a task that ran ``attempts`` times may run again under ``max_attempts``."""
    return max_attempts == UNLIMITED_ATTEMPTS or attempts < max_attempts


TASK_STATUSES = ("pending", "started", "retrying", "success", "failed")
END_TASK_STATUSES = ("success", "failed")

TASK_SOURCES: dict[str, tuple[str, ...]] = {
    "pending": ("pending", "started", "retrying", "failed"),  # a resume resets these
    "started": ("pending", "retrying"),
    "retrying": ("started",),
    "success": ("started",),
    "failed": ("started", "pending", "retrying"),
}


@dataclass
class Execution:
    """One execution of a workflow on a job, as recorded."""

    id: str
    job_uuid: str
    workflow_name: str
    status: str
    inputs: dict[str, Any]
    executor: str
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: dict[str, Any] | None = None
    reason: str | None = None
    cancel_requested: bool = False
    resumes: int = 0
    task_max_attempts: int = 30
    task_retry_interval: float = 30.0

    @property
    def active(self) -> bool:
        """Whether the execution has not ended."""
        return self.status in ACTIVE_EXECUTION_STATUSES

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Execution:
        """Build from a stored document."""
        return from_stored(
            cls,
            doc,
            id=doc["uuid"],
            inputs=dict(doc.get("inputs") or {}),
            executor=doc.get("executor", ""),
            task_retry_interval=float(doc.get("task_retry_interval", 30)),
        )

    def update_from(self, doc: Mapping[str, Any]) -> None:
        """Take every field from a newer stored document."""
        self.update_from_execution(Execution.from_document(doc))

    def update_from_execution(self, fresh: Execution) -> None:
        """Take every field from a newer copy of the same execution."""
        self.__dict__.update(fresh.__dict__)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id,
            "job_uuid": self.job_uuid,
            "workflow_name": self.workflow_name,
            "status": self.status,
            "reason": self.reason,
            "inputs": self.inputs,
            "executor": self.executor,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "error": self.error,
            "cancel_requested": self.cancel_requested,
            "resumes": self.resumes,
            "task_max_attempts": self.task_max_attempts,
            "task_retry_interval": self.task_retry_interval,
        }


@dataclass
class TaskRecord:
    """One task (an operation instance in the graph) of an execution, as recorded."""

    id: str
    execution_id: str
    name: str
    operation: str
    dependencies: list[str]
    status: str
    max_attempts: int
    retry_interval: float
    ignore_failure: bool
    position: int = 0
    attempts: int = 0
    due_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: dict[str, Any] | None = None
    message: str | None = None
    attempt_log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        """Whether the task reached success or failed."""
        return self.status in END_TASK_STATUSES

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> TaskRecord:
        """Build from a stored document."""
        return from_stored(
            cls,
            doc,
            id=doc["uuid"],
            dependencies=list(doc.get("dependencies", [])),
            retry_interval=float(doc["retry_interval"]),
            ignore_failure=bool(doc.get("ignore_failure", False)),
        )

    def update_from(self, doc: Mapping[str, Any]) -> None:
        """Take every field from a newer stored document."""
        fresh = TaskRecord.from_document(doc)
        self.__dict__.update(fresh.__dict__)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id,
            "execution_id": self.execution_id,
            "name": self.name,
            "operation": self.operation,
            "dependencies": self.dependencies,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "retry_interval": self.retry_interval,
            "ignore_failure": self.ignore_failure,
            "position": self.position,
            "due_at": _iso(self.due_at),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "error": self.error,
            "message": self.message,
            "attempt_log": [
                {k: _iso(v) if isinstance(v, datetime) else v for k, v in a.items()}
                for a in self.attempt_log
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
