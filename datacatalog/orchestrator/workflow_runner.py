"""Running workflows: one :class:`WorkflowRunner` manages one execution on one job.

The runner builds the workflow's graph, records the execution and its tasks, drives the
job (``run`` → ``finish`` / ``fail``), sends the tasks that become ready together to the
executor in one hand-over (one attempt of each), and records every start and outcome in
the first receiver of the orchestrator's signals (:mod:`.events`). It is the only
writer: workers only run attempts. Task moves are applied in memory at once and written
by a :class:`~.writer.TaskWriter` off the loop; all have landed before the execution's
end is recorded.

Retry rules: ``max_attempts`` counts attempts in all; ``ctx.task.retry`` is an attempt and
may set the interval; ``ctx.task.abort`` is never retried; a task with
``ignore_failure`` runs once and fails alone, its dependants run; any other failed task
fails the execution, whose error is that task's root cause; ``max_attempts=-1`` retries
until success. On a cancel no new attempt starts, running ones see
``ctx.cancel_requested`` (the process and Dask executors stop those still running after a
grace), the execution ends ``cancelled`` and the job FAILED with reason ``cancelled``.
The execution's log gets each attempt's start and end besides the operations' records.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
import uuid as uuid_module
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from datacatalog.catalog import Catalog
from datacatalog.clock import utc_now
from datacatalog.errors import InvalidRequestError
from datacatalog.freeform import check_object
from datacatalog.indexing import IndexReport
from datacatalog.indexrequests import MAX_PATTERNS, ArchiveIndexRequest
from datacatalog.jobs import Job
from datacatalog.jobs.leases import DEFAULT_TTL
from datacatalog.jobs.reruns import Decision, begin, decide, record_up_to_date
from datacatalog.jobs.reruns import Outcome as RunOutcome
from datacatalog.orchestrator import events
from datacatalog.orchestrator.context import (
    MAX_LOG_MESSAGE,
    JobInfo,
    RecordCollector,
    WorkflowContext,
    make_logger,
)
from datacatalog.orchestrator.decorators import Workflow
from datacatalog.orchestrator.exceptions import (
    ActiveExecutionsError,
    InvalidWorkflowRunnerParams,
    OrchestratorError,
    WorkflowFailedError,
)
from datacatalog.orchestrator.executors.base import Executor, ExecutorEvent, Finished, Started
from datacatalog.orchestrator.graph import TaskGraph
from datacatalog.orchestrator.leasing import ExecutionLease
from datacatalog.orchestrator.model import (
    LEASED_EXECUTION_STATUSES,
    UNLIMITED_ATTEMPTS,
    Execution,
    TaskRecord,
    attempts_left,
)
from datacatalog.orchestrator.plugin import PluginManager
from datacatalog.orchestrator.records import ExecutionRecords, new_execution_id, task_id
from datacatalog.orchestrator.registry import resolve, workflow_version
from datacatalog.orchestrator.worker import Invocation, Outcome, error_info
from datacatalog.orchestrator.writer import TaskWriter
from datacatalog.storage import StorageRegistry
from datacatalog.store import Store

log = logging.getLogger(__name__)

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


class Clock(Protocol):
    """The runner's time: ``now()`` and ``sleep(seconds)`` (tests inject a fake one)."""

    def now(self) -> datetime:
        """The current UTC time."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        """The current UTC time, at millisecond precision."""
        return utc_now()

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        time.sleep(max(0.0, seconds))


def _catalog(model_storage: Any, resource_storage: StorageRegistry | None) -> Catalog:
    if isinstance(model_storage, Catalog):
        return model_storage
    if isinstance(model_storage, Store):
        return Catalog(model_storage, storage=resource_storage)
    if isinstance(model_storage, str):
        return Catalog.open(model_storage)
    raise InvalidWorkflowRunnerParams(
        "model_storage must be a Catalog, a Store or a catalog URI, "
        f"not {type(model_storage).__name__}"
    )


def _max_attempts(value: object, what: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (value < 1 and value != UNLIMITED_ATTEMPTS)
    ):
        raise InvalidWorkflowRunnerParams(
            f"{what} must be an integer of at least 1, or -1 (retry until it succeeds), "
            f"not {value!r}"
        )
    return value


def _interval(value: object, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or value != value
    ):
        raise InvalidWorkflowRunnerParams(f"{what} must be a number of seconds >= 0, not {value!r}")
    return float(value)


def effective_inputs(name: str, workflow: Workflow, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What ``workflow`` runs with: ``inputs`` checked (names, simple annotated types) and
    completed with the declared defaults.

    Raises:
        InvalidWorkflowRunnerParams: Naming the inputs that are unknown, missing, of the
            wrong type or not storable.
    """
    problems = workflow.check_inputs(inputs) or workflow.check_input_types(inputs)
    if problems:
        raise InvalidWorkflowRunnerParams(f"workflow {name}: {'; '.join(problems)}", workflow=name)
    try:
        return dict(
            check_object(workflow.effective_inputs(inputs), where=f"inputs of workflow {name}")
        )
    except InvalidRequestError as exc:
        raise InvalidWorkflowRunnerParams(str(exc), workflow=name) from exc


def workflow_parameters(
    workflow_name: str | Workflow,
    inputs: Mapping[str, Any] | None,
    plugin_manager: PluginManager | None,
) -> dict[str, Any]:
    """A workflow's part of a job's identity: its name, its code's version, its inputs.

    Put under ``workflow`` in a job's ``data`` (as ``datacatalog workflows run --pipeline``
    does), it makes each workflow, version and set of effective inputs a job of its own.

    Raises:
        UndeclaredWorkflowError: No workflow of that name.
        InvalidWorkflowRunnerParams: Inputs that do not fit it.
    """
    name, workflow = resolve(workflow_name, plugin_manager)
    return {
        "name": name,
        "version": workflow_version(name, workflow, plugin_manager),
        "inputs": effective_inputs(name, workflow, dict(inputs or {})),
    }


def request_cancel(model_storage: Any, execution_id: str) -> tuple[Execution, bool]:
    """Ask for an execution to be cancelled, from any process; returns it and whether it was new.

    The runner running it polls the flag and cancels; an execution not started yet ends
    ``cancelled`` when it is executed.
    """
    catalog = _catalog(model_storage, None)
    return ExecutionRecords(catalog.store).request_cancel(execution_id)


class WorkflowRunner:
    """Manages a single workflow execution on a given job (ARIA's "service"; docs/workflows.md).

    Args:
        model_storage: The catalog: a :class:`Catalog`, a :class:`Store` or a URI.
        resource_storage: Storage systems (None: the catalog's).
        plugin_manager: Where plugin workflows come from (None: the catalog's plugins dir).
        execution_id: Resume this execution (instead of ``workflow_name`` + ``service_id``).
        service_id: The job's UUID.
        workflow_name: A declared workflow name, ``module:function``, or a ``@workflow``.
        inputs: Key-value inputs for the workflow.
        executor: Where tasks run (default: a ``ProcessExecutor``).
        task_max_attempts: Attempts in all for each task (an operation may override it).
        task_retry_interval: Seconds between attempts (an operation may override it).
        retry_failed: On resume, run failed tasks again too, with a fresh attempt budget
            (default); False keeps them failed (and refuses to resume a failed execution).
        force: Run the job again even when it is up to date (a new execution; its earlier
            file records are superseded).
        if_stale: ``"error"`` (default: :class:`~datacatalog.errors.StaleOutputsError`
            naming the files) or ``"rerun"`` when the job ran and its outputs no longer
            verify.
        verify: How an up-to-date check verifies the outputs: ``"sha256"`` or ``"size"``.
        stage_timeout: Seconds (or a ``timedelta``) the execution may run, on the runner's
            clock: past it no attempt starts, running ones are stopped as by a cancel, and
            the execution fails with reason ``timeout``. None: no bound.
        clock: Time source (tests inject one that never sleeps).
        cancel_poll_interval: Seconds between reads of the persisted cancel flag.
        index_outputs: When the workflow succeeds, index what its operations wrote to the
            job's archive directory (each file ``generated_by`` the job; a file written
            through ``toolbelt.output_path`` names the tasks that wrote it in its note).
        lease_ttl: Seconds the job's lease lasts unless renewed (renewed every third of
            it); a killed runner's execution is closed by the next runner once it lapses.

    Raises:
        InvalidWorkflowRunnerParams: A bad combination or value of arguments.
        UndeclaredWorkflowError: No workflow of that name.
        WorkflowImplementationNotFoundError: The workflow's code cannot be imported.
        ActiveExecutionsError: The job has an active execution (named in the message).
        StaleOutputsError: The job ran and its outputs are missing or changed (named), and
            ``if_stale`` is ``"error"``.
        InvalidTransitionError: The job is RETIRED, RESET or deleted (named, with what to do).
        NotFoundError: No such job or execution.

    A job that finished and whose indexed outputs verify is up to date: nothing is recorded,
    :attr:`up_to_date` is True and :meth:`execute` runs nothing (see
    :mod:`datacatalog.jobs.reruns`, the decision every entry point takes).
    """

    def __init__(
        self,
        model_storage: Any,
        resource_storage: StorageRegistry | None,
        plugin_manager: PluginManager | None,
        execution_id: str | None = None,
        service_id: str | None = None,
        workflow_name: str | Workflow | None = None,
        inputs: Mapping[str, Any] | None = None,
        executor: Executor | None = None,
        task_max_attempts: int = 30,
        task_retry_interval: float = 30,
        *,
        retry_failed: bool = True,
        clock: Clock | None = None,
        cancel_poll_interval: float = 1.0,
        lease_ttl: float = DEFAULT_TTL,
        index_outputs: bool = False,
        force: bool = False,
        if_stale: str = "error",
        verify: str = "sha256",
        stage_timeout: float | timedelta | None = None,
    ) -> None:
        resuming = execution_id is not None
        if resuming and (workflow_name is not None or service_id is not None or inputs):
            raise InvalidWorkflowRunnerParams(
                "give either execution_id (to resume) or workflow_name and service_id, not both"
            )
        if not resuming and (workflow_name is None or service_id is None):
            missing = [
                n
                for n, v in (("workflow_name", workflow_name), ("service_id", service_id))
                if v is None
            ]
            raise InvalidWorkflowRunnerParams(
                f"give workflow_name and service_id (missing: {', '.join(missing)}), "
                "or execution_id to resume"
            )
        if inputs is not None and not isinstance(inputs, Mapping):
            raise InvalidWorkflowRunnerParams(
                f"inputs must be a mapping, not {type(inputs).__name__}"
            )
        self._max_attempts = _max_attempts(task_max_attempts, "task_max_attempts")
        self._retry_interval = _interval(task_retry_interval, "task_retry_interval")
        self._poll = _interval(cancel_poll_interval, "cancel_poll_interval")
        self._lease_ttl = _interval(lease_ttl, "lease_ttl")
        if isinstance(stage_timeout, timedelta):
            stage_timeout = stage_timeout.total_seconds()
        self._timeout = None if stage_timeout is None else _interval(stage_timeout, "stage_timeout")
        if self._timeout is not None and not self._timeout > 0:
            raise InvalidWorkflowRunnerParams(
                f"stage_timeout must be positive, not {stage_timeout!r}"
            )
        if not self._lease_ttl > 0:
            raise InvalidWorkflowRunnerParams(f"lease_ttl must be positive, not {lease_ttl!r}")
        if executor is not None and not isinstance(executor, Executor):
            raise InvalidWorkflowRunnerParams(
                f"executor must be an Executor, not {type(executor).__name__}"
            )
        self.catalog = _catalog(model_storage, resource_storage)
        self.storage = resource_storage or self.catalog.storage
        self.plugin_manager = plugin_manager or PluginManager.default(self.catalog)
        self.records = ExecutionRecords(self.catalog.store)
        # Task moves while the graph runs (their threads start with the first write).
        self._writer = TaskWriter(self.records)
        self.clock: Clock = clock or SystemClock()
        self._retry_failed = bool(retry_failed)
        self._index_outputs = bool(index_outputs)
        self.index_report: IndexReport | None = None
        """What indexing the outputs did (after a success with ``index_outputs``)."""
        self._cancel_flag = threading.Event()
        self._executed = False
        self._resumed_from: Execution | None = None
        self._previous: Execution | None = None  # an up-to-date job's newest success
        self._outcomes: list[dict[str, Any]] = []  # task outcomes not yet in the job history
        self._unwritten_starts: dict[str, str] = {}  # task -> its stored status meanwhile
        self._deferred_starts: dict[str, float] = {}  # task -> when its start must be written
        self._last_flush = self.clock.now()

        if resuming:
            assert execution_id is not None
            previous = self.records.execution(execution_id)
            self._check_resumable(previous)
            service_id, name, given_inputs = (
                previous.job_uuid,
                previous.workflow_name,
                previous.inputs,
            )
            self._max_attempts, self._retry_interval = (
                previous.task_max_attempts,
                previous.task_retry_interval,
            )
            self._resumed_from = previous
            workflow_ref: str | Workflow = name
        else:
            assert workflow_name is not None and service_id is not None
            workflow_ref, given_inputs = workflow_name, dict(inputs or {})
        self._job = self.catalog.jobs.get(str(service_id), include_deleted=True)
        self.workflow_name, self.workflow = resolve(workflow_ref, self.plugin_manager)
        self._inputs = effective_inputs(self.workflow_name, self.workflow, given_inputs)
        # What running the job comes to: the decision every entry point shares.
        self._rerun_options: dict[str, Any] = {
            "force": force,
            "if_stale": if_stale,
            "verify": verify,
        }
        self.decision: Decision = decide(
            self.catalog, self._job.uuid, holder=execution_id, **self._rerun_options
        )
        self._job = self.decision.job
        self._tasks: dict[str, TaskRecord] = {}
        if self.decision.outcome is RunOutcome.HELD:
            lease = self.decision.lease
            raise ActiveExecutionsError(
                self.decision.message, holder=lease.holder if lease is not None else None
            )
        if not self.decision.runs:
            self.decision.raise_for_outcome()  # stale, refused
            # Up to date: nothing is recorded and nothing runs.
            self._previous = self._newest_success()
            if self._previous is not None:
                self._tasks = {t.name: t for t in self.records.tasks(self._previous.id)}
            return
        try:
            # The recorded name, everywhere (a declared name is not the function's name).
            self._display_name = self.workflow.display_name(self._inputs, self.workflow_name)
        except InvalidRequestError as exc:
            raise InvalidWorkflowRunnerParams(str(exc)) from exc
        self.executor: Executor = executor if executor is not None else _default_executor()
        self._lease = ExecutionLease(self.catalog, ttl=self._lease_ttl)
        self._events_sent = 0  # numbers this runner's job events in their keys
        self._check_no_active(besides=execution_id)
        self._job_info = self._make_job_info(self._job)

        # The id the execution has (or will have): the workflow function sees it.
        self._new_id = (
            self._resumed_from.id if self._resumed_from else new_execution_id(self._job.uuid)
        )
        # Build the graph and check it can be shipped before anything is written.
        collector = RecordCollector(None, None)
        self._workflow_logger = make_logger(
            f"datacatalog.workflow.{self.workflow.name}", collector, []
        )
        self._workflow_logs = collector
        self._graph = TaskGraph()
        build_ctx = WorkflowContext(
            execution_id=self._new_id,
            workflow_name=self.workflow_name,
            job=self._job_info,
            inputs=self._inputs,
            logger=self._workflow_logger,
        )
        try:
            self.workflow(build_ctx, self._graph, **self._inputs)
        except OrchestratorError:
            raise
        except InvalidRequestError as exc:
            raise InvalidWorkflowRunnerParams(f"workflow {self.workflow_name}: {exc}") from exc
        self.executor.check([self._invocation(node.name, 1, 1, 0.0, "") for node in self._graph])

        if self._resumed_from is not None:
            self._execution = self._resumed_from
            self._tasks = {t.name: t for t in self.records.tasks(self._execution.id)}
            missing = [n.name for n in self._graph if n.name not in self._tasks]
            if missing:
                raise InvalidWorkflowRunnerParams(
                    f"execution {self._execution.id}: the workflow now builds tasks it did not "
                    f"record ({', '.join(missing)}); it cannot be resumed"
                )
        else:
            display = self._display_name
            self._execution = self.records.create_execution(
                execution_id=self._new_id,
                job_uuid=self._job.uuid,
                workflow_name=self.workflow_name,
                display_name=display,
                inputs=self._inputs,
                executor=self.executor.describe(),
                task_max_attempts=self._max_attempts,
                task_retry_interval=self._retry_interval,
            )
            for position, node in enumerate(self._graph):
                op = node.operation
                self._tasks[node.name] = TaskRecord(
                    id=task_id(self._execution.id, node.name),
                    execution_id=self._execution.id,
                    name=node.name,
                    operation=op.path,
                    dependencies=list(node.dependencies),
                    status="pending",
                    # Given per operation wins, 0 and False included; None falls back. A
                    # task that ignores its failure runs once: it is never retried.
                    max_attempts=1
                    if op.ignore_failure
                    else op.max_attempts
                    if op.max_attempts is not None
                    else self._max_attempts,
                    retry_interval=op.retry_interval
                    if op.retry_interval is not None
                    else self._retry_interval,
                    ignore_failure=bool(op.ignore_failure)
                    if op.ignore_failure is not None
                    else False,
                    position=position,
                )
            self.records.create_tasks(list(self._tasks.values()))
        self._log_seq = self.records.last_log_seq(self._execution.id)
        self._log_buffer: list[dict[str, Any]] = []
        self._last_log_write = time.monotonic()

    # -- ARIA's surface (docs/workflows.md) -------------------------------------------------

    @property
    def up_to_date(self) -> bool:
        """Whether the job was up to date: nothing runs (see :attr:`decision`)."""
        return self.decision.up_to_date

    @property
    def execution(self) -> Execution | None:
        """The execution's record (as last written).

        For an up-to-date job: the newest succeeded execution of the job, the one that made
        its outputs (None when no workflow execution of the job succeeded).
        """
        return self._previous if self.up_to_date else self._execution

    @property
    def execution_id(self) -> str | None:
        """The execution's id (see :attr:`execution`)."""
        execution = self.execution
        return execution.id if execution is not None else None

    @property
    def service(self) -> Job:
        """The job the execution belongs to."""
        return self.catalog.jobs.get(self._job.uuid)

    @property
    def tasks(self) -> list[TaskRecord]:
        """The execution's task records, in graph order."""
        return sorted(self._tasks.values(), key=lambda t: t.position)

    def cancel(self) -> bool:
        """Request cancellation (persisted, so any process may call it); True when new."""
        if self.up_to_date:
            return False  # nothing runs
        self._cancel_flag.set()
        stored, new = self.records.request_cancel(self._execution.id)
        if stored.status == "cancelled" and self._execution.status == "pending":
            # Not started: it ended here, so this object says so too.
            self._execution.update_from_execution(stored)
        else:
            self._execution.cancel_requested = True
        return new

    def execute(self) -> Execution | None:
        """Run the graph to completion; returns the execution (succeeded or cancelled).

        For an up-to-date job nothing runs: the check is recorded in the job's history (a
        ``reuse`` event) and :attr:`execution` is returned.

        Raises:
            WorkflowFailedError: A task failed (its root cause is ``execution.error``).
            ActiveExecutionsError: Another execution took the job meanwhile.
        """
        if self._executed:
            raise InvalidRequestError(
                f"execution {self.execution_id}: execute() was called already"
            )
        self._executed = True
        if self.up_to_date:
            record_up_to_date(
                self.catalog,
                self.decision,
                token=self.catalog.jobs.job_token(self._job.uuid),
                holder=self.execution_id,
                # Nothing of this runner's is stored: a key of this check alone.
                event_id=f"reuse-{uuid_module.uuid4().hex}",
            )
            return self.execution
        if self._resumed_from is not None:
            self._emit(events.on_resume_workflow_signal, execution=self._execution)
        if self._execution.cancel_requested or self._cancel_flag.is_set():
            self._emit(events.on_cancelled_workflow_signal, execution=self._execution, ran=False)
            return self._execution
        # A lease taken over (this process stalled past its ttl) stops the execution.
        try:
            self._lease.acquire(
                self._job.uuid, self._execution.id, on_lost=lambda _exc: self._cancel_flag.set()
            )
        except ActiveExecutionsError as exc:
            self._close_unstarted("failed", "error", error_info(exc))
            raise
        try:
            # Again under the lease: another execution may have run the job meanwhile.
            fresh = decide(
                self.catalog, self._job.uuid, holder=self._execution.id, **self._rerun_options
            )
            if not fresh.runs:
                return self._called_off(fresh)
            self.decision = fresh
            return self._run()
        finally:
            self._lease.release()

    def _called_off(self, fresh: Decision) -> Execution | None:
        """The job no longer runs (up to date, stale, refused): end the execution unstarted."""
        self.decision = fresh
        if fresh.up_to_date:
            self._close_unstarted("cancelled", "up_to_date", None)
            record_up_to_date(
                self.catalog,
                fresh,
                token=self.catalog.jobs.job_token(self._job.uuid),
                holder=self._execution.id,
                event_id=f"{self._execution.id}:{self._execution.resumes}:reuse",
            )
            self._previous = self._newest_success()
            return self._previous
        error = fresh.error()
        assert error is not None  # held, stale or refused
        self._close_unstarted("failed", "error", error_info(error))
        raise error

    def _close_unstarted(self, status: str, reason: str, error: dict[str, Any] | None) -> None:
        """End an execution that never started (its job got no event)."""
        self.records.move_execution(
            self._execution, status, ended_at=self.clock.now(), reason=reason, error=error
        )

    # -- checks -----------------------------------------------------------------------------

    def _newest_success(self) -> Execution | None:
        for execution in self.records.executions(self._job.uuid):
            if execution.status == "succeeded":
                return execution
        return None

    def _check_resumable(self, previous: Execution) -> None:
        if previous.status == "cancelled" or (previous.status == "failed" and self._retry_failed):
            return
        if previous.active:
            raise ActiveExecutionsError(
                f"execution {previous.id} is {previous.status}: it is still active",
                holder=previous.id,
            )
        allowed = (
            "cancelled or failed"
            if self._retry_failed
            else "cancelled (failed with retry_failed=True)"
        )
        raise InvalidWorkflowRunnerParams(
            f"execution {previous.id} is {previous.status}; only a {allowed} execution resumes"
        )

    def _check_no_active(self, *, besides: str | None) -> None:
        holder = self._lease.holder(self._job.uuid)
        if holder is not None and holder != besides:
            raise ActiveExecutionsError(
                f"job {self._job.uuid} has an active execution: held by {holder}", holder=holder
            )
        # Nobody (but ``besides``) holds the lease: a started execution is a dead one.
        for execution in self.records.active_executions(self._job.uuid, besides=besides):
            if execution.status not in LEASED_EXECUTION_STATUSES:
                continue  # a pending one may be a runner that has not executed yet
            if self.records.close_abandoned(execution, now=self.clock.now()):
                log.warning("closed execution %s: its lease lapsed", execution.id)
        active = self.records.active_executions(self._job.uuid, besides=besides)
        if active:
            raise ActiveExecutionsError(
                f"job {self._job.uuid} has an active execution: {active[0].id} "
                f"({active[0].workflow_name}, {active[0].status})",
                holder=active[0].id,
            )

    def _make_job_info(self, job: Job) -> JobInfo:
        system = self.storage.get(job.archive_system)
        local = system.resolve(job.archive_path) if system.is_local else None
        return JobInfo(
            uuid=job.uuid,
            archive_path=job.archive_path,
            archive_system=job.archive_system,
            archive_dir=str(Path(local)) if local else None,
            token=self.catalog.jobs.job_token(job.uuid),
        )

    def _invocation(
        self, name: str, attempt: int, max_attempts: int, interval: float, exec_id: str
    ) -> Invocation:
        node = self._graph[name]
        return Invocation(
            execution_id=exec_id,
            workflow_name=self.workflow_name,
            task=name,
            attempt=attempt,
            max_attempts=max_attempts,
            retry_interval=interval,
            operation=node.operation,
            arguments=node.arguments,
            job=self._job_info,
            inputs=self._inputs,
        )

    # -- signals and records ----------------------------------------------------------------

    def _emit(self, signal: Any, **kwargs: Any) -> None:
        """Send ``signal``: the recording receiver's errors propagate, subscribers' do not."""
        for receiver in signal.receivers_for(self):
            if (
                getattr(receiver, "__name__", "") == "receiver"
                and receiver.__module__ == events.__name__
            ):
                receiver(self, **kwargs)
                continue
            try:
                receiver(self, **kwargs)
            except Exception:
                log.exception("a subscriber of %s raised; the execution goes on", signal.name)

    def record(self, signal_name: str, **kwargs: Any) -> None:
        """Write what ``signal_name`` means (the first receiver of every signal)."""
        getattr(self, f"_record_{signal_name}")(**kwargs)

    def _record_start_workflow_signal(self, execution: Execution) -> None:
        self.records.move_execution(execution, "started", started_at=self.clock.now())
        if execution.status != "started":
            return
        # ``run``; ``retry`` on a FAILED job, ``rerun`` on a forced or stale one. A resume
        # keeps what the tasks that succeeded wrote; a new execution starts clean.
        begin(
            self.catalog,
            self.decision,
            token=self._job_info.token,
            data={
                "workflow": self.workflow_name,
                "execution_id": execution.id,
                "tasks": len(self._tasks),
                "resumes": execution.resumes,
            },
            leftovers="keep" if self._resumed_from is not None else "clear",
            event_id=self._event_key(str(self.decision.event)),
        )

    def _record_on_resume_workflow_signal(self, execution: Execution) -> None:
        reset_statuses = ["started", "retrying", "pending"] + (
            ["failed"] if self._retry_failed else []
        )
        for task in self._tasks.values():
            if task.status in reset_statuses:
                fields: dict[str, Any] = {"due_at": None}
                if task.status == "failed":
                    # A fresh budget; attempt numbers go on (each attempt keeps its own key).
                    op = self._graph[task.name].operation
                    budget = op.max_attempts if op.max_attempts is not None else self._max_attempts
                    if task.ignore_failure:
                        budget = 1
                    fields.update(
                        max_attempts=budget
                        if budget == UNLIMITED_ATTEMPTS
                        else task.attempts + budget,
                        error=None,
                        message=None,
                        ended_at=None,
                    )
                self.records.move_task(task, "pending", **fields)
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

    def _record_on_cancelling_workflow_signal(self, execution: Execution) -> None:
        self.records.move_execution(execution, "cancelling", cancel_requested=True)

    def _record_on_cancelled_workflow_signal(self, execution: Execution, ran: bool = True) -> None:
        self.records.move_execution(
            execution, "cancelled", ended_at=self.clock.now(), reason="cancelled"
        )
        if ran:
            self._flush_history(force=True)
            self._job_event(
                "fail",
                {
                    "reason": "cancelled",
                    "workflow": self.workflow_name,
                    "execution_id": execution.id,
                    "counts": self._counts(),
                },
            )

    def _record_on_success_workflow_signal(self, execution: Execution) -> None:
        self._flush_history(force=True)
        self._job_event(
            "finish",
            {
                "workflow": self.workflow_name,
                "execution_id": execution.id,
                "counts": self._counts(),
            },
        )
        if self._index_outputs:
            try:
                self.index_report = self._index()
            except Exception as exc:  # a catalog error, or an unexpected one: never half-done
                error = error_info(exc)
                self.records.move_execution(
                    execution,
                    "failed",
                    ended_at=self.clock.now(),
                    error=error,
                    reason="indexing_failed",
                )
                if self.catalog.jobs.get(self._job.uuid).state == "INDEXING":
                    self._job_event(
                        "fail",
                        {
                            "reason": "indexing_failed",
                            "workflow": self.workflow_name,
                            "execution_id": execution.id,
                            "error": error,
                        },
                    )
                return
        self.records.move_execution(execution, "succeeded", ended_at=self.clock.now())

    def _index(self) -> IndexReport:
        """Index the job's archive path: the files each task wrote, with their writers, first.

        A job that declares its own index requests is indexed by them alone.
        """
        job = self.catalog.jobs.get(self._job.uuid)
        requests: list[ArchiveIndexRequest] | None = None
        if not job.index_requests():
            requests = [*self._written_requests(), ArchiveIndexRequest(patterns=[], fixity=True)]
        return self.catalog.indexing.index(
            job.uuid, token=self._job_info.token, fixity=True, transition=True, requests=requests
        )

    def _written_requests(self) -> list[ArchiveIndexRequest]:
        """One request per set of tasks that wrote the same files, its note naming them."""
        writers: dict[str, list[str]] = {}
        for task in self.tasks:
            for attempt in task.attempt_log:
                for path in attempt.get("outputs") or []:
                    names = writers.setdefault(path, [])
                    if task.name not in names:
                        names.append(task.name)
        groups: dict[tuple[str, ...], list[str]] = {}
        for path, names in writers.items():
            groups.setdefault(tuple(names), []).append(path)
        requests = []
        for group, paths in groups.items():
            plural = "s" if len(group) > 1 else ""
            note = (
                f"written by task{plural} {', '.join(group)} of workflow {self.workflow_name} "
                f"(execution {self._execution.id})"
            )
            for start in range(0, len(paths), MAX_PATTERNS):
                chunk = paths[start : start + MAX_PATTERNS]
                requests.append(
                    ArchiveIndexRequest(
                        patterns=[f"^{re.escape(path)}$" for path in chunk], note=note, fixity=True
                    )
                )
        return requests

    def _record_on_failure_workflow_signal(
        self, execution: Execution, error: dict[str, Any], reason: str
    ) -> None:
        self.records.move_execution(
            execution, "failed", ended_at=self.clock.now(), error=error, reason=reason
        )
        self._flush_history(force=True)
        self._job_event(
            "fail",
            {
                "reason": reason,
                "workflow": self.workflow_name,
                "execution_id": execution.id,
                "error": error,
                "counts": self._counts(),
            },
        )

    def _record_sent_task_signal(self, task: TaskRecord, attempt: int) -> None:
        """Nothing is written when an attempt is sent: its start is (one write per event)."""

    def _record_start_task_signal(
        self, task: TaskRecord, attempt: int, started: datetime, coalesced: bool = False
    ) -> None:
        # The start is written with the attempt's end when that comes soon (or is here
        # already); otherwise on its own, START_WRITE_DELAY later (_write_due_starts).
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

    def _write_due_starts(self, *, everything: bool = False) -> float | None:
        """Write the starts that waited long enough; seconds until the next one is due."""
        now = time.monotonic()
        for name, due in list(self._deferred_starts.items()):
            if not everything and due > now:
                continue
            del self._deferred_starts[name]
            previous = self._unwritten_starts.pop(name, None)
            if previous is None:
                continue  # written with its end already
            task = self._tasks[name]
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

    def _record_on_success_task_signal(self, task: TaskRecord, outcome: Outcome) -> None:
        self._log(
            "INFO",
            f"task {task.name} attempt {outcome.attempt} ended: success",
            task,
            outcome.attempt,
            outcome.ended,
        )
        self._writer.move(
            task,
            "success",
            attempt=_attempt_entry(outcome),
            ended_at=outcome.ended,
            error=None,
            message=outcome.message,
            **self._end_fields(task),
        )
        self._history_outcome(task)

    def _record_on_failure_task_signal(
        self, task: TaskRecord, outcome: Outcome, retry: bool, due_at: datetime | None
    ) -> None:
        extra = self._end_fields(task)
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
        if retry:
            self._writer.move(
                task,
                "retrying",
                attempt=_attempt_entry(outcome),
                error=outcome.error,
                message=outcome.message,
                **{**extra, "due_at": due_at},
            )
            return
        self._writer.move(
            task,
            "failed",
            attempt=_attempt_entry(outcome),
            ended_at=outcome.ended,
            error=outcome.error,
            message=outcome.message,
            **extra,
        )
        self._history_outcome(task)

    def _history_outcome(self, task: TaskRecord) -> None:
        self._outcomes.append(
            {
                "task": task.name,
                "status": task.status,
                "attempts": task.attempts,
                **({"error": (task.error or {}).get("type")} if task.status == "failed" else {}),
            }
        )
        self._flush_history()

    def _flush_history(self, *, force: bool = False) -> None:
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
                "execution_id": self._execution.id,
                "task_outcomes": batch,
            },
        )

    def _event_key(self, event: str) -> str:
        """The next job event's idempotency key: this execution, its resume, the event."""
        self._events_sent += 1
        return f"{self._execution.id}:{self._execution.resumes}:{self._events_sent}-{event}"

    def _job_event(self, event: str, data: dict[str, Any]) -> None:
        """Send ``event`` to the job under a key of this execution, run and event.

        The key (``<execution id>:<resumes>:<n>-<event>``) makes the event safe to send
        again: while the database is unavailable it is, within the store's failover budget,
        and the terminal event (``finish``, ``fail``) until the lease would run out.
        """
        key = self._event_key(event)

        def send() -> None:
            self.catalog.jobs.send(self._job.uuid, event, data=data, event_id=key)

        if event in ("finish", "fail"):
            self._lease.while_held(send, what=f"event {event} ({key}) of job {self._job.uuid}")
        else:
            send()

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self._tasks.values():
            counts[task.status] = counts.get(task.status, 0) + 1
        return counts

    def _write_logs(self, records: list[dict[str, Any]]) -> None:
        if records:
            self._log_seq = self.records.add_logs(
                self._execution.id, records, first_seq=self._log_seq
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

    def _flush_logs(self, *, force: bool = False) -> None:
        """Write the kept log records: at the end, or when enough or old enough gathered."""
        if not self._log_buffer:
            return
        due = time.monotonic() - self._last_log_write >= LOG_FLUSH_SECONDS
        if not (force or due or len(self._log_buffer) >= LOG_BATCH):
            return
        batch, self._log_buffer = self._log_buffer, []
        self._last_log_write = time.monotonic()
        self._write_logs(batch)

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> Execution:
        self._last_flush = self.clock.now()
        self._emit(events.start_workflow_signal, execution=self._execution)
        if self._execution.status != "started":  # cancelled meanwhile, from elsewhere
            self._emit(events.on_cancelled_workflow_signal, execution=self._execution, ran=False)
            return self._execution
        self._write_logs(self._workflow_logs.records)
        inbox: queue.Queue[ExecutorEvent] = queue.Queue()
        root_error: dict[str, Any] | None = None
        cancelling = False
        timed_out = False
        started = False
        deadline = (
            None if self._timeout is None else self.clock.now() + timedelta(seconds=self._timeout)
        )
        try:
            self.executor.start(self._execution.id, inbox.put)
            started = True
            self._prepare_schedule()
            inflight: dict[str, int] = {}
            finished_attempts: set[tuple[str, int]] = set()
            last_poll = self.clock.now()
            while True:
                now = self.clock.now()
                if deadline is not None and not (cancelling or timed_out) and now >= deadline:
                    # As a cancel, without one: nothing new starts, running attempts stop.
                    timed_out = True
                    for name, _attempt in self.executor.cancel():
                        inflight.pop(name, None)
                if not cancelling and (
                    self._cancel_flag.is_set()
                    or ((now - last_poll).total_seconds() >= self._poll and self._poll_cancel())
                ):
                    cancelling = True
                    self._emit(events.on_cancelling_workflow_signal, execution=self._execution)
                    for name, _attempt in self.executor.cancel():
                        inflight.pop(name, None)
                if (now - last_poll).total_seconds() >= self._poll:
                    last_poll = now
                if not cancelling and not timed_out and root_error is None:
                    # The tasks ready now go to the executor together (one hand-over).
                    sending = []
                    for task in self._ready(inflight, now):
                        attempt = task.attempts + 1
                        inflight[task.name] = attempt
                        self._emit(events.sent_task_signal, task=task, attempt=attempt)
                        sending.append(
                            self._invocation(
                                task.name,
                                attempt,
                                task.max_attempts,
                                task.retry_interval,
                                self._execution.id,
                            )
                        )
                    self.executor.submit_many(sending)
                if not inflight:
                    if cancelling or timed_out or root_error is not None:
                        break
                    due = self._next_due()
                    if due is None:
                        break  # every task ended (or is blocked behind a failure)
                    wake = due if deadline is None else min(due, deadline)
                    self.clock.sleep(max(0.0, (wake - self.clock.now()).total_seconds()))
                    continue
                next_start = self._write_due_starts()
                wait = self._poll if next_start is None else min(self._poll, next_start)
                if deadline is not None and not timed_out:
                    wait = min(wait, (deadline - now).total_seconds())
                try:
                    batch = [inbox.get(timeout=max(0.01, wait))]
                except queue.Empty:
                    continue
                while True:  # take what else has arrived: an attempt's start and end together
                    try:
                        batch.append(inbox.get_nowait())
                    except queue.Empty:
                        break
                ending = {
                    (e.outcome.task, e.outcome.attempt) for e in batch if isinstance(e, Finished)
                }
                for event in batch:
                    root_error = self._handle(
                        event, inflight, finished_attempts, cancelling, root_error, ending
                    )
                self._flush_logs()
            self._write_due_starts(everything=True)
            self._flush_logs(force=True)
            self._writer.flush()  # the task records are stored before the execution's end
        except BaseException as exc:
            cancelling = False
            self._abandon(exc, started=started)
            raise
        finally:
            if started:
                self.executor.close()
            self._writer.close()
        if cancelling:
            self._emit(events.on_cancelled_workflow_signal, execution=self._execution)
            return self._execution
        if root_error is None and timed_out:
            error = {
                "type": "StageTimeout",
                "message": f"workflow {self.workflow_name} did not end within its stage_timeout "
                f"of {self._timeout:g} s: no attempt started after it, running ones were stopped",
                "traceback": None,
            }
            self._emit(
                events.on_failure_workflow_signal,
                execution=self._execution,
                error=error,
                reason="timeout",
            )
            raise WorkflowFailedError(
                f"workflow {self.workflow_name} failed: {error['message']}",
                execution=self._execution,
            )
        if root_error is not None:
            self._emit(
                events.on_failure_workflow_signal,
                execution=self._execution,
                error=root_error,
                reason="task_failed",
            )
            raise WorkflowFailedError(
                f"workflow {self.workflow_name} failed: task {root_error.get('task')} raised "
                f"{root_error['type']}: {root_error['message']}",
                execution=self._execution,
            )
        self._emit(events.on_success_workflow_signal, execution=self._execution)
        if self._execution.status == "failed":  # its outputs could not be indexed
            error = self._execution.error or {}
            raise WorkflowFailedError(
                f"workflow {self.workflow_name}: its tasks succeeded but indexing its outputs "
                f"failed: {error.get('type')}: {error.get('message')}",
                execution=self._execution,
            )
        return self._execution

    def _abandon(self, exc: BaseException, *, started: bool) -> None:
        """The runner itself failed: record that on the execution and the job if possible."""
        try:
            if started:
                self.executor.cancel()
            try:
                self._writer.flush()
            except Exception:
                log.exception("a task record of execution %s was not written", self._execution.id)
            try:
                self._flush_logs(force=True)
            except Exception:
                log.exception("the log of execution %s was not written", self._execution.id)
            error = error_info(exc)
            self._emit(
                events.on_failure_workflow_signal,
                execution=self._execution,
                error=error,
                reason="error",
            )
        except Exception:
            log.exception("could not record the failure of execution %s", self._execution.id)

    def _poll_cancel(self) -> bool:
        return self.records.cancel_requested(self._execution.id)

    @staticmethod
    def _satisfies(task: TaskRecord) -> bool:
        """Whether ``task`` lets its dependants run."""
        return task.status == "success" or (task.status == "failed" and task.ignore_failure)

    def _prepare_schedule(self) -> None:
        """Count each task's unmet dependencies; the tasks with none are the candidates."""
        self._dependants: dict[str, list[str]] = {name: [] for name in self._tasks}
        self._unmet: dict[str, int] = {}
        for task in self.tasks:
            for dep in task.dependencies:
                self._dependants[dep].append(task.name)
            self._unmet[task.name] = sum(
                not self._satisfies(self._tasks[d]) for d in task.dependencies
            )
        # An ordered set: insertion order is graph order for the first wave.
        self._candidates: dict[str, None] = {
            t.name: None
            for t in self.tasks
            if self._unmet[t.name] == 0 and t.status in ("pending", "retrying")
        }

    def _ready(self, inflight: Mapping[str, int], now: datetime) -> list[TaskRecord]:
        ready = []
        for name in list(self._candidates):
            task = self._tasks[name]
            if name in inflight:
                continue
            if task.status not in ("pending", "retrying"):
                del self._candidates[name]
                continue
            if task.status == "retrying" and task.due_at is not None and task.due_at > now:
                continue
            del self._candidates[name]
            ready.append(task)
        return ready

    def _settled(self, task: TaskRecord) -> None:
        """After ``task`` changed: retry it, or release the dependants it satisfies."""
        if task.status == "retrying":
            self._candidates[task.name] = None
        elif self._satisfies(task):
            for name in self._dependants[task.name]:
                self._unmet[name] -= 1
                if self._unmet[name] == 0:
                    self._candidates[name] = None

    def _next_due(self) -> datetime | None:
        dues = [
            t.due_at or self.clock.now() for t in self._tasks.values() if t.status == "retrying"
        ]
        return min(dues) if dues else None

    def _handle(
        self,
        event: ExecutorEvent,
        inflight: dict[str, int],
        finished: set[tuple[str, int]],
        cancelling: bool,
        root_error: dict[str, Any] | None,
        ending: set[tuple[str, int]],
    ) -> dict[str, Any] | None:
        if isinstance(event, Started):
            # A start after the attempt ended, or of an attempt dropped by a cancel, is stale.
            if (
                inflight.get(event.task) == event.attempt
                and (event.task, event.attempt) not in finished
            ):
                self._emit(
                    events.start_task_signal,
                    task=self._tasks[event.task],
                    attempt=event.attempt,
                    started=event.started,
                    coalesced=(event.task, event.attempt) in ending,
                )
            return root_error
        outcome = event.outcome
        task = self._tasks[outcome.task]
        finished.add((outcome.task, outcome.attempt))
        inflight.pop(outcome.task, None)
        if task.status != "started":  # its start event is still on its way (Dask)
            self._emit(
                events.start_task_signal,
                task=task,
                attempt=outcome.attempt,
                started=outcome.started,
                coalesced=True,
            )
        self._log_buffer.extend(outcome.logs)
        if outcome.status == "success":
            self._emit(events.on_success_task_signal, task=task, outcome=outcome)
            self._settled(task)
            return root_error
        # A retry is recorded even while cancelling or failing: the task stays unfinished
        # (``retrying``) and is not sent again; a resume runs it.
        # Never retried: an abort, a task that ignores its failure, a spent budget.
        retry = (
            outcome.status != "abort"
            and not task.ignore_failure
            and attempts_left(task.attempts, task.max_attempts)
        )
        interval = (
            outcome.retry_interval if outcome.retry_interval is not None else task.retry_interval
        )
        due = self.clock.now() + timedelta(seconds=interval) if retry else None
        self._emit(
            events.on_failure_task_signal, task=task, outcome=outcome, retry=retry, due_at=due
        )
        self._settled(task)
        if task.status == "failed" and not task.ignore_failure and root_error is None:
            return {
                **(outcome.error or {"type": "Error", "message": outcome.message or ""}),
                "task": task.name,
            }
        return root_error


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


def _default_executor() -> Executor:
    from datacatalog.orchestrator.executors.process import ProcessExecutor

    return ProcessExecutor()
