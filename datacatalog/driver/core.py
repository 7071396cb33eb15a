"""The stage driver: run pipeline code under a managed job, as an operator life-cycle.

::

    start()  take the lease → post run                      (in the caller's thread)
             prepare(driver) → execute(driver, payload) xN → cleanup(driver)
             → finish [→ index outputs] | fail → release the lease
                                                             (on the driver's threads)

``start()`` decides what running the job comes to (:mod:`datacatalog.jobs.reruns`, the
decision every entry point shares), takes the job's lease and posts the event that
begins the execution (``run``; ``retry`` for a FAILED job; ``rerun`` when forced or
stale) in the caller's thread, so that a job already running elsewhere
(:class:`~datacatalog.errors.ActiveExecutionsError`), stale
(:class:`~datacatalog.errors.StaleOutputsError`) or in a state that cannot run is
refused at once, with nothing else done. A job that is up to date runs nothing:
``start()`` records the check (a ``reuse`` event) and the life-cycle is over, with a
result that says ``up_to_date`` and what was verified. The rest runs on
a supervisor thread; each callback runs on a worker thread (reused across life-cycles;
a stuck callback keeps its own) so that the supervisor can stop waiting for one that is
stuck (the stage timeout). A heartbeat
renews the lease meanwhile.

The supervisor alone posts the terminal event. The decision (finish, or fail with a
reason) is taken once, under the lock that :meth:`Driver.cancel` takes too: a cancel
either lands before the decision (and the job fails with reason ``cancelled``) or after
it (and returns False). So a cancel racing completion yields exactly one terminal event.
A lease lost to another execution (this driver stopped renewing in time) posts no
terminal event at all: the job is someone else's now.

Every event the driver sends carries an idempotency key made of its own id (the lease
holder) and the event (``driver-…:run`` or ``:retry``, ``driver-…:finish``,
``driver-…:note-3``), so sending one again is always safe. While the database is
unavailable (a replica set electing a new primary), the terminal event, the reads that
decide it and the lease release are sent again until the lease would run out (the last
renewal plus its time to live); only then does the stage end ``store_failed``.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from datacatalog.clock import utc_now
from datacatalog.driver.source import JobSource, resolve
from datacatalog.driver.values import (
    DriverAbort,
    DriverError,
    DriverResult,
    Entry,
    Notification,
    Payload,
    cut,
    error_record,
)
from datacatalog.errors import (
    DataCatalogError,
    InvalidRequestError,
    InvalidTransitionError,
    LeaseLostError,
)
from datacatalog.jobs import Job
from datacatalog.jobs.leases import DEFAULT_TTL, Heartbeat, Lease
from datacatalog.jobs.references import file_reference_uuid, references_in
from datacatalog.jobs.reruns import (
    IF_STALE,
    VERIFY_MODES,
    Decision,
    Outcome,
    decide,
    event_data,
)
from datacatalog.jobs.reruns import record_up_to_date as record_reuse
from datacatalog.store import RetryPolicy, Store

T = TypeVar("T")

if TYPE_CHECKING:
    from datacatalog.catalog import Catalog
    from datacatalog.indexing import IndexReport

Prepare = Callable[["Driver"], Any]
Execute = Callable[["Driver", Payload], Any]
Notify = Callable[["Driver", Notification], Any]

MAX_RECORDED_NOTIFICATIONS = 50  # per life-cycle, as update events in the job history
# Recorded in the history: what explains trouble. The rest only goes to notify: the run
# and terminal events already say when the stage started, ended and how.
_RECORDED = frozenset({"error", "retry_scheduled", "timeout", "cancel_requested"})
MAX_NOTIFICATION_MESSAGE = 500
DEFAULT_CLEANUP_GRACE = 30.0
_POLL = 0.05  # seconds between looks at the clock while a deadline runs


class _Workers:
    """Daemon threads that run callbacks, reused from one life-cycle to the next.

    A callback gets an idle thread when there is one, else a new thread; a thread idle
    for ``linger`` seconds ends. Starting a thread costs about 0.1 ms, handing work to a
    waiting one a sixth of that; a stuck callback only keeps its own thread (daemon: it
    never keeps the process alive).
    """

    def __init__(self, linger: float = 30.0) -> None:
        self._linger = linger
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for work, less the work handed to them
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def submit(self, work: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._tasks.put(work)
        if spawn:
            threading.Thread(
                target=self._loop, name="datacatalog-driver-worker", daemon=True
            ).start()

    def _loop(self) -> None:
        while True:
            try:
                work = self._tasks.get(timeout=self._linger)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # no work was handed to this thread: it ends
                        self._idle -= 1
                        return
                continue  # work was handed over just now: take it
            work()
            with self._lock:
                self._idle += 1


_WORKERS = _Workers()


@dataclass
class _Call:
    """One callback running on its worker thread."""

    phase: str
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


@dataclass
class _Outcome:
    """Where the life-cycle stands: None reason means success so far."""

    reason: str | None = None
    phase: str | None = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    cleanup_error: dict[str, Any] | None = None

    def fail(self, reason: str, phase: str, error: dict[str, Any] | None) -> None:
        if self.reason is None:  # the first failure is the root cause
            self.reason, self.phase, self.error = reason, phase, error


class Driver:
    """Runs ``prepare`` → ``execute`` → ``cleanup`` under a managed job.

    Args:
        job: A job UUID, a :class:`~datacatalog.jobs.Job`, a compatibility-API object
            holding one, or None to take the job from the environment
            (``DATACATALOG_JOB_UUID``, ``DATACATALOG_JOB_TOKEN``).
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
        if not isinstance(force, bool):
            raise InvalidRequestError(f"force must be True or False, not {force!r}")
        if if_stale not in IF_STALE:
            raise InvalidRequestError(
                f"if_stale must be one of {', '.join(IF_STALE)}, not {if_stale!r}"
            )
        if verify not in VERIFY_MODES:
            raise InvalidRequestError(
                f"verify must be one of {', '.join(VERIFY_MODES)}, not {verify!r}"
            )
        self._rerun_options: dict[str, Any] = {
            "force": force,
            "if_stale": if_stale,
            "verify": verify,
        }
        for name, value in (
            ("prepare", prepare),
            ("execute", execute),
            ("cleanup", cleanup),
            ("notify", notify),
        ):
            if value is not None and not callable(value):
                raise InvalidRequestError(f"{name} must be callable, not {type(value).__name__}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidRequestError(f"max_attempts must be an integer >= 1, not {max_attempts!r}")
        self._retry_interval = _seconds(retry_interval, "retry_interval", zero=True)
        self._grace = _seconds(cleanup_grace, "cleanup_grace", zero=True)
        self._timeout = _timeout(stage_timeout)
        if stage_name is not None and (not isinstance(stage_name, str) or not stage_name):
            raise InvalidRequestError("stage_name must be a non-empty string")
        self._lease_ttl = _seconds(lease_ttl, "lease_ttl")
        self._prepare, self._execute, self._cleanup = prepare, execute, cleanup
        self._notify_callback = notify
        self._app_data = app_data
        self._max_attempts = max_attempts
        self._index_outputs = bool(index_outputs)
        self._clock = clock or time.monotonic
        self._sleep = sleep

        self._source: JobSource = resolve(job, catalog=catalog, store=store, token=token, env=env)
        try:
            if isinstance(job, Job) and job.state == "CREATED" and job.visible:
                # A job just created is not read again: the start is conditional on its
                # state, and a job that moved on meanwhile is decided again on a read.
                self._job: Job = job
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
        self._cancel = threading.Event()  # callbacks poll it (cancel_requested)
        self._wake = threading.Event()  # wakes the supervisor: a callback ended, a cancel
        self._finished = threading.Event()
        self._started = False
        self._deciding = False  # past the decision: a cancel has no effect any more
        self._cancel_reason: str | None = None
        self._cancel_seen = False
        self._lease: Lease | None = None
        self._released = False  # the end write gave the lease back
        self._lease_taken_at = 0.0  # on self._clock, just before the lease was taken
        self._heartbeat: Heartbeat | None = None
        self._lease_lost: LeaseLostError | None = None
        self._result: DriverResult | None = None
        self._recorded = 0
        self._events: list[str] = []
        self._started_at = utc_now()
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._last_error: dict[str, Any] | None = None
        self._current_phase: str | None = None
        self._payload_entries: tuple[list[Entry], list[Entry]] = ([], [])
        self._decision: Decision | None = None

    # -- properties -------------------------------------------------------------------------

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
    def catalog(self) -> Catalog:
        """The catalog the job is in."""
        return self._source.catalog

    @property
    def token(self) -> str | None:
        """The job token the driver's events carry (None in-process, where none is needed)."""
        return self._source.token

    @property
    def job(self) -> Job:
        """The job as last read or written by the driver."""
        return self._job

    @property
    def lease(self) -> Lease | None:
        """The job's lease while the driver holds it."""
        beat = self._heartbeat
        return beat.lease if beat is not None else self._lease

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

    def start(self) -> None:
        """Begin the life-cycle and return at once (the callbacks run on the driver's threads).

        Raises:
            DriverError: ``start()`` was called before.
            ActiveExecutionsError: Another driver or workflow run holds the job's lease.
            InvalidTransitionError: The job's state does not allow ``run``.
        """
        with self._lock:
            if self._started:
                raise DriverError(f"driver {self.id} was started already; start() runs once")
            self._started = True
            cancelled = self._cancel.is_set()
        self._started_at = utc_now()
        if cancelled:  # cancelled before start: nothing runs, nothing is posted
            self._complete(_Outcome(reason="cancelled"), events_posted=False)
            return
        leases = self.catalog.leases
        try:
            # The job as read when the driver was made: the start below is conditional on
            # what is decided here, so a job that changed meanwhile is decided again.
            decision = self._decide(current=self._job)
            if decision.runs and self._execute is not None:
                self._payload_entries = self._entries()  # before anything is written
            if decision.runs and decision.event == "run":
                decision = self._start_running(decision)
            if decision.runs and self._lease is None:  # retry or rerun
                self._lease_taken_at = self._clock()
                self._lease = leases.acquire(
                    self._source.job_uuid, holder=self.id, kind="driver", ttl=self._lease_ttl
                )
                try:
                    # Again under the lease: another execution may have ended meanwhile.
                    decision = self._decide(first=decision)
                    if decision.runs:  # run, retry or rerun: one conditional write
                        self._job = self._send(
                            str(decision.event),
                            event_data(decision, {"driver": self.id, "stage": self._stage_name}),
                            key=str(decision.event),
                        )
                except BaseException:
                    with suppress(DataCatalogError):
                        leases.release(self._lease)
                    self._lease = None
                    raise
                if not decision.runs:
                    with suppress(DataCatalogError):
                        leases.release(self._lease)
                    self._lease = None
            if not decision.runs:
                decision.raise_for_outcome()  # held, stale, refused
                self._complete_up_to_date(decision)
                return
        except BaseException:
            # Refused before anything ran: the driver is over (a wait does not block).
            with self._lock:
                self._deciding = True
            self._finished.set()
            self._close_catalog()
            raise
        assert self._lease is not None  # the job runs: the lease is ours
        self._heartbeat = Heartbeat(
            leases, self._lease, on_lost=self._on_lease_lost, clock=self._clock
        )
        self._heartbeat.renewed_at = self._lease_taken_at
        self._heartbeat.start()
        if self._timeout is not None:
            self._deadline = self._clock() + self._timeout.total_seconds()
        self._thread = threading.Thread(
            target=self._supervise, name=f"{self.id}-supervisor", daemon=False
        )
        self._thread.start()

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

    # -- the supervisor ---------------------------------------------------------------------

    def _supervise(self) -> None:
        outcome = _Outcome()
        try:
            self._lifecycle(outcome)
        except BaseException as exc:  # our own failure (the store, a bug): still end cleanly
            reason = "store_failed" if isinstance(exc, DataCatalogError) else "driver_failed"
            outcome.fail(reason, self._current_phase or "execute", error_record(exc))
        self._finish(outcome)

    def _lifecycle(self, outcome: _Outcome) -> None:
        self._emit("started", None, f"stage {self._stage_name} of job {self.job_name} started")
        if self._prepare is not None and self._may_continue(outcome, "prepare"):
            prepare = self._prepare
            self._phase(outcome, "prepare", lambda: prepare(self))
        if outcome.reason is None and self._execute is not None:
            self._attempts(outcome)
        self._run_cleanup(outcome)

    def _attempts(self, outcome: _Outcome) -> None:
        execute = self._execute
        assert execute is not None
        inputs, outputs = self._payload_entries
        for attempt in range(1, self._max_attempts + 1):
            if not self._may_continue(outcome, "execute"):
                return
            outcome.attempts = attempt
            payload = Payload(inputs, outputs, dict(self._job.data))

            def call(payload: Payload = payload) -> Any:
                return execute(self, payload)

            try:
                failed = self._phase(outcome, "execute", call, attempt=attempt, final=False)
            finally:
                payload.close()
            if failed is None:
                return  # succeeded
            if self._cancel_reason == "cancelled":  # it gave up because it was asked to
                outcome.fail("cancelled", "execute", self._last_error)
                return
            if failed in ("aborted", "timeout"):
                outcome.fail(failed, "execute", self._last_error)
                return
            if attempt == self._max_attempts:
                reason = "max_attempts_exceeded" if self._max_attempts > 1 else failed
                outcome.fail(reason, "execute", self._last_error)
                return
            self._emit(
                "retry_scheduled",
                "execute",
                f"attempt {attempt} of {self._max_attempts} failed; "
                f"retrying in {self._retry_interval:g}s",
                attempt=attempt,
                error=self._last_error,
            )
            if not self._pause(self._retry_interval, outcome):
                return

    def _phase(
        self,
        outcome: _Outcome,
        phase: str,
        body: Callable[[], Any],
        *,
        attempt: int | None = None,
        final: bool = True,
    ) -> str | None:
        """Run one callback; return None on success, else the failure's reason.

        With ``final`` the failure is recorded in ``outcome`` here; execute attempts
        (``final=False``) leave that to the retry loop.
        """
        self._current_phase = phase
        self._emit("phase_started", phase, f"{phase} started", attempt=attempt)
        call = self._spawn(phase, body)
        self._last_error = None
        if not self._await(call, self._deadline):
            self._time_out(outcome, phase)
            return "timeout"
        reason = _failure(call)
        if reason is None:
            self._emit("phase_ended", phase, f"{phase} succeeded", attempt=attempt)
            return None
        self._last_error = (
            error_record(call.error)
            if call.error is not None
            else {"type": "CallbackReturnedFalse", "message": f"{phase} returned False"}
        )
        self._emit(
            "error",
            phase,
            f"{phase} failed ({reason})",
            attempt=attempt,
            error=self._last_error,
        )
        if final:
            outcome.fail(reason, phase, self._last_error)
        return reason

    def _run_cleanup(self, outcome: _Outcome) -> None:
        if self._cleanup is None:
            return
        cleanup = self._cleanup
        # After a timeout, cleanup gets a grace period of its own; otherwise the stage's
        # deadline, stretched by the grace period so that a late cleanup still finishes.
        if outcome.reason == "timeout":
            deadline: float | None = self._clock() + self._grace
        elif self._deadline is not None:
            deadline = self._deadline + self._grace
        else:
            deadline = None
        self._current_phase = "cleanup"
        self._emit("phase_started", "cleanup", "cleanup started")
        call = self._spawn("cleanup", lambda: cleanup(self))
        if not self._await(call, deadline):
            record = {"type": "TimeoutError", "message": "cleanup did not return in time"}
            self._emit("timeout", "cleanup", "cleanup did not return in time")
            outcome.cleanup_error = record
            outcome.fail("timeout", "cleanup", record)
            return
        reason = _failure(call)
        if reason is None:
            self._emit("phase_ended", "cleanup", "cleanup succeeded")
            return
        record = (
            error_record(call.error)
            if call.error is not None
            else {"type": "CallbackReturnedFalse", "message": "cleanup returned False"}
        )
        outcome.cleanup_error = record
        self._emit("error", "cleanup", f"cleanup failed ({reason})", error=record)
        outcome.fail("cleanup_failed", "cleanup", record)

    def _finish(self, outcome: _Outcome) -> None:
        """Decide, post the terminal event, index when asked, release the lease."""
        with self._lock:
            self._deciding = True
            if outcome.reason is None and self._cancel_reason == "cancelled":
                outcome.fail("cancelled", self._current_phase or "execute", None)
        if self._lease_lost is not None:
            self._emit("lease_lost", self._current_phase, str(self._lease_lost))
            outcome.reason = "lease_lost"
            outcome.phase = outcome.phase or self._current_phase or "execute"
            outcome.error = error_record(self._lease_lost, traceback=False)
        report: IndexReport | None = None
        event_error: dict[str, Any] | None = None
        if self._lease_lost is None:
            try:
                report = self._post_terminal(outcome)
            except LeaseLostError as exc:  # taken over before the end: the job is not ours
                self._lease_lost = exc
                self._emit("lease_lost", self._current_phase, str(exc))
                outcome.reason, outcome.phase = "lease_lost", outcome.phase or "finish"
                outcome.error = error_record(exc, traceback=False)
            except BaseException as exc:  # the store failed: say so, never hang
                event_error = error_record(exc)
                self._emit("error", None, f"could not record the outcome: {exc}", error=event_error)
                if outcome.reason is None:
                    outcome.fail("store_failed", "finish", event_error)
        self._complete(outcome, report=report, event_error=event_error)

    def _post_terminal(self, outcome: _Outcome) -> IndexReport | None:
        if outcome.reason is not None:
            self._end([("fail", self._fail_data(outcome), "fail")])
            return None
        finish = {"driver": self.id, "stage": self._stage_name, "attempts": outcome.attempts}
        if not self._index_outputs:
            self._end([("finish", finish, "finish")])
            return None
        self._emit("phase_started", "index", "indexing the outputs")
        lease = self.lease or self._lease
        assert lease is not None
        job = self._job
        try:
            # The records in bulk, then finish + index + indexed + the release in one write.
            self._job, report = self._while_leased(
                lambda: self.catalog.indexing.complete(
                    job, lease, key=self.id, finish=finish, token=self._source.token
                ),
                "finish and index",
            )
        except LeaseLostError:
            raise
        except DataCatalogError as exc:
            # Nothing ended the job: it fails (the records written, if any, are superseded
            # when it runs again).
            outcome.fail("indexing_failed", "index", error_record(exc))
            self._emit("error", "index", f"indexing failed: {exc}", error=outcome.error)
            self._end([("fail", self._fail_data(outcome), "fail")])
            return None
        self._released = True
        self._events.extend(["finish", "index", "indexed"])
        assert report is not None
        self._emit("phase_ended", "index", f"{report.written} output file(s) indexed")
        return report

    def _start_running(self, decision: Decision) -> Decision:
        """Take the lease and send ``run`` in one conditional write
        (:meth:`Lifecycle.start`); a job whose state moved on since it was read is
        decided again (on a fresh read), and returned undecided-upon for the caller."""
        self._lease_taken_at = self._clock()
        try:
            started = self.catalog.jobs.lifecycle.start(
                self._source.job_uuid,
                holder=self.id,
                event_id=f"{self.id}:run",
                data=event_data(decision, {"driver": self.id, "stage": self._stage_name}),
                kind="driver",
                ttl=self._lease_ttl,
                token=self._source.token,
            )
        except InvalidTransitionError:
            return self._decide()
        self._lease = started.lease
        self._job = started.job
        self._events.append("run")
        return decision

    def _decide(self, first: Decision | None = None, *, current: Job | None = None) -> Decision:
        """Decide (again, under the lease, when ``first`` is the decision before it)."""
        decision = decide(
            self.catalog,
            self._source.job_uuid,
            holder=self.id,
            token=self._source.token,
            current=current,
            **self._rerun_options,
        )
        if (
            first is not None
            and first.outcome is Outcome.TAKE_OVER
            and decision.outcome is Outcome.RUN
        ):
            # The lapsed lease is ours now: still a takeover, as the first look saw it.
            decision = replace(
                decision, outcome=first.outcome, message=first.message, lease=first.lease
            )
        self._decision = decision
        self._job = decision.job
        return decision

    def _complete_up_to_date(self, decision: Decision) -> None:
        """End the life-cycle of an up-to-date job: nothing ran; the check is recorded."""
        if record_reuse(
            self.catalog,
            decision,
            token=self._source.token,
            holder=self.id,
            event_id=f"{self.id}:reuse",
        ):
            self._events.append("reuse")
        now = utc_now()
        self._result = DriverResult(
            succeeded=True,
            state=decision.job.state,
            reason=None,
            phase=None,
            attempts=0,
            error=None,
            started=self._started_at,
            ended=now,
            events=tuple(self._events),
            outcome=decision.outcome.value,
            up_to_date=True,
            verification=decision.verification,
            message=decision.message,
        )
        with self._lock:
            self._deciding = True
        self._emit("completed", None, decision.message, record=False)
        self._close_catalog()
        self._finished.set()

    def _complete(
        self,
        outcome: _Outcome,
        *,
        report: IndexReport | None = None,
        event_error: dict[str, Any] | None = None,
        events_posted: bool = True,
    ) -> None:
        released = self._released
        if self._heartbeat is not None:
            self._heartbeat.stop()
        if self._lease is not None and not released:
            lease = self.lease or self._lease
            with suppress(DataCatalogError):  # else the lease lapses by itself
                released = self._while_leased(
                    lambda: self.catalog.leases.release(lease), "release the lease"
                )
        if not events_posted:
            with suppress(DataCatalogError):
                self._job = self.catalog.jobs.get(self._source.job_uuid)
        succeeded = outcome.reason is None and event_error is None and events_posted
        self._result = DriverResult(
            succeeded=succeeded,
            state=self._job.state,
            reason=outcome.reason,
            phase=outcome.phase,
            attempts=outcome.attempts,
            error=outcome.error,
            started=self._started_at,
            ended=utc_now(),
            index_report=report,
            events=tuple(self._events),
            lease_released=released,
            event_error=event_error,
            outcome=self._decision.outcome.value if self._decision is not None else None,
            verification=self._decision.verification if self._decision is not None else None,
            message=self._decision.message if self._decision is not None else None,
        )
        with self._lock:
            self._deciding = True
        verdict = "succeeded" if succeeded else f"failed ({outcome.reason})"
        self._emit("completed", None, f"stage {self._stage_name} {verdict}", record=False)
        self._close_catalog()
        self._finished.set()

    # -- helpers ----------------------------------------------------------------------------

    def _spawn(self, phase: str, body: Callable[[], Any]) -> _Call:
        call = _Call(phase)

        def work() -> None:
            try:
                call.value = body()
            except BaseException as exc:  # SystemExit and KeyboardInterrupt too: end cleanly
                call.error = exc
            finally:
                call.done.set()
                self._wake.set()

        # On a daemon thread: a callback that never returns must not keep the process alive.
        _WORKERS.submit(work)
        return call

    def _await(self, call: _Call, deadline: float | None) -> bool:
        """Wait for ``call`` to end (True) or ``deadline`` to pass (False).

        A cancel does not stop the wait (cancellation is cooperative) but is announced
        at once.
        """
        while not call.done.is_set():
            self._announce_cancel()
            if deadline is None:
                self._wake.wait()
            else:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return call.done.is_set()
                self._wake.wait(min(remaining, _POLL))
            self._wake.clear()
        self._announce_cancel()
        return True

    def _pause(self, seconds: float, outcome: _Outcome) -> bool:
        """Wait between attempts; False when a cancel or the deadline ends the stage."""
        if self._deadline is not None and self._clock() + seconds >= self._deadline:
            self._time_out(outcome, "execute")
            return False
        if seconds > 0:
            if self._sleep is not None:
                self._sleep(seconds)
            else:
                self._cancel.wait(seconds)
        return self._may_continue(outcome, "execute")

    def _may_continue(self, outcome: _Outcome, phase: str) -> bool:
        """Whether a new phase or attempt may start (no cancel, no timeout, no failure)."""
        self._announce_cancel()
        if outcome.reason is not None:
            return False
        if self._cancel.is_set():
            reason = self._cancel_reason or "cancelled"
            outcome.fail(reason, phase, self._last_error if reason != "cancelled" else None)
            return False
        if self._deadline is not None and self._clock() >= self._deadline:
            self._time_out(outcome, phase)
            return False
        return True

    def _time_out(self, outcome: _Outcome, phase: str) -> None:
        with self._lock:
            if self._cancel_reason is None:
                self._cancel_reason = "timeout"
            self._cancel.set()
        message = f"stage timeout ({self._timeout}) reached during {phase}"
        record = {"type": "TimeoutError", "message": message, "traceback": None}
        self._emit("timeout", phase, message)
        outcome.fail("timeout", phase, record)

    def _announce_cancel(self) -> None:
        if self._cancel_seen or self._cancel_reason != "cancelled":
            return
        self._cancel_seen = True
        self._emit("cancel_requested", None, "cancel requested")

    def _on_lease_lost(self, error: LeaseLostError) -> None:
        self._lease_lost = error
        with self._lock:
            if self._cancel_reason is None:
                self._cancel_reason = "lease_lost"
            self._cancel.set()
        self._wake.set()

    def _entries(self) -> tuple[list[Entry], list[Entry]]:
        """The payload's inputs (the job's input files) and outputs (its archive path)."""
        job, catalog = self._job, self.catalog
        outputs = [
            Entry(
                job.archive_path,
                self._local(job.archive_system, job.archive_path),
                None,
                job.archive_system,
            )
        ]
        if not job.acted_on:
            return [], outputs
        named = {file_reference_uuid(r): r for r in references_in(job.data, store="files")}
        records = {
            d["uuid"]: d
            for d in catalog.store.find(
                "file",
                {"uuid": {"$in": list(job.acted_on)}},
                projection={"uuid": 1, "name": 1, "storage_system": 1},
            )
        }
        inputs = []
        for file_uuid in job.acted_on:
            record = records.get(file_uuid)
            if record is not None:
                system = record.get("storage_system")
                inputs.append(
                    Entry(record["name"], self._local(system, record["name"]), file_uuid, system)
                )
            else:
                name = named.get(file_uuid, file_uuid)
                local = name[len("file://") :] if name.startswith("file:///") else None
                inputs.append(Entry(name, local, file_uuid, None))
        return inputs, outputs

    def _local(self, system_name: str | None, path: str) -> str | None:
        try:
            system = self.catalog.storage.get(system_name)
        except DataCatalogError:
            return None
        return system.resolve(path) if system.is_local else None

    def _send(self, event: str, data: dict[str, Any], *, key: str) -> Job:
        """Send ``event`` under the idempotency key ``<driver id>:<key>``."""
        job = self.catalog.jobs.send(
            self._source.job_uuid,
            event,
            data=data,
            event_id=f"{self.id}:{key}",
            token=self._source.token,
        ).job
        self._events.append(event)
        return job

    def _end(self, events: list[tuple[str, dict[str, Any], str]]) -> None:
        """Append the terminal ``events`` (name, data, key) and release the lease, in one
        conditional write (:meth:`Lifecycle.end`); keys are ``<driver id>:<key>``."""
        lease = self.lease or self._lease
        assert lease is not None
        if self._heartbeat is not None:
            self._heartbeat.stop()  # the write below ends the lease
        chain = [(name, data, f"{self.id}:{key}") for name, data, key in events]
        what = "+".join(name for name, _data, _key in events)
        self._job = self._while_leased(
            lambda: self.catalog.jobs.lifecycle.end(lease, chain, token=self._source.token).job,
            f"{what} and the lease release",
        )
        self._released = True
        self._events.extend(name for name, _data, _key in events)

    def _lease_ends(self) -> float:
        """When the lease runs out unless renewed again, on the driver's clock."""
        beat = self._heartbeat
        known_good = max(self._lease_taken_at, beat.renewed_at if beat is not None else 0.0)
        return known_good + self._lease_ttl

    def _while_leased(self, call: Callable[[], T], what: str) -> T:
        """Run ``call`` (safe to resend); while it fails as unavailable, again, until the
        lease runs out: then the last ``unavailable`` is raised."""
        # No attempt timeout of its own: a keyed event inside resends within the store's
        # budget, and its attempts must not be cut short before that by this one.
        policy = RetryPolicy(
            budget=max(0.0, self._lease_ends() - self._clock()),
            clock=self._clock,
            sleep=self._sleep or time.sleep,
        )
        return policy.call(call, what=f"driver {self.id}: {what} of job {self._source.job_uuid}")

    def _fail_data(self, outcome: _Outcome) -> dict[str, Any]:
        data: dict[str, Any] = {
            "driver": self.id,
            "stage": self._stage_name,
            "phase": outcome.phase,
            "reason": outcome.reason,
            "attempts": outcome.attempts,
            "error": outcome.error,
        }
        if outcome.cleanup_error is not None and outcome.cleanup_error is not outcome.error:
            data["cleanup_error"] = outcome.cleanup_error
        return data

    def _emit(
        self,
        kind: str,
        phase: str | None,
        message: str,
        *,
        attempt: int | None = None,
        error: dict[str, Any] | None = None,
        record: bool = True,
    ) -> None:
        """Hand a notification to ``notify`` and record it in the job history (bounded)."""
        note = Notification(
            kind=kind,
            phase=phase,
            message=cut(message, MAX_NOTIFICATION_MESSAGE),
            date=utc_now(),
            attempt=attempt,
            error=error,
        )
        if self._notify_callback is not None:
            # What notify raises never changes the outcome.
            with suppress(Exception):
                self._notify_callback(self, note)
        # Recorded only while the job runs under this driver (no events once it ended).
        record = record and kind in _RECORDED and not self._deciding and self._lease_lost is None
        if record and self._recorded < MAX_RECORDED_NOTIFICATIONS:
            self._recorded += 1
            with suppress(DataCatalogError):  # a note lost is no reason to fail the stage
                self.catalog.jobs.send(
                    self._source.job_uuid,
                    "update",
                    data={"driver": {"id": self.id, **note.to_dict()}},
                    event_id=f"{self.id}:note-{self._recorded}",
                    token=self._source.token,
                )

    def _close_catalog(self) -> None:
        if self._source.owns_catalog:
            with suppress(DataCatalogError):
                self._source.catalog.close()

    def __repr__(self) -> str:
        return f"Driver(job={self._source.job_uuid!r}, stage={self._stage_name!r}, id={self.id!r})"


def _failure(call: _Call) -> str | None:
    """The reason a finished callback failed, or None for success."""
    if call.error is not None:
        return "aborted" if isinstance(call.error, DriverAbort) else "callback_raised"
    return "callback_returned_false" if call.value is False else None


def _seconds(value: Any, name: str, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{name} must be a number of seconds, not {value!r}")
    if value < 0 or (value == 0 and not zero) or value != value:
        raise InvalidRequestError(f"{name} must be {'>= 0' if zero else '> 0'}, not {value!r}")
    return float(value)


def _timeout(value: Any) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        if value.total_seconds() <= 0:
            raise InvalidRequestError(f"stage_timeout must be positive, not {value}")
        return value
    return timedelta(seconds=_seconds(value, "stage_timeout"))


__all__ = ["Driver", "DriverAbort", "DriverError", "DriverResult", "Entry", "Notification"]
