"""Running a planned populate: each job that is not up to date, under its lease.

For every planned job, in one of ``backend.slots`` slots at a time:

* a job that ran (FINISHED or later) is checked by the re-run decision
  (:func:`datacatalog.jobs.reruns.decide`: its indexed outputs verified by SHA-256):
  up to date → nothing runs (the check is recorded as a ``reuse`` event); stale →
  counted, or run again with ``if_stale="rerun"``; RETIRED, RESET, deleted → refused;
* any other job is run by a stage driver (:class:`datacatalog.driver.Driver`), whose
  execute step hands the work to the backend. Its lease is the reservation: the slot
  first takes the lease for the driver, then reads the job under it. A job whose
  events moved on since planning was handled by another populate (or anyone else):
  FINISHED → the decision finds it up to date; FAILED → counted as failed elsewhere,
  never run again here (a FAILED job is run again only when it was FAILED as planned
  and nothing happened to it since). Then the driver starts (taking its own lease
  again only renews it), and the re-run decision under the lease picks ``run``,
  ``retry`` or a take-over;
* with a workflow as the work, a workflow runner takes the driver's place (the lease is
  taken first for its execution id, in the same way; see :mod:`.workflows`).

So two populates on one catalog, started at once, never run a job twice at once and run
each job once between them: the second finds each job leased (held elsewhere) or already
done. A job the first one had already failed when the second planned is FAILED as
planned, and runs again there as it would in any later populate; a job found held is not
a failure of this populate, whatever becomes of it elsewhere.

A failing job does not stop the others; ``max_failures`` stops starting new ones after
that many. :meth:`PopulateRun.stop` (the command line calls it on SIGINT/SIGTERM)
starts nothing more and cancels the running drivers: their jobs fail with reason
``cancelled`` and their leases are released.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datacatalog import states
from datacatalog.errors import (
    ActiveExecutionsError,
    DataCatalogError,
    InvalidRequestError,
    InvalidTransitionError,
    StaleOutputsError,
)
from datacatalog.jobs.reruns import IF_STALE, Decision, Outcome, decide, record_up_to_date
from datacatalog.populate.executors import Backend, WorkCancelled, WorkItem
from datacatalog.populate.planning import PlannedJob, PopulatePlan
from datacatalog.populate.work import Task
from datacatalog.populate.workflows import WorkflowWork
from datacatalog.selection import Entity

if TYPE_CHECKING:
    from datacatalog.catalog import Catalog
    from datacatalog.driver import Driver, DriverResult, Payload
    from datacatalog.jobs.model import Lease
    from datacatalog.orchestrator.model import Execution
    from datacatalog.orchestrator.workflow_runner import WorkflowRunner

OUTCOMES = (
    "ran",
    "up_to_date",
    "failed",
    "held",
    "stale",
    "refused",
    "cancelled",
    "not_started",
    "would_run",
)
"""A job's outcome in a populate, in the order the counts are shown."""

FAILURES = frozenset({"failed", "cancelled"})
DONE_STATES = frozenset(states.UP_TO_DATE_STATES)

Work = Callable[..., Any]
"""``work(*arguments, task, cancelled=...)``: what runs for a job on the backend
(``run_command`` or ``call_function`` of :mod:`datacatalog.populate.work`)."""


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one planned job.

    Attributes:
        entity: The selected entity.
        job: The job's UUID.
        outcome: One of :data:`OUTCOMES`.
        state: The job's state at the end, as last seen.
        reason: Why (a failure's reason, a refusal's state, ``elsewhere`` ...), if any.
        message: One line for people.
    """

    entity: Entity
    job: str
    outcome: str
    state: str | None
    reason: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "entity": {"uuid": self.entity.uuid, "id": self.entity.id},
            "job": self.job,
            "outcome": self.outcome,
            "state": self.state,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(frozen=True)
class PopulateReport:
    """What a populate did (or, for a dry run, would do), job by job."""

    pipeline_id: str
    pipeline_uuid: str
    parameters: dict[str, Any]
    level: str
    executor: str
    dry_run: bool
    outcomes: tuple[JobOutcome, ...]
    stopped: str | None = None  # "max_failures", "SIGINT", "SIGTERM", "stopped"

    @property
    def counts(self) -> dict[str, int]:
        """Jobs per outcome (every outcome of :data:`OUTCOMES` that occurred)."""
        found: dict[str, int] = {}
        for item in self.outcomes:
            found[item.outcome] = found.get(item.outcome, 0) + 1
        return {name: found[name] for name in OUTCOMES if name in found}

    @property
    def failed(self) -> bool:
        """Whether any job failed or was cancelled, or the populate was stopped."""
        return self.stopped is not None or any(o.outcome in FAILURES for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "pipeline": {"id": self.pipeline_id, "uuid": self.pipeline_uuid},
            "parameters": self.parameters,
            "level": self.level,
            "executor": self.executor,
            "dry_run": self.dry_run,
            "jobs": len(self.outcomes),
            "counts": self.counts,
            "failed": self.failed,
            "stopped": self.stopped,
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


class PopulateRun:
    """Runs the jobs of a plan on a backend (see the module docstring).

    Args:
        catalog: The catalog.
        plan: The planned jobs.
        backend: Where the work runs.
        work: ``work(*arguments, task, cancelled=...)`` for each job; ``arguments``
            come first (the command, or the callable).
        arguments: Leading arguments of ``work`` (plain values: they travel to workers).
        grace: Seconds a cancelled piece of work may take to stop (a command's).
        index: Index each job's outputs after success.
        max_attempts: Execute attempts per job in all.
        timeout: Stage timeout per job, in seconds.
        if_stale: ``error`` (count stale jobs, run nothing) or ``rerun``.
        max_failures: Start no new job after this many failed.
        on_outcome: Called with each job's outcome as it is known (from slot threads).
        workflow: A workflow to run once per job instead of ``work``.
    """

    def __init__(
        self,
        catalog: Catalog,
        plan: PopulatePlan,
        *,
        backend: Backend,
        work: Work | None = None,
        arguments: tuple[Any, ...] = (),
        grace: float = 0.0,
        index: bool = True,
        max_attempts: int = 1,
        timeout: float | None = None,
        if_stale: str = "error",
        max_failures: int | None = None,
        on_outcome: Callable[[JobOutcome], None] | None = None,
        workflow: WorkflowWork | None = None,
    ) -> None:
        check_options(if_stale=if_stale, max_failures=max_failures)
        if work is None and workflow is None and not plan.dry_run:
            raise InvalidRequestError(
                "populate needs work to run: a command, a callable or a workflow"
            )
        self.catalog = catalog
        self.plan = plan
        self.backend = backend
        self.work = work
        self.arguments = arguments
        self.grace = grace
        self.index = index
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.if_stale = if_stale
        self.max_failures = max_failures
        self.on_outcome = on_outcome
        self.workflow = workflow
        self._runners: set[Any] = set()  # workflow runners running now
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stopped: str | None = None
        self._failures = 0
        self._drivers: set[Driver] = set()

    # -- control ---------------------------------------------------------------------------

    def stop(self, reason: str = "stopped", *, cancel: bool = True) -> None:
        """Start nothing more; cancel the running jobs (they fail with reason ``cancelled``).

        With ``cancel=False`` the running jobs are left to end by themselves.
        """
        with self._lock:
            if self._stopped is None:
                self._stopped = reason
            self._stop.set()
            drivers = list(self._drivers) if cancel else []
            runners = list(self._runners) if cancel else []
        for driver in drivers:
            driver.cancel()
        for runner in runners:
            with suppress(DataCatalogError):
                runner.cancel()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called, or ``max_failures`` reached."""
        return self._stop.is_set()

    # -- running ---------------------------------------------------------------------------

    def run(self) -> PopulateReport:
        """Run (or, for a dry run, judge) every planned job; the report of what happened."""
        jobs = self.plan.jobs
        results: list[JobOutcome | None] = [None] * len(jobs)
        one = self._judge if self.plan.dry_run else self._run_one
        with ThreadPoolExecutor(
            max_workers=self.backend.slots, thread_name_prefix="populate-slot"
        ) as pool:
            futures = [pool.submit(self._slot, one, job) for job in jobs]
            for i, future in enumerate(futures):
                while True:
                    try:
                        results[i] = future.result()
                        break
                    except KeyboardInterrupt:  # Ctrl-C in a program calling populate
                        self.stop("SIGINT")
        outcomes = tuple(r for r in results if r is not None)
        found = self.plan.pipeline
        return PopulateReport(
            pipeline_id=found.id,
            pipeline_uuid=found.uuid,
            parameters=self.plan.parameters,
            level=self.plan.selection.kind,
            executor=self.backend.describe(),
            dry_run=self.plan.dry_run,
            outcomes=outcomes,
            stopped=self._stopped,
        )

    def _slot(self, one: Callable[[PlannedJob], JobOutcome], job: PlannedJob) -> JobOutcome:
        if self._stop.is_set():
            result = _outcome(job, "not_started", job.state, reason=self._stopped)
        else:
            try:
                result = one(job)
            except DataCatalogError as exc:  # the catalog refused or failed for this job
                result = _outcome(job, "failed", job.state, reason=exc.code, message=str(exc))
            except BaseException:
                # Unexpected: start nothing more (the others end as "not_started") and say it.
                self.stop("error", cancel=False)
                raise
        if result.outcome == "failed":
            with self._lock:
                self._failures += 1
                reached = self.max_failures is not None and self._failures >= self.max_failures
                if reached and self._stopped is None:
                    self._stopped = "max_failures"
            if reached:
                self._stop.set()  # running jobs go on; nothing new starts
        if self.on_outcome is not None:
            with suppress(Exception):  # a progress display never changes the outcome
                self.on_outcome(result)
        return result

    def _judge(self, job: PlannedJob) -> JobOutcome:
        """A dry run: what would happen to ``job`` (reads only)."""
        if job.state is None:
            return _outcome(job, "would_run", None, reason="new", message="would be created")
        if job.state == "CREATED" and job.visible:
            return _outcome(job, "would_run", "CREATED", reason="run")
        decision = decide(self.catalog, job.uuid, if_stale=self.if_stale)
        if decision.runs:
            return _outcome(
                job,
                "would_run",
                decision.job.state,
                reason=decision.outcome.value,
                message=decision.message,
            )
        return self._from_decision(job, decision, record=False)

    def _run_one(self, job: PlannedJob) -> JobOutcome:
        if not job.visible or job.state in DONE_STATES or job.state in ("RETIRED", "RESET"):
            decision = decide(self.catalog, job.uuid, if_stale=self.if_stale)
            if not decision.runs:
                return self._from_decision(job, decision, record=True)
        if self.workflow is not None:
            return self._run_workflow(job, self.workflow)
        return self._drive(job)

    def _from_decision(
        self, job: PlannedJob, decision: Decision, *, record: bool = False
    ) -> JobOutcome:
        outcome = {
            Outcome.UP_TO_DATE: "up_to_date",
            Outcome.STALE: "stale",
            Outcome.HELD: "held",
            Outcome.REFUSED: "refused",
        }.get(decision.outcome, "would_run")
        if record and decision.up_to_date:
            record_up_to_date(self.catalog, decision)
        return _outcome(
            job, outcome, decision.job.state, reason=decision.reason, message=decision.message
        )

    def _drive(self, job: PlannedJob) -> JobOutcome:
        """Run ``job`` under a stage driver, its lease taken first (the reservation)."""
        from datacatalog.driver import Driver

        catalog = self.catalog
        token = catalog.jobs.job_token(job.uuid)
        task = self._task(job, token)
        driver = Driver(
            job.uuid,
            catalog=catalog,
            token=token,
            execute=self._execute_step(task),
            index_outputs=self.index,
            max_attempts=self.max_attempts,
            stage_timeout=self.timeout,
            if_stale=self.if_stale,
        )
        try:
            lease = catalog.leases.acquire(job.uuid, holder=driver.id, kind="driver")
        except ActiveExecutionsError as exc:
            return _outcome(job, "held", "RUNNING", reason="held", message=str(exc))
        try:
            elsewhere = self._moved_on(job)
            if elsewhere is not None:
                catalog.leases.release(lease)
                return elsewhere
            with self._lock:
                if self._stop.is_set():
                    catalog.leases.release(lease)
                    return _outcome(job, "not_started", job.state, reason=self._stopped)
                self._drivers.add(driver)
            self._prepare_archive(job)
            # Decides again under the lease (ours: the driver's id holds it), then runs.
            driver.start()
        except ActiveExecutionsError as exc:
            return self._refused(job, driver, lease, "held", exc)
        except StaleOutputsError as exc:
            return self._refused(job, driver, lease, "stale", exc)
        except InvalidTransitionError as exc:
            return self._refused(job, driver, lease, "refused", exc)
        except BaseException:
            self._let_go(driver, lease)
            raise
        # The driver releases the lease; waits in slices so that a stop is seen.
        while not driver.wait(0.2):
            pass
        result = driver.wait_for_completion()
        if result.lease_released:
            with self._lock:
                self._drivers.discard(driver)
        else:  # it found the job up to date and never ran: the lease taken here goes back
            self._let_go(driver, lease)
        return _from_result(job, result)

    def _run_workflow(self, job: PlannedJob, work: WorkflowWork) -> JobOutcome:
        """Run ``job`` as one execution of the workflow, its lease taken first."""
        from datacatalog.orchestrator.exceptions import WorkflowFailedError
        from datacatalog.orchestrator.workflow_runner import WorkflowRunner

        catalog = self.catalog
        try:
            runner = WorkflowRunner(
                catalog,
                None,
                None,
                service_id=job.uuid,
                workflow_name=work.workflow,
                inputs=work.inputs_for(self.plan.selection.kind, job.entity),
                executor=self.backend.workflow_executor(),
                task_max_attempts=self.max_attempts,
                task_retry_interval=0,
            )
        except ActiveExecutionsError as exc:
            return _outcome(job, "held", job.state, reason="held", message=str(exc))
        except StaleOutputsError as exc:  # finished elsewhere since planning, then changed
            return _outcome(job, "stale", _state(catalog, job), reason="stale", message=str(exc))
        except InvalidTransitionError as exc:
            return _outcome(job, "refused", job.state, reason=job.state, message=str(exc))
        if runner.up_to_date:  # finished elsewhere since planning: the check is recorded
            runner.execute()
            return self._from_decision(job, runner.decision)
        execution_id = runner.execution_id
        assert execution_id is not None  # the runner runs: its execution is recorded
        try:
            lease = catalog.leases.acquire(job.uuid, holder=execution_id, kind="workflow")
        except ActiveExecutionsError as exc:
            _close_unrun(runner)
            return _outcome(job, "held", "RUNNING", reason="held", message=str(exc))
        elsewhere = self._moved_on(job)
        with self._lock:
            stopped = self._stop.is_set()
            if elsewhere is None and not stopped:
                self._runners.add(runner)
        if elsewhere is not None or stopped:
            with suppress(DataCatalogError):
                catalog.leases.release(lease)
            _close_unrun(runner)
            return elsewhere or _outcome(job, "not_started", job.state, reason=self._stopped)
        try:
            self._prepare_archive(job)
            # Takes the same lease again and decides again under it; releases it at the end.
            execution = runner.execute()
        except WorkflowFailedError as exc:
            error = exc.execution.error or {}
            message = str(error.get("message") or exc)
            return _outcome(job, "failed", _state(catalog, job), reason="failed", message=message)
        except StaleOutputsError as exc:
            return _outcome(job, "stale", _state(catalog, job), reason="stale", message=str(exc))
        except InvalidTransitionError as exc:
            return _outcome(
                job, "refused", _state(catalog, job), reason="refused", message=str(exc)
            )
        finally:
            with self._lock:
                self._runners.discard(runner)
        return self._workflow_ran(job, runner, execution)

    def _workflow_ran(
        self, job: PlannedJob, runner: WorkflowRunner, execution: Execution | None
    ) -> JobOutcome:
        """The outcome of a workflow execution that ended without raising."""
        if runner.decision.up_to_date:  # done elsewhere meanwhile (found under the lease)
            return self._from_decision(job, runner.decision)
        assert execution is not None  # a run execution is returned
        state = _state(self.catalog, job)
        if execution.status == "succeeded":
            return _outcome(job, "ran", state, message=f"execution {execution.id}")
        return _outcome(
            job, "cancelled", state, reason="cancelled",
            message=f"execution {execution.id} {execution.status}",
        )  # fmt: skip

    def _refused(
        self, job: PlannedJob, driver: Driver, lease: Lease, outcome: str, error: DataCatalogError
    ) -> JobOutcome:
        """The driver's decision under the lease ran nothing (held, stale, refused)."""
        self._let_go(driver, lease)
        state = driver.job.state if driver.job is not None else job.state
        reason = str(error.details.get("reason") or outcome)
        return _outcome(job, outcome, state, reason=reason, message=str(error))

    def _let_go(self, driver: Driver, lease: Lease) -> None:
        with suppress(DataCatalogError):
            self.catalog.leases.release(lease)
        with self._lock:
            self._drivers.discard(driver)

    def _moved_on(self, job: PlannedJob) -> JobOutcome | None:
        """Under the lease: the outcome of a job someone else failed since planning, else None.

        Events since planning show as a longer history; a job that FAILED meanwhile was
        run (and failed) elsewhere and is not run again here.
        """
        found = self.catalog.store.find(
            "job",
            {"uuid": job.uuid},
            projection={"state": 1, "_properties.history_bytes": 1},
            limit=1,
        )
        if not found:
            return _outcome(job, "refused", None, reason="deleted", message="job is gone")
        doc = found[0]
        moved = int(doc["_properties"].get("history_bytes", 0)) != job.history_bytes
        if moved and doc["state"] == "FAILED":
            return _outcome(
                job,
                "failed",
                "FAILED",
                reason="elsewhere",
                message=f"job {job.uuid} failed in another execution while this populate ran",
            )
        return None

    def _task(self, job: PlannedJob, token: str) -> Task:
        system = self.catalog.storage.get(job.archive_system)
        return Task(
            job_uuid=job.uuid,
            token=token,
            entity_kind=self.plan.selection.kind,
            entity_id=job.entity.id,
            entity_uuid=job.entity.uuid,
            parameters=dict(self.plan.parameters),
            archive_dir=system.resolve(job.archive_path),
        )

    def _prepare_archive(self, job: PlannedJob) -> None:
        self.catalog.storage.get(job.archive_system).makedirs(job.archive_path)

    def _execute_step(self, task: Task) -> Callable[[Driver, Payload], Any]:
        backend, work, arguments, grace = self.backend, self.work, self.arguments, self.grace
        assert work is not None

        def execute(driver: Driver, payload: Payload) -> Any:
            try:
                return backend.call(
                    WorkItem(
                        fn=work,
                        args=(*arguments, task),
                        cancelled=lambda: driver.cancel_requested,
                        key=task.job_uuid,
                        grace=grace,
                    )
                )
            except WorkCancelled:
                return False  # the driver fails the job with reason "cancelled"

        return execute


def _close_unrun(runner: Any) -> None:
    """Close a workflow execution that will not run (recorded as cancelled, nothing ran)."""
    with suppress(DataCatalogError):
        runner.cancel()
        runner.execute()


def _state(catalog: Catalog, job: PlannedJob) -> str | None:
    found = catalog.store.find("job", {"uuid": job.uuid}, projection={"state": 1}, limit=1)
    return str(found[0]["state"]) if found else None


def check_options(*, if_stale: str, max_failures: int | None) -> None:
    """Refuse a bad ``if_stale`` or ``max_failures``, naming it."""
    if if_stale not in IF_STALE:
        raise InvalidRequestError(
            f"if_stale must be one of {', '.join(IF_STALE)}, not {if_stale!r}"
        )
    if max_failures is not None and (
        isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 1
    ):
        raise InvalidRequestError(f"max_failures must be a whole number >= 1, not {max_failures!r}")


def _from_result(job: PlannedJob, result: DriverResult) -> JobOutcome:
    if result.up_to_date:  # done elsewhere since planning, and its outputs verify
        return _outcome(job, "up_to_date", result.state, message=result.message)
    if result.succeeded:
        return _outcome(job, "ran", result.state, message=f"job {job.uuid} {result.state}")
    error = result.error or result.event_error or {}
    outcome = "cancelled" if result.reason == "cancelled" else "failed"
    return _outcome(
        job,
        outcome,
        result.state,
        reason=result.reason,
        message=str(error.get("message") or result.reason),
    )


def _outcome(
    job: PlannedJob,
    outcome: str,
    state: str | None,
    *,
    reason: str | None = None,
    message: str | None = None,
) -> JobOutcome:
    return JobOutcome(job.entity, job.uuid, outcome, state, reason=reason, message=message)
