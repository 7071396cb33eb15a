"""What an execution's signals mean in the catalog: its records, its log and its job.

The runner hands every signal to its :class:`Recorder` before any subscriber sees it, so
a subscriber sees the record as it is stored. The recorder writes the execution's record,
moves its tasks (through a :class:`~.writer.TaskWriter`, off the runner's loop), keeps the
execution's log, and drives the job: ``run`` (or ``retry`` / ``rerun``) when the execution
starts, ``update`` events carrying task outcomes, ``finish`` or ``fail`` at its end.

It batches what would otherwise cost one write per task:

* an attempt's start is written with its end when the end comes within
  :data:`START_WRITE_DELAY` (one write for both), else on its own that much later;
* task outcomes go into the job's history :data:`HISTORY_BATCH` at a time, or every
  :data:`HISTORY_FLUSH_SECONDS`, and all of them before the execution's end;
* log records are written :data:`LOG_BATCH` at a time or every :data:`LOG_FLUSH_SECONDS`.

Every job event carries a key of this execution, its resume and its rank
(``<execution id>:<resumes>:<n>-<event>``): the store may send it again through a
failover, and the terminal event is sent again until the lease would run out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from datacatalog.catalog import Catalog
from datacatalog.indexing import IndexReport
from datacatalog.jobs.reruns import Decision, begin
from datacatalog.orchestrator.clock import Clock
from datacatalog.orchestrator.context import MAX_LOG_MESSAGE
from datacatalog.orchestrator.executors.base import Executor
from datacatalog.orchestrator.graph import TaskGraph
from datacatalog.orchestrator.leasing import ExecutionLease
from datacatalog.orchestrator.model import Execution, TaskRecord
from datacatalog.orchestrator.outputs import index_outputs
from datacatalog.orchestrator.records import ExecutionRecords
from datacatalog.orchestrator.scheduler import resumed_budget
from datacatalog.orchestrator.worker import Outcome, error_info
from datacatalog.orchestrator.writer import TaskWriter

HISTORY_BATCH = 200
"""Task outcomes per ``update`` event of the job's history."""
HISTORY_FLUSH_SECONDS = 5.0
START_WRITE_DELAY = 0.5
"""Seconds an attempt's start waits to be written with its end (one write for both).

A short attempt's end follows its start closely (on Dask, tens of milliseconds: its
result comes through the scheduler), and writing each start on its own would double the
round trips. The start's signal and the record in memory do not wait; only the stored
copy of a running attempt's start is up to this late.
"""

RUNNER_LOGGER = "datacatalog.orchestrator.runner"
"""The logger name of the runner's own records in the execution's log (tasks' starts, ends)."""
LOG_FLUSH_SECONDS = 1.0
"""Most seconds the runner keeps log records before writing them (all at the end)."""
LOG_BATCH = 500
"""Log records that are written at once, however recent."""


class Recorder:
    """Writes what each signal of one execution means.

    Args:
        catalog: The catalog of the job.
        records: The execution records' store (the runner's, shared).
        execution: The execution's record (moved in place).
        tasks: Its task records by name (moved in place).
        job_uuid: The job.
        token: The job's token.
        workflow_name: The workflow's name, as recorded in the job's events.
        decision: What running the job comes to (its ``run``, ``retry`` or ``rerun``).
        lease: The execution's lease on the job.
        executor: Where the tasks run (its description is recorded on a resume).
        graph: The workflow's graph (a resumed failed task's fresh budget).
        clock: The runner's clock.
        max_attempts: The runner's attempts per task, when an operation sets none.
        resumed: Whether the execution resumes (the job's leftovers are kept).
        retry_failed: On a resume, whether failed tasks run again.
        index_outputs: Whether a success indexes what the tasks wrote.
    """

    def __init__(
        self,
        catalog: Catalog,
        records: ExecutionRecords,
        *,
        execution: Execution,
        tasks: Mapping[str, TaskRecord],
        job_uuid: str,
        token: str,
        workflow_name: str,
        decision: Decision,
        lease: ExecutionLease,
        executor: Executor,
        graph: TaskGraph,
        clock: Clock,
        max_attempts: int,
        resumed: bool,
        retry_failed: bool,
        index_outputs: bool,
    ) -> None:
        self.catalog = catalog
        self.records = records
        self.execution = execution
        self.tasks = tasks
        self.job_uuid = job_uuid
        self.token = token
        self.workflow_name = workflow_name
        self.decision = decision
        self.lease = lease
        self.executor = executor
        self.graph = graph
        self.clock = clock
        self.max_attempts = max_attempts
        self.resumed = resumed
        self.retry_failed = retry_failed
        self.index_outputs = index_outputs
        self.index_report: IndexReport | None = None
        # Task moves while the graph runs (their threads start with the first write).
        self._writer = TaskWriter(records)
        self._events_sent = 0  # numbers this runner's job events in their keys
        self._outcomes: list[dict[str, Any]] = []  # task outcomes not yet in the job history
        self._last_flush = clock.now()
        self._unwritten_starts: dict[str, str] = {}  # task -> its stored status meanwhile
        self._deferred_starts: dict[str, float] = {}  # task -> when its start must be written
        self._log_seq = records.last_log_seq(execution.id)
        self._log_buffer: list[dict[str, Any]] = []
        self._last_log_write = time.monotonic()
        self._records: dict[str, Callable[..., None]] = {
            "start_workflow_signal": self._start_workflow,
            "on_resume_workflow_signal": self._resume_workflow,
            "on_cancelling_workflow_signal": self._cancelling_workflow,
            "on_cancelled_workflow_signal": self._cancelled_workflow,
            "on_success_workflow_signal": self._success_workflow,
            "on_failure_workflow_signal": self._failure_workflow,
            "sent_task_signal": self._sent_task,
            "start_task_signal": self._start_task,
            "on_success_task_signal": self._success_task,
            "on_failure_task_signal": self._failure_task,
        }

    def record(self, signal_name: str, **kwargs: Any) -> None:
        """Write what the signal ``signal_name`` (sent with ``kwargs``) means."""
        self._records[signal_name](**kwargs)

    # -- the execution ----------------------------------------------------------------------

    def _start_workflow(self, execution: Execution) -> None:
        self._last_flush = self.clock.now()
        self.records.move_execution(execution, "started", started_at=self.clock.now())
        if execution.status != "started":
            return
        # ``run``; ``retry`` on a FAILED job, ``rerun`` on a forced or stale one. A resume
        # keeps what the tasks that succeeded wrote; a new execution starts clean.
        begin(
            self.catalog,
            self.decision,
            token=self.token,
            data={
                "workflow": self.workflow_name,
                "execution_id": execution.id,
                "tasks": len(self.tasks),
                "resumes": execution.resumes,
            },
            leftovers="keep" if self.resumed else "clear",
            event_id=self._event_key(str(self.decision.event)),
        )

    def _resume_workflow(self, execution: Execution) -> None:
        reset_statuses = ["started", "retrying", "pending"] + (
            ["failed"] if self.retry_failed else []
        )
        for task in self.tasks.values():
            if task.status in reset_statuses:
                self.records.move_task(task, "pending", **self._reset_fields(task))
        self.records.move_execution(
            execution,
            "pending",
            resumes=execution.resumes + 1,
            executor=self.executor.describe(),
            cancel_requested=False,
            ended_at=None,
            error=None,
            reason=None,
        )

    def _reset_fields(self, task: TaskRecord) -> dict[str, Any]:
        """What a task's move back to ``pending`` on a resume writes."""
        fields: dict[str, Any] = {"due_at": None}
        if task.status == "failed":
            operation = self.graph[task.name].operation
            fields.update(
                max_attempts=resumed_budget(task, operation, self.max_attempts),
                error=None,
                message=None,
                ended_at=None,
            )
        return fields

    def _cancelling_workflow(self, execution: Execution) -> None:
        self.records.move_execution(execution, "cancelling", cancel_requested=True)

    def _cancelled_workflow(self, execution: Execution, ran: bool = True) -> None:
        self.records.move_execution(
            execution, "cancelled", ended_at=self.clock.now(), reason="cancelled"
        )
        if ran:
            self.flush_history(force=True)
            self._job_event("fail", self._event_data(execution, reason="cancelled"))

    def _success_workflow(self, execution: Execution) -> None:
        self.flush_history(force=True)
        self._job_event("finish", self._event_data(execution))
        if self.index_outputs:
            try:
                self.index_report = index_outputs(
                    self.catalog,
                    self.job_uuid,
                    token=self.token,
                    tasks=sorted(self.tasks.values(), key=lambda t: t.position),
                    workflow_name=self.workflow_name,
                    execution_id=execution.id,
                )
            except Exception as exc:  # a catalog error, or an unexpected one: never half-done
                self._indexing_failed(execution, error_info(exc))
                return
        self.records.move_execution(execution, "succeeded", ended_at=self.clock.now())

    def _indexing_failed(self, execution: Execution, error: dict[str, Any]) -> None:
        self.records.move_execution(
            execution, "failed", ended_at=self.clock.now(), error=error, reason="indexing_failed"
        )
        if self.catalog.jobs.get(self.job_uuid).state == "INDEXING":
            self._job_event(
                "fail",
                {
                    "reason": "indexing_failed",
                    "workflow": self.workflow_name,
                    "execution_id": execution.id,
                    "error": error,
                },
            )

    def _failure_workflow(self, execution: Execution, error: dict[str, Any], reason: str) -> None:
        self.records.move_execution(
            execution, "failed", ended_at=self.clock.now(), error=error, reason=reason
        )
        self.flush_history(force=True)
        self._job_event("fail", self._event_data(execution, reason=reason, error=error))

    def _event_data(
        self, execution: Execution, *, reason: str | None = None, error: Any = None
    ) -> dict[str, Any]:
        """A terminal job event's data: why, the workflow, the execution, the task counts."""
        return {
            **({"reason": reason} if reason is not None else {}),
            "workflow": self.workflow_name,
            "execution_id": execution.id,
            **({"error": error} if error is not None else {}),
            "counts": self._counts(),
        }

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks.values():
            counts[task.status] = counts.get(task.status, 0) + 1
        return counts

    # -- the tasks --------------------------------------------------------------------------

    def _sent_task(self, task: TaskRecord, attempt: int) -> None:
        """Nothing is written when an attempt is sent: its start is (one write per event)."""

    def _start_task(
        self, task: TaskRecord, attempt: int, started: datetime, coalesced: bool = False
    ) -> None:
        # The start is written with the attempt's end when that comes soon (or is here
        # already); otherwise on its own, START_WRITE_DELAY later (write_due_starts).
        self._log("INFO", f"task {task.name} attempt {attempt} started", task, attempt, started)
        self._unwritten_starts[task.name] = task.status
        task.status, task.attempts, task.started_at, task.due_at = (
            "started",
            attempt,
            started,
            None,
        )
        if not coalesced:
            self._deferred_starts[task.name] = time.monotonic() + START_WRITE_DELAY

    def write_due_starts(self, *, everything: bool = False) -> float | None:
        """Write the starts that waited long enough; seconds until the next one is due."""
        now = time.monotonic()
        for name, due in list(self._deferred_starts.items()):
            if not everything and due > now:
                continue
            del self._deferred_starts[name]
            previous = self._unwritten_starts.pop(name, None)
            if previous is None:
                continue  # written with its end already
            task = self.tasks[name]
            self._writer.move(
                task,
                "started",
                sources=(previous,),
                attempts=task.attempts,
                started_at=task.started_at,
                due_at=None,
            )
        if not self._deferred_starts:
            return None
        return max(0.0, min(self._deferred_starts.values()) - now)

    def _end_fields(self, task: TaskRecord) -> dict[str, Any]:
        """What an attempt's end also writes when its start was not written on its own."""
        previous = self._unwritten_starts.pop(task.name, None)
        self._deferred_starts.pop(task.name, None)
        if previous is None:
            return {}
        return {
            "sources": (previous,),
            "attempts": task.attempts,
            "started_at": task.started_at,
            "due_at": None,
        }

    def _success_task(self, task: TaskRecord, outcome: Outcome) -> None:
        self._log_buffer.extend(outcome.logs)
        self._log(
            "INFO",
            f"task {task.name} attempt {outcome.attempt} ended: success",
            task,
            outcome.attempt,
            outcome.ended,
        )
        self._end_attempt(task, outcome, "success", ended_at=outcome.ended, error=None)
        self._history_outcome(task)

    def _failure_task(
        self, task: TaskRecord, outcome: Outcome, retry: bool, due_at: datetime | None
    ) -> None:
        self._log_buffer.extend(outcome.logs)
        self._log_failure(task, outcome, retry, due_at)
        if retry:
            self._end_attempt(task, outcome, "retrying", error=outcome.error, due_at=due_at)
            return
        self._end_attempt(task, outcome, "failed", ended_at=outcome.ended, error=outcome.error)
        self._history_outcome(task)

    def _end_attempt(self, task: TaskRecord, outcome: Outcome, status: str, **fields: Any) -> None:
        """Move ``task`` to ``status`` at an attempt's end, the attempt added to its log."""
        self._writer.move(
            task,
            status,
            attempt=_attempt_entry(outcome),
            message=outcome.message,
            **{**self._end_fields(task), **fields},
        )

    def _log_failure(
        self, task: TaskRecord, outcome: Outcome, retry: bool, due_at: datetime | None
    ) -> None:
        error = outcome.error or {}
        cause = f"{error.get('type', 'Error')}: {error.get('message', outcome.message or '')}"
        if retry:
            then = f"another attempt is due at {due_at.isoformat()}" if due_at else "retrying"
        elif task.ignore_failure:
            then = "the task failed; its failure is ignored"
        else:
            then = "the task failed"
        self._log(
            "WARNING" if retry or task.ignore_failure else "ERROR",
            f"task {task.name} attempt {outcome.attempt} ended: {outcome.status} ({cause}); {then}",
            task,
            outcome.attempt,
            outcome.ended,
        )

    def flush(self) -> None:
        """Write everything kept: starts, log records, task moves (before the execution's end)."""
        self.write_due_starts(everything=True)
        self.flush_logs(force=True)
        self._writer.flush()

    def flush_tasks(self) -> None:
        """Wait for the task moves made so far to be written; raise the first error met."""
        self._writer.flush()

    def close(self) -> None:
        """Stop the task writer (after its writes)."""
        self._writer.close()

    # -- the job's history ------------------------------------------------------------------

    def _history_outcome(self, task: TaskRecord) -> None:
        self._outcomes.append(
            {
                "task": task.name,
                "status": task.status,
                "attempts": task.attempts,
                **({"error": (task.error or {}).get("type")} if task.status == "failed" else {}),
            }
        )
        self.flush_history()

    def flush_history(self, *, force: bool = False) -> None:
        """Send the kept task outcomes: at the end, or when enough or old enough gathered."""
        if not self._outcomes:
            return
        due = (self.clock.now() - self._last_flush).total_seconds() >= HISTORY_FLUSH_SECONDS
        if not (force or due or len(self._outcomes) >= HISTORY_BATCH):
            return
        batch, self._outcomes = self._outcomes, []
        self._last_flush = self.clock.now()
        self._job_event(
            "update",
            {
                "workflow": self.workflow_name,
                "execution_id": self.execution.id,
                "task_outcomes": batch,
            },
        )

    def _event_key(self, event: str) -> str:
        """The next job event's idempotency key: this execution, its resume, the event."""
        self._events_sent += 1
        return f"{self.execution.id}:{self.execution.resumes}:{self._events_sent}-{event}"

    def _job_event(self, event: str, data: dict[str, Any]) -> None:
        """Send ``event`` to the job under a key of this execution, run and event.

        The key makes the event safe to send again: while the database is unavailable it
        is, within the store's failover budget, and the terminal event (``finish``,
        ``fail``) until the lease would run out.
        """
        key = self._event_key(event)

        def send() -> None:
            self.catalog.jobs.send(self.job_uuid, event, data=data, event_id=key)

        if event in ("finish", "fail"):
            self.lease.while_held(send, what=f"event {event} ({key}) of job {self.job_uuid}")
        else:
            send()

    # -- the execution's log ----------------------------------------------------------------

    def write_logs(self, records: list[dict[str, Any]]) -> None:
        """Write ``records`` to the execution's log now."""
        if records:
            self._log_seq = self.records.add_logs(
                self.execution.id, records, first_seq=self._log_seq
            )

    def _log(
        self, level: str, message: str, task: TaskRecord, attempt: int, date: datetime
    ) -> None:
        """Keep one of the runner's own records of the execution's log (a task's start or end)."""
        if len(message) > MAX_LOG_MESSAGE:
            message = message[:MAX_LOG_MESSAGE] + " …[cut]"
        self._log_buffer.append(
            {
                "date": date,
                "level": level,
                "logger": RUNNER_LOGGER,
                "message": message,
                "task": task.name,
                "attempt": attempt,
            }
        )

    def flush_logs(self, *, force: bool = False) -> None:
        """Write the kept log records: at the end, or when enough or old enough gathered."""
        if not self._log_buffer:
            return
        due = time.monotonic() - self._last_log_write >= LOG_FLUSH_SECONDS
        if not (force or due or len(self._log_buffer) >= LOG_BATCH):
            return
        batch, self._log_buffer = self._log_buffer, []
        self._last_log_write = time.monotonic()
        self.write_logs(batch)


def _attempt_entry(outcome: Outcome) -> dict[str, Any]:
    return {
        "attempt": outcome.attempt,
        "outcome": outcome.status,
        "started": outcome.started,
        "ended": outcome.ended,
        "message": outcome.message,
        "error_type": (outcome.error or {}).get("type"),
        **({"outputs": list(outcome.outputs)} if outcome.outputs else {}),
    }
