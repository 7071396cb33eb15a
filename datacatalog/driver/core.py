"""The stage driver: run pipeline code under a managed job, as an operator life-cycle.

::

    start()  take the lease → post run                      (in the caller's thread)
             prepare(driver) → execute(driver, payload) xN → cleanup(driver)
             → finish [→ index outputs] | fail → release the lease
                                                             (on the driver's threads)

:class:`Driver` is the life-cycle's public face: its arguments, what it tells about the
job, and ``start``, ``wait``, ``cancel``. Its parts are modules of their own:

- :mod:`~datacatalog.driver.starting`: the re-run decision, the lease and the first event,
  in the caller's thread; a job refused or up to date ends there.
- :mod:`~datacatalog.driver.supervisor`: the supervisor thread runs prepare, the execute
  attempts and cleanup on worker threads (:mod:`~datacatalog.driver.workers`), under the
  stage timeout, while a heartbeat renews the lease.
- :mod:`~datacatalog.driver.ending`: the terminal event, posted once, sent again while the
  database is unavailable until the lease would run out; the outputs indexed when asked.
- :mod:`~datacatalog.driver.notifications`: ``notify`` and the history's ``update`` events.

A cancel either lands before the decision that ends the life-cycle (and the job fails with
reason ``cancelled``) or after it (and returns False): one terminal event, always. Every
event the driver sends carries an idempotency key made of its own id (the lease holder)
and the event (``driver-…:run``, ``driver-…:finish``, ``driver-…:note-3``), so sending one
again is always safe.
"""

from __future__ import annotations

import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from datacatalog.clock import utc_now
from datacatalog.driver import options
from datacatalog.driver.ending import Ending
from datacatalog.driver.notifications import (
    MAX_NOTIFICATION_MESSAGE,
    MAX_RECORDED_NOTIFICATIONS,
    RECORDED,
)
from datacatalog.driver.options import DEFAULT_CLEANUP_GRACE
from datacatalog.driver.source import JobSource, resolve
from datacatalog.driver.starting import Starting
from datacatalog.driver.state import RUNNING, StageOutcome
from datacatalog.driver.supervisor import POLL, Supervising
from datacatalog.driver.values import (
    DriverAbort,
    DriverError,
    DriverResult,
    Entry,
    Notification,
    Payload,
    error_record,
)
from datacatalog.driver.workers import WORKERS, Call, Workers, failure
from datacatalog.errors import DataCatalogError
from datacatalog.jobs import Job, JobPlan
from datacatalog.jobs.leases import DEFAULT_TTL, Heartbeat
from datacatalog.jobs.reruns import Decision
from datacatalog.store import Document, Store

if TYPE_CHECKING:
    from datacatalog.catalog import Catalog

Prepare = Callable[["Driver"], Any]
Execute = Callable[["Driver", Payload], Any]
Notify = Callable[["Driver", Notification], Any]

# The names this module held before its parts became modules of their own.
_Workers, _WORKERS, _Call, _failure = Workers, WORKERS, Call, failure
_Outcome, _RECORDED, _POLL = StageOutcome, RECORDED, POLL
_seconds, _timeout = options.seconds, options.stage_timeout


class Driver(Starting, Supervising, Ending):
    """Runs ``prepare`` → ``execute`` → ``cleanup`` under a managed job.

    Args:
        job: A job UUID, a :class:`~datacatalog.jobs.Job`, a
            :class:`~datacatalog.jobs.JobPlan` (``catalog.jobs.plan(...)``: the job is
            created in the same write that takes its lease and sends ``run``, or found
            when it exists), a compatibility-API object holding one, or None to take the
            job from the environment (``DATACATALOG_JOB_UUID``, ``DATACATALOG_JOB_TOKEN``).
        prepare: ``prepare(driver)``, called once before execute.
        execute: ``execute(driver, payload)``, retried up to ``max_attempts`` in all.
        cleanup: ``cleanup(driver)``, called once on every path.
        notify: ``notify(driver, notification)`` for significant events; what it raises
            is ignored.
        app_data: Any object, handed back as :attr:`app_data`.
        stage_name: The stage's name (default: the pipeline's id).
        stage_timeout: Bound on the whole stage (a ``timedelta`` or seconds).
        max_attempts: Execute attempts in all (at least 1).
        retry_interval: Seconds between attempts.
        index_outputs: Index the archive path after a successful stage.
        catalog: The catalog the job is in (default: the compatibility object's, or the
            configured one).
        store: A store to open the catalog on, instead of ``catalog``.
        token: The job token, checked with every event (default: the compatibility
            object's, or ``DATACATALOG_JOB_TOKEN``).
        lease_ttl: Seconds the lease lasts unless renewed (renewed every third of it).
        cleanup_grace: Seconds cleanup may take after a timeout.
        clock: Monotonic seconds (default ``time.monotonic``); tests inject one.
        sleep: Waits between attempts (default: a wait that a cancel cuts short).
        env: The environment to read the job from (default ``os.environ``).
        force: Run the job again even when it is up to date (a new execution; its
            earlier file records are superseded).
        if_stale: ``"error"`` (default: ``start()`` raises
            :class:`~datacatalog.errors.StaleOutputsError` naming the files) or
            ``"rerun"`` (run again) when a job that ran has missing or changed outputs.
        verify: How an up-to-date check verifies the outputs: ``"sha256"`` (default)
            or ``"size"``.

    A callback fails when it raises or returns ``False``; ``None`` or any other value is
    success. A callback may poll :attr:`cancel_requested`, and may call :meth:`abort` to
    fail the stage without further attempts.
    """

    def __init__(
        self,
        job: Any = None,
        *,
        prepare: Prepare | None = None,
        execute: Execute | None = None,
        cleanup: Prepare | None = None,
        notify: Notify | None = None,
        app_data: Any = None,
        stage_name: str | None = None,
        stage_timeout: timedelta | float | None = None,
        max_attempts: int = 1,
        retry_interval: float = 0.0,
        index_outputs: bool = False,
        catalog: Catalog | None = None,
        store: Store | None = None,
        token: str | None = None,
        lease_ttl: float = DEFAULT_TTL,
        cleanup_grace: float = DEFAULT_CLEANUP_GRACE,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] | None = None,
        env: Mapping[str, str] | None = None,
        force: bool = False,
        if_stale: str = "error",
        verify: str = "sha256",
    ) -> None:
        self._rerun_options = options.rerun_options(force, if_stale, verify)
        options.check_callbacks(prepare=prepare, execute=execute, cleanup=cleanup, notify=notify)
        self._max_attempts = options.max_attempts(max_attempts)
        self._retry_interval = options.seconds(retry_interval, "retry_interval", zero=True)
        self._grace = options.seconds(cleanup_grace, "cleanup_grace", zero=True)
        self._timeout = options.stage_timeout(stage_timeout)
        stage_name = options.stage_name(stage_name)
        self._lease_ttl = options.seconds(lease_ttl, "lease_ttl")
        self._prepare, self._execute, self._cleanup = prepare, execute, cleanup
        self._notify_callback = notify
        self._app_data = app_data
        self._index_outputs = bool(index_outputs)
        self._clock = clock or time.monotonic
        self._sleep = sleep

        self._source: JobSource = resolve(job, catalog=catalog, store=store, token=token, env=env)
        self._new_job = None
        try:
            if isinstance(job, JobPlan):
                job, self._new_job = self._planned(job)
            if isinstance(job, Job) and job.state == "CREATED" and job.visible:
                # A job just created is not read again: the start is conditional on its
                # state, and a job that moved on meanwhile is decided again on a read.
                self._job = job
            else:
                # A deleted job is read too: start() refuses it, naming what to do.
                self._job = self.catalog.jobs.get(self._source.job_uuid, include_deleted=True)
            pipeline = self.catalog.pipelines.get(self._job.pipeline_uuid)
        except BaseException:
            self._close_catalog()
            raise
        self._job_name = self._job.task or pipeline.name
        self._stage_name = stage_name or pipeline.id
        self.id = f"driver-{uuidlib.uuid4().hex}"

        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._wake = threading.Event()
        self._finished = threading.Event()
        self._started = False
        self._deciding = False
        self._cancel_reason = None
        self._cancel_seen = False
        self._lease = None
        self._released = False
        self._lease_taken_at = 0.0
        self._heartbeat = None
        self._lease_lost = None
        self._result = None
        self._recorded = 0
        self._events = []
        self._started_at = utc_now()
        self._deadline = None
        self._last_error = None
        self._current_phase = None
        self._payload_entries = ([], [])
        self._decision = None

    # -- properties (catalog and lease: DriverState) ------------------------------------

    @property
    def app_data(self) -> Any:
        """The application data given to the constructor, or None."""
        return self._app_data

    @property
    def job_id(self) -> uuidlib.UUID:
        """The job's identity."""
        return uuidlib.UUID(self._source.job_uuid)

    @property
    def job_name(self) -> str:
        """The job's task name, else its pipeline's name."""
        return self._job_name

    @property
    def stage_name(self) -> str:
        """The stage's name (default: the pipeline's id)."""
        return self._stage_name

    @property
    def stage_timeout(self) -> timedelta | None:
        """The bound on the whole stage, or None."""
        return self._timeout

    @property
    def token(self) -> str | None:
        """The job token the driver's events carry (None in-process, where none is needed)."""
        return self._source.token

    @property
    def job(self) -> Job:
        """The job as last read or written by the driver."""
        return self._job

    @property
    def cancel_requested(self) -> bool:
        """True once a cancel or the stage timeout asks the callbacks to stop."""
        return self._cancel.is_set()

    @property
    def decision(self) -> Decision | None:
        """What running the job came to (:mod:`datacatalog.jobs.reruns`), once started."""
        return self._decision

    @property
    def result(self) -> DriverResult | None:
        """The result once the life-cycle ended, else None."""
        return self._result

    # -- the life-cycle ---------------------------------------------------------------------

    def _planned(self, plan: JobPlan) -> tuple[Job, Document | None]:
        """The job of ``plan`` as it will be created, and its document for the start write.

        Nothing is read or written: the start creates the job, or finds it when it exists
        (then it is decided again on what was read). A plan whose archive path is
        instanced or explicit is created first, as ``jobs.create`` does, since claiming
        its path may take several tries or a check against other jobs.
        """
        jobs = self.catalog.jobs
        if plan.instanced or plan.explicit_path:
            created, _ = jobs.create(plan)
            return created, None
        # An unknown system, or a path leaving its root, is refused before any write.
        self.catalog.storage.get(plan.archive_system).resolve(plan.archive_path)
        document = jobs.planner.document(plan)
        return Job.from_document(document), document

    def start(self) -> None:
        """Begin the life-cycle and return at once (the callbacks run on the driver's threads).

        Raises:
            DriverError: ``start()`` was called before.
            ActiveExecutionsError: Another driver or workflow run holds the job's lease.
            StaleOutputsError: The job ran, its outputs changed, and ``if_stale="error"``.
            InvalidTransitionError: The job's state does not allow ``run``.
        """
        with self._lock:
            if self._started:
                raise DriverError(f"driver {self.id} was started already; start() runs once")
            self._started = True
            cancelled = self._cancel.is_set()
        self._started_at = utc_now()
        if cancelled:  # cancelled before start: nothing runs, nothing is posted
            self._complete(StageOutcome(reason="cancelled"), events_posted=False)
            return
        try:
            runs = self._begin()
        except BaseException:
            # Refused before anything ran: the driver is over (a wait does not block).
            with self._lock:
                self._deciding = True
            self._finished.set()
            self._close_catalog()
            raise
        if not runs:  # up to date: the life-cycle is over
            return
        assert self._lease is not None  # the job runs: the lease is ours
        self._heartbeat = Heartbeat(
            self.catalog.leases, self._lease, on_lost=self._on_lease_lost, clock=self._clock
        )
        self._heartbeat.renewed_at = self._lease_taken_at
        self._heartbeat.start()
        if self._timeout is not None:
            self._deadline = self._clock() + self._timeout.total_seconds()
        # On a reused daemon thread; the process waits for it at exit (RUNNING).
        RUNNING.add(self)
        WORKERS.submit(self._supervise)

    def wait_for_completion(self, timeout: float | None = None) -> DriverResult:
        """Block until the life-cycle ended; return its result (the same one every time).

        Args:
            timeout: Seconds to wait at most (None: as long as it takes).

        Raises:
            DriverError: The driver was never started (nothing blocks), or ``timeout``
                passed first.
        """
        with self._lock:
            started = self._started
        if not started:
            raise DriverError(f"driver {self.id} was not started: call start() first")
        if not self._finished.wait(timeout):
            raise DriverError(f"driver {self.id} did not complete within {timeout} seconds")
        if self._result is None:  # start() itself was refused
            raise DriverError(f"driver {self.id} did not start: start() raised")
        return self._result

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the life-cycle to end; return whether it has.

        Unlike :meth:`wait_for_completion`, a short wait that runs out is not an error
        (a caller can wait in slices and stay responsive to signals).
        """
        return self._finished.wait(timeout)

    def cancel(self) -> bool:
        """Ask the life-cycle to stop; returns whether the request had any effect.

        Before ``start()``, nothing will run and no event is posted. While running, no
        new phase or attempt starts, cleanup runs and the job fails with reason
        ``cancelled``. After completion (or a second time) it does nothing.
        """
        with self._lock:
            if self._deciding or self._cancel.is_set():
                return False
            self._cancel_reason = "cancelled"
            self._cancel.set()
        self._wake.set()
        return True

    def abort(self, message: str = "aborted") -> None:
        """Called from a callback: fail the stage now, without further attempts."""
        raise DriverAbort(message)

    def _supervise(self) -> None:
        """The supervisor: the callbacks, then the terminal event."""
        outcome = StageOutcome()
        try:
            try:
                self._lifecycle(outcome)
            except BaseException as exc:  # our own failure (the store, a bug): end cleanly
                reason = "store_failed" if isinstance(exc, DataCatalogError) else "driver_failed"
                outcome.fail(reason, self._current_phase or "execute", error_record(exc))
            self._finish(outcome)
        finally:
            RUNNING.discard(self)

    def __repr__(self) -> str:
        return f"Driver(job={self._source.job_uuid!r}, stage={self._stage_name!r}, id={self.id!r})"


__all__ = [
    "DEFAULT_CLEANUP_GRACE",
    "MAX_NOTIFICATION_MESSAGE",
    "MAX_RECORDED_NOTIFICATIONS",
    "Driver",
    "DriverAbort",
    "DriverError",
    "DriverResult",
    "Entry",
    "Execute",
    "Notification",
    "Notify",
    "Payload",
    "Prepare",
]
