"""Reading and writing the orchestrator's records: executions, tasks, the execution log.

Every status change is one conditional update (``status`` in the statuses it may come
from, :mod:`datacatalog.orchestrator.model`); a change that finds the record moved on
already returns False and changes nothing. A task's start is one write and its end is
one write; the tasks of an execution are created together in one bulk write.
"""

from __future__ import annotations

import os
import socket
import uuid as uuid_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datacatalog.clock import utc_now
from datacatalog.errors import DataCatalogError, InvalidRequestError, NotFoundError
from datacatalog.identifiers import typed_uuid
from datacatalog.orchestrator.model import (
    ACTIVE_EXECUTION_STATUSES,
    EXECUTION_SOURCES,
    LEASED_EXECUTION_STATUSES,
    TASK_SOURCES,
    Execution,
    TaskRecord,
)
from datacatalog.store import Store, Upsert
from datacatalog.stored import to_stored

UUID_PREFIX = "100"


def new_execution_id(job_uuid: str) -> str:
    """A fresh execution id: a typed UUID (generic prefix) unique to this execution."""
    return typed_uuid(f"workflow_execution:{job_uuid}:{uuid_module.uuid4()}", "generic")


def task_id(execution_id: str, name: str) -> str:
    """The id of task ``name`` of an execution (the same for every resume)."""
    return typed_uuid(f"workflow_task:{execution_id}:{name}", "generic")


def check_execution_id(value: object) -> str:
    """``value`` as an execution id; InvalidRequestError when it is not one."""
    text = str(value).strip().lower() if isinstance(value, (str, uuid_module.UUID)) else None
    try:
        parsed = str(uuid_module.UUID(text)) if text else None
    except ValueError:
        parsed = None
    if parsed is None or parsed != text or not parsed.startswith(UUID_PREFIX):
        raise InvalidRequestError(f"{value!r} is not an execution id (a UUID starting 100)")
    return parsed


@dataclass(frozen=True)
class TaskMove:
    """A guarded move of a task record: from its stored statuses to ``status``.

    ``task`` is the record as the store holds it before the move; ``sources`` replaces the
    statuses it may come from; ``attempt`` is appended to its attempt log.
    """

    task: TaskRecord
    status: str
    attempt: Mapping[str, Any] | None = None
    sources: tuple[str, ...] | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MovesWritten:
    """What :meth:`ExecutionRecords.move_tasks` did with a batch of moves.

    ``missed``: moves that found their record moved on (another writer). ``refused``: the
    move the store refused, with ``error``; ``unsent``: the moves not sent because of it,
    in order (send them again).
    """

    missed: list[TaskMove] = field(default_factory=list)
    refused: TaskMove | None = None
    error: DataCatalogError | None = None
    unsent: list[TaskMove] = field(default_factory=list)


class ExecutionRecords:
    """The orchestrator's documents on one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- executions -------------------------------------------------------------------------

    def create_execution(
        self,
        *,
        execution_id: str,
        job_uuid: str,
        workflow_name: str,
        display_name: str,
        inputs: Mapping[str, Any],
        executor: str,
        task_max_attempts: int,
        task_retry_interval: float,
    ) -> Execution:
        """Record a new pending execution."""
        doc = {
            "uuid": execution_id,
            "job_uuid": job_uuid,
            "workflow_name": workflow_name,
            "display_name": display_name,
            "status": "pending",
            "reason": None,
            "inputs": dict(inputs),
            "executor": executor,
            "created_at": utc_now(),
            "started_at": None,
            "ended_at": None,
            "error": None,
            "cancel_requested": False,
            "resumes": 0,
            "task_max_attempts": task_max_attempts,
            "task_retry_interval": float(task_retry_interval),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        return Execution.from_document(self.store.insert("workflow_execution", doc))

    def execution(self, execution_id: str) -> Execution:
        """The execution; NotFoundError when there is none."""
        doc = self.store.get("workflow_execution", {"uuid": check_execution_id(execution_id)})
        if doc is None:
            raise NotFoundError(f"no workflow execution {execution_id}", execution_id=execution_id)
        return Execution.from_document(doc)

    def executions(self, job_uuid: str, *, limit: int = 100) -> list[Execution]:
        """The job's executions, newest first."""
        docs = self.store.find(
            "workflow_execution", {"job_uuid": job_uuid}, sort=[("created_at", -1)], limit=limit
        )
        return [Execution.from_document(d) for d in docs]

    def active_executions(self, job_uuid: str, *, besides: str | None = None) -> list[Execution]:
        """The job's executions that have not ended (other than ``besides``)."""
        query: dict[str, Any] = {
            "job_uuid": job_uuid,
            "status": {"$in": list(ACTIVE_EXECUTION_STATUSES)},
        }
        if besides is not None:
            query["uuid"] = {"$ne": besides}
        return [Execution.from_document(d) for d in self.store.find("workflow_execution", query)]

    def move_execution(self, execution: Execution, status: str, **fields: Any) -> bool:
        """Move ``execution`` to ``status`` (setting ``fields``) if allowed; refresh it."""
        sources = EXECUTION_SOURCES[status]
        change: dict[str, Any] = {"$set": {"status": status, **fields}}
        doc = self.store.update(
            "workflow_execution",
            {"uuid": execution.id, "status": {"$in": list(sources)}},
            change,
        )
        if doc is None:
            current = self.store.get("workflow_execution", {"uuid": execution.id})
            if current is not None:
                execution.update_from(current)
            return False
        execution.update_from(doc)
        return True

    def close_abandoned(self, execution: Execution, *, now: Any) -> bool:
        """Mark an execution whose runner died (its lease lapsed) ``failed``.

        Only a ``started`` or ``cancelling`` execution is closed: those held the job's
        lease, so without it nobody runs them. A ``pending`` one may belong to a runner
        that has not executed yet and is left alone. Returns whether it was closed.
        """
        doc = self.store.update(
            "workflow_execution",
            {"uuid": execution.id, "status": {"$in": list(LEASED_EXECUTION_STATUSES)}},
            {
                "$set": {
                    "status": "failed",
                    "reason": "lease_lapsed",
                    "ended_at": now,
                    "error": {
                        "type": "LeaseLapsed",
                        "message": (
                            f"execution {execution.id} stopped renewing the lease of job "
                            f"{execution.job_uuid} (its runner died); closed by the next runner"
                        ),
                    },
                }
            },
        )
        if doc is None:
            return False
        execution.update_from(doc)
        return True

    def request_cancel(self, execution_id: str) -> tuple[Execution, bool]:
        """Flag the execution for cancellation; returns it and whether the flag was new.

        An execution not started yet ends ``cancelled`` at once (nothing ran); a running
        one is flagged, and its runner, which polls the flag, cancels it.
        """
        doc = self.store.update(
            "workflow_execution",
            {"uuid": check_execution_id(execution_id), "status": "pending"},
            {
                "$set": {
                    "status": "cancelled",
                    "cancel_requested": True,
                    "reason": "cancelled",
                    "ended_at": utc_now(),
                }
            },
        )
        if doc is not None:
            return Execution.from_document(doc), True
        doc = self.store.update(
            "workflow_execution",
            {
                "uuid": check_execution_id(execution_id),
                "status": {"$in": list(ACTIVE_EXECUTION_STATUSES)},
                "cancel_requested": False,
            },
            {"$set": {"cancel_requested": True}},
        )
        if doc is not None:
            return Execution.from_document(doc), True
        return self.execution(execution_id), False

    def cancel_requested(self, execution_id: str) -> bool:
        """Whether someone asked to cancel the execution (one small read)."""
        doc = self.store.get("workflow_execution", {"uuid": execution_id})
        return bool(doc and doc.get("cancel_requested"))

    # -- tasks ------------------------------------------------------------------------------

    def create_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        """Record the tasks of an execution (one bulk write; existing ones are kept)."""
        if not tasks:
            return
        self.store.bulk_upsert(
            "workflow_task",
            [
                Upsert(
                    {"uuid": t.id},
                    {"$setOnInsert": {"uuid": t.id, **to_stored(t, without=("id",))}},
                )
                for t in tasks
            ],
        )

    def tasks(self, execution_id: str) -> list[TaskRecord]:
        """The execution's tasks, in the order they were added to the graph."""
        docs = self.store.find("workflow_task", {"execution_id": execution_id})
        return sorted((TaskRecord.from_document(d) for d in docs), key=lambda t: t.position)

    def move_task(
        self,
        task: TaskRecord,
        status: str,
        *,
        attempt: Mapping[str, Any] | None = None,
        sources: tuple[str, ...] | None = None,
        **fields: Any,
    ) -> bool:
        """Move ``task`` to ``status`` (setting ``fields``, logging ``attempt``); refresh it.

        ``sources`` replaces the statuses it may come from (an attempt whose start and end
        are written together comes from ``pending`` or ``retrying``).
        """
        change: dict[str, Any] = {"$set": {"status": status, **fields}}
        if attempt is not None:
            change["$push"] = {"attempt_log": dict(attempt)}
        doc = self.store.update(
            "workflow_task",
            {"uuid": task.id, "status": {"$in": list(sources or TASK_SOURCES[status])}},
            change,
        )
        if doc is None:
            return False
        task.update_from(doc)
        return True

    def move_tasks(self, moves: Sequence[TaskMove]) -> MovesWritten:
        """Apply guarded moves in one round trip, in order; say which did not land.

        A move applies when the stored record is still in one of the statuses it comes
        from. Only when fewer records matched than moves were sent are the records read
        back, to name the tasks whose last move did not land. A move the store refuses
        (invalid, or refused by the server) is reported with its error, together with
        the moves that were therefore not sent.
        """
        if not moves:
            return MovesWritten()
        updates = []
        for move in moves:
            change: dict[str, Any] = {"$set": {"status": move.status, **move.fields}}
            if move.attempt is not None:
                change["$push"] = {"attempt_log": dict(move.attempt)}
            sources = list(move.sources or TASK_SOURCES[move.status])
            updates.append(({"uuid": move.task.id, "status": {"$in": sources}}, change))
        result = self.store.bulk_update("workflow_task", updates)
        if result.refused is not None:
            refused = result.refused
            return MovesWritten(
                refused=moves[refused],
                error=result.error,
                unsent=[*moves[result.applied : refused], *moves[refused + 1 :]],
            )
        if result.matched == len(moves):
            return MovesWritten()
        last = {move.task.id: move for move in moves}
        stored = {
            doc["uuid"]: doc["status"]
            for doc in self.store.find(
                "workflow_task", {"uuid": {"$in": list(last)}}, projection={"uuid": 1, "status": 1}
            )
        }
        return MovesWritten(
            missed=[move for uuid, move in last.items() if stored.get(uuid) != move.status]
        )

    # -- the log ----------------------------------------------------------------------------

    def add_logs(
        self, execution_id: str, records: Sequence[Mapping[str, Any]], *, first_seq: int
    ) -> int:
        """Append log records (one bulk write); returns the next sequence number."""
        if not records:
            return first_seq
        operations = []
        for offset, record in enumerate(records):
            seq = first_seq + offset
            doc = {
                "uuid": typed_uuid(f"workflow_log:{execution_id}:{seq}", "generic"),
                "execution_id": execution_id,
                "seq": seq,
                **{
                    k: record.get(k)
                    for k in ("date", "level", "logger", "message", "task", "attempt")
                },
            }
            operations.append(Upsert({"uuid": doc["uuid"]}, {"$setOnInsert": doc}))
        self.store.bulk_upsert("workflow_log", operations)
        return first_seq + len(records)

    def logs(self, execution_id: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """The execution's log records, oldest first."""
        return self.store.find(
            "workflow_log", {"execution_id": execution_id}, sort=[("seq", 1)], limit=limit
        )

    def last_log_seq(self, execution_id: str) -> int:
        """The sequence number after the execution's last log record."""
        found = self.store.find(
            "workflow_log", {"execution_id": execution_id}, sort=[("seq", -1)], limit=1
        )
        return int(found[0]["seq"]) + 1 if found else 0
