"""Running workflows: one :class:`WorkflowRunner` manages one execution on one job.

The runner checks its arguments, takes the decision every entry point shares (does the
job run, :mod:`datacatalog.jobs.reruns`), builds the workflow's graph, and records the
execution and its tasks before it returns. :meth:`WorkflowRunner.execute` takes the job's
lease and runs the execution: an :class:`~.loop.ExecutionLoop` sends the tasks the
:class:`~.scheduler.Scheduler` finds ready to the executor and turns what the executor
reports into the orchestrator's signals (:mod:`.events`). Each signal goes first to the
runner's :class:`~.recorder.Recorder`, which writes what it means (the execution, its
tasks, its log, the job's ``run`` → ``finish`` / ``fail``), then to subscribers. The
runner is the only writer: workers only run attempts.

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
import threading
import uuid as uuid_module
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NoReturn

from blinker import NamedSignal

from datacatalog.errors import InvalidRequestError
from datacatalog.indexing import IndexReport
from datacatalog.jobs import Job
from datacatalog.jobs.leases import DEFAULT_TTL
from datacatalog.jobs.reruns import Decision, decide, record_up_to_date
from datacatalog.jobs.reruns import Outcome as RunOutcome
from datacatalog.orchestrator import events
from datacatalog.orchestrator.clock import Clock, SystemClock
from datacatalog.orchestrator.decorators import Workflow
from datacatalog.orchestrator.exceptions import (
    ActiveExecutionsError,
    InvalidWorkflowRunnerParams,
    WorkflowFailedError,
)
from datacatalog.orchestrator.executors.base import Executor
from datacatalog.orchestrator.leasing import ExecutionLease, check_no_active
from datacatalog.orchestrator.loop import ExecutionLoop, LoopEnd
from datacatalog.orchestrator.model import Execution, TaskRecord
from datacatalog.orchestrator.parameters import (
    Timing,
    check_executor,
    check_resumable,
    check_target,
    effective_inputs,
    open_catalog,
    workflow_parameters,
)
from datacatalog.orchestrator.plugin import PluginManager
from datacatalog.orchestrator.preparation import build_graph, job_info, new_tasks, resumed_tasks
from datacatalog.orchestrator.recorder import (
    HISTORY_BATCH,
    HISTORY_FLUSH_SECONDS,
    LOG_BATCH,
    LOG_FLUSH_SECONDS,
    RUNNER_LOGGER,
    START_WRITE_DELAY,
    Recorder,
)
from datacatalog.orchestrator.records import ExecutionRecords, new_execution_id
from datacatalog.orchestrator.registry import resolve
from datacatalog.orchestrator.worker import Invocation, error_info
from datacatalog.storage import StorageRegistry

__all__ = [
    "HISTORY_BATCH",
    "HISTORY_FLUSH_SECONDS",
    "LOG_BATCH",
    "LOG_FLUSH_SECONDS",
    "RUNNER_LOGGER",
    "START_WRITE_DELAY",
    "Clock",
    "SystemClock",
    "WorkflowRunner",
    "effective_inputs",
    "request_cancel",
    "workflow_parameters",
]

log = logging.getLogger(__name__)


def request_cancel(model_storage: Any, execution_id: str) -> tuple[Execution, bool]:
    """Ask for an execution to be cancelled, from any process; returns it and whether it was new.

    The runner running it polls the flag and cancels; an execution not started yet ends
    ``cancelled`` when it is executed.
    """
    catalog = open_catalog(model_storage, None)
    return ExecutionRecords(catalog.store).request_cancel(execution_id)


class WorkflowRunner:
    """Manages a single workflow execution on a given job.

    Args:
        model_storage: The catalog: a :class:`Catalog`, a :class:`Store` or a URI.
        resource_storage: Storage systems (None: the catalog's).
        plugin_manager: Where plugin workflows come from (None: the catalog's plugins dir).
        execution_id: Resume this execution (instead of ``workflow_name`` + ``service_id``).
        service_id: The job's UUID (the argument keeps its compatible name).
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
        job = service_id  # the argument's compatible name; the job's UUID
        check_target(execution_id, job, workflow_name, inputs)
        timing = Timing.check(
            task_max_attempts=task_max_attempts,
            task_retry_interval=task_retry_interval,
            cancel_poll_interval=cancel_poll_interval,
            lease_ttl=lease_ttl,
            stage_timeout=stage_timeout,
        )
        self._max_attempts, self._retry_interval = timing.max_attempts, timing.retry_interval
        self._poll, self._lease_ttl, self._timeout = timing.poll, timing.lease_ttl, timing.timeout
        check_executor(executor)
        self.catalog = open_catalog(model_storage, resource_storage)
        self.storage = resource_storage or self.catalog.storage
        self.plugin_manager = plugin_manager or PluginManager.default(self.catalog)
        self.records = ExecutionRecords(self.catalog.store)
        self.clock: Clock = clock or SystemClock()
        self._retry_failed = bool(retry_failed)
        self._index_outputs = bool(index_outputs)
        self._cancel_flag = threading.Event()
        self._executed = False
        self._previous: Execution | None = None  # an up-to-date job's newest success
        self._tasks: dict[str, TaskRecord] = {}
        self._recorder: Recorder | None = None
        self._resumed_from = None if execution_id is None else self._resumable(execution_id)
        job, workflow_ref, given_inputs = self._target(job, workflow_name, inputs)
        self._job = self.catalog.jobs.get(job, include_deleted=True)
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
        if self._runs():
            self._prepare(executor, besides=execution_id)

    # -- construction -----------------------------------------------------------------------

    def _resumable(self, execution_id: str) -> Execution:
        """The execution to resume (its attempts and interval become the runner's)."""
        previous = self.records.execution(execution_id)
        check_resumable(previous, retry_failed=self._retry_failed)
        self._max_attempts = previous.task_max_attempts
        self._retry_interval = previous.task_retry_interval
        return previous

    def _target(
        self, job: str | None, workflow_name: str | Workflow | None, inputs: Any
    ) -> tuple[str, str | Workflow, dict[str, Any]]:
        """The job, the workflow and the inputs: given, or those of the resumed execution."""
        if self._resumed_from is not None:
            previous = self._resumed_from
            return previous.job_uuid, previous.workflow_name, previous.inputs
        assert workflow_name is not None and job is not None
        return str(job), workflow_name, dict(inputs or {})

    def _runs(self) -> bool:
        """Whether the job runs; when it is up to date, find what made its outputs.

        Raises:
            ActiveExecutionsError: Another runner holds the job.
            StaleOutputsError, InvalidTransitionError: The decision's refusal.
        """
        if self.decision.outcome is RunOutcome.HELD:
            lease = self.decision.lease
            raise ActiveExecutionsError(
                self.decision.message, holder=lease.holder if lease is not None else None
            )
        if self.decision.runs:
            return True
        self.decision.raise_for_outcome()  # stale, refused
        # Up to date: nothing is recorded and nothing runs.
        self._previous = self._newest_success()
        if self._previous is not None:
            self._tasks = {t.name: t for t in self.records.tasks(self._previous.id)}
        return False

    def _prepare(self, executor: Executor | None, *, besides: str | None) -> None:
        """Build the graph, check it can be shipped, then record the execution and its tasks."""
        try:
            # The recorded name, everywhere (a declared name is not the function's name).
            self._display_name = self.workflow.display_name(self._inputs, self.workflow_name)
        except InvalidRequestError as exc:
            raise InvalidWorkflowRunnerParams(str(exc)) from exc
        self.executor: Executor = executor if executor is not None else _default_executor()
        self._lease = ExecutionLease(self.catalog, ttl=self._lease_ttl)
        self._check_no_active(besides=besides)
        self._job_info = job_info(
            self._job, self.storage, self.catalog.jobs.job_token(self._job.uuid)
        )
        # The id the execution has (or will have): the workflow function sees it.
        self._new_id = (
            self._resumed_from.id if self._resumed_from else new_execution_id(self._job.uuid)
        )
        built = build_graph(
            self.workflow,
            self.workflow_name,
            execution_id=self._new_id,
            job=self._job_info,
            inputs=self._inputs,
        )
        self._graph, self._workflow_logs = built.graph, built.logs
        self.executor.check([self._invocation(node.name, 1, 1, 0.0, "") for node in self._graph])
        if self._resumed_from is not None:
            self._execution = self._resumed_from
            self._tasks.update(resumed_tasks(self.records, self._execution, self._graph))
        else:
            self._execution = self._new_execution()
        self._recorder = Recorder(
            self.catalog,
            self.records,
            execution=self._execution,
            tasks=self._tasks,
            job_uuid=self._job.uuid,
            token=self._job_info.token,
            workflow_name=self.workflow_name,
            decision=self.decision,
            lease=self._lease,
            executor=self.executor,
            graph=self._graph,
            clock=self.clock,
            max_attempts=self._max_attempts,
            resumed=self._resumed_from is not None,
            retry_failed=self._retry_failed,
            index_outputs=self._index_outputs,
        )

    def _new_execution(self) -> Execution:
        """Record the new execution and its tasks (pending, each with its attempt budget)."""
        execution = self.records.create_execution(
            execution_id=self._new_id,
            job_uuid=self._job.uuid,
            workflow_name=self.workflow_name,
            display_name=self._display_name,
            inputs=self._inputs,
            executor=self.executor.describe(),
            task_max_attempts=self._max_attempts,
            task_retry_interval=self._retry_interval,
        )
        self._tasks.update(
            new_tasks(
                self._graph,
                execution.id,
                max_attempts=self._max_attempts,
                retry_interval=self._retry_interval,
            )
        )
        self.records.create_tasks(list(self._tasks.values()))
        return execution

    # -- the public surface -----------------------------------------------------------------

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
        """The job the execution belongs to (the property keeps its compatible name)."""
        return self.catalog.jobs.get(self._job.uuid)

    @property
    def tasks(self) -> list[TaskRecord]:
        """The execution's task records, in graph order."""
        return sorted(self._tasks.values(), key=lambda t: t.position)

    @property
    def index_report(self) -> IndexReport | None:
        """What indexing the outputs did (after a success with ``index_outputs``)."""
        return self._recorder.index_report if self._recorder is not None else None

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
        return self._execute_leased()

    def _execute_leased(self) -> Execution | None:
        """Take the job's lease, decide again under it, and run."""
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
            self._recording.decision = fresh
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

    def _check_no_active(self, *, besides: str | None) -> None:
        check_no_active(
            self._lease,
            self.records,
            self._job.uuid,
            besides=besides,
            now=self.clock.now(),
            on_closed=lambda execution: log.warning(
                "closed execution %s: its lease lapsed", execution.id
            ),
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

    def _attempt(self, task: TaskRecord, attempt: int) -> Invocation:
        """What the executor gets for ``attempt`` of ``task`` of this execution."""
        return self._invocation(
            task.name, attempt, task.max_attempts, task.retry_interval, self._execution.id
        )

    # -- signals ----------------------------------------------------------------------------

    @property
    def _recording(self) -> Recorder:
        assert self._recorder is not None  # made for every execution that runs
        return self._recorder

    def _emit(self, signal: NamedSignal, **kwargs: Any) -> None:
        """Record what ``signal`` means, then send it to its subscribers.

        The recorder's errors propagate; a subscriber's are logged and change nothing.
        """
        self._recording.record(signal.name, **kwargs)
        for receiver in signal.receivers_for(self):
            try:
                receiver(self, **kwargs)
            except Exception:
                log.exception("a subscriber of %s raised; the execution goes on", signal.name)

    # -- running ----------------------------------------------------------------------------

    def _run(self) -> Execution:
        self._emit(events.start_workflow_signal, execution=self._execution)
        if self._execution.status != "started":  # cancelled meanwhile, from elsewhere
            self._emit(events.on_cancelled_workflow_signal, execution=self._execution, ran=False)
            return self._execution
        recorder = self._recording
        recorder.write_logs(self._workflow_logs.records)
        loop = ExecutionLoop(
            self._execution,
            {task.name: task for task in self.tasks},
            executor=self.executor,
            recorder=recorder,
            emit=self._emit,
            invoke=self._attempt,
            clock=self.clock,
            poll=self._poll,
            cancel_flag=self._cancel_flag,
            cancel_requested=lambda: self.records.cancel_requested(self._execution.id),
            timeout=self._timeout,
        )
        try:
            end = loop.run()
        except BaseException as exc:
            self._abandon(exc, started=loop.started)
            raise
        finally:
            if loop.started:
                self.executor.close()
            recorder.close()
        return self._conclude(end)

    def _conclude(self, end: LoopEnd) -> Execution:
        """Record how the execution ended; raise when it failed."""
        if end.cancelled:
            self._emit(events.on_cancelled_workflow_signal, execution=self._execution)
            return self._execution
        if end.root_error is None and end.timed_out:
            message = (
                f"workflow {self.workflow_name} did not end within its stage_timeout "
                f"of {self._timeout:g} s: no attempt started after it, running ones were stopped"
            )
            error = {"type": "StageTimeout", "message": message, "traceback": None}
            self._fail(error, "timeout", f"workflow {self.workflow_name} failed: {message}")
        if end.root_error is not None:
            root = end.root_error
            self._fail(
                root,
                "task_failed",
                f"workflow {self.workflow_name} failed: task {root.get('task')} raised "
                f"{root['type']}: {root['message']}",
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

    def _fail(self, error: dict[str, Any], reason: str, message: str) -> NoReturn:
        self._emit(
            events.on_failure_workflow_signal, execution=self._execution, error=error, reason=reason
        )
        raise WorkflowFailedError(message, execution=self._execution)

    def _abandon(self, exc: BaseException, *, started: bool) -> None:
        """The runner itself failed: record that on the execution and the job if possible."""
        try:
            if started:
                self.executor.cancel()
            try:
                self._recording.flush_tasks()
            except Exception:
                log.exception("a task record of execution %s was not written", self._execution.id)
            try:
                self._recording.flush_logs(force=True)
            except Exception:
                log.exception("the log of execution %s was not written", self._execution.id)
            self._emit(
                events.on_failure_workflow_signal,
                execution=self._execution,
                error=error_info(exc),
                reason="error",
            )
        except Exception:
            log.exception("could not record the failure of execution %s", self._execution.id)


def _default_executor() -> Executor:
    from datacatalog.orchestrator.executors.process import ProcessExecutor

    return ProcessExecutor()
