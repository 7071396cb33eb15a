"""How a stage driver's life-cycle begins: the re-run decision, the lease, the first event.

``start()`` decides what running the job comes to (:mod:`datacatalog.jobs.reruns`, the
decision every entry point shares) in the caller's thread. A job that runs gets its lease
and the event that begins the execution (``run``; ``retry`` for a FAILED job; ``rerun``
when forced or stale): ``run`` in one conditional write with the lease
(:meth:`Lifecycle.start`), the others after the lease is taken and the decision taken
again under it. A job running elsewhere, stale or in a state that cannot run is refused
at once, with nothing else done. A job that is up to date runs nothing: the check is
recorded (a ``reuse`` event) and the life-cycle is over.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace
from typing import Any

from datacatalog.clock import utc_now
from datacatalog.driver.entries import payload_entries
from datacatalog.driver.notifications import Notifying
from datacatalog.driver.values import DriverResult
from datacatalog.errors import DataCatalogError, InvalidTransitionError, NotFoundError
from datacatalog.jobs import Job
from datacatalog.jobs.reruns import Decision, Outcome, decide, event_data
from datacatalog.jobs.reruns import record_up_to_date as record_reuse


class Starting(Notifying):
    """Decides whether the job runs and, when it does, takes its lease and begins it."""

    def _begin(self) -> bool:
        """Decide and begin; True when the job runs (the lease is the driver's), False
        when it was up to date (the life-cycle is over).

        Raises:
            ActiveExecutionsError, StaleOutputsError, InvalidTransitionError: refused.
        """
        # The job as read when the driver was made: the start below is conditional on
        # what is decided here, so a job that changed meanwhile is decided again.
        decision = self._decide(current=self._job)
        if decision.runs and self._execute is not None:
            # Before anything is written.
            self._payload_entries = payload_entries(self.catalog, self._job)
        if decision.runs and decision.event == "run":
            decision = self._start_running(decision)
        if decision.runs and self._lease is None:  # retry or rerun
            decision = self._lease_and_send(decision)
        if not decision.runs:
            decision.raise_for_outcome()  # held, stale, refused
            self._complete_up_to_date(decision)
            return False
        return True

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
                new=self._new_job,
            )
        except InvalidTransitionError:
            return self._decide()
        except NotFoundError:
            if self._new_job is None:
                raise
            # The planned job exists but is deleted: decided on it as read (refused).
            return self._decide()
        self._lease = started.lease
        self._job = started.job
        self._events.append("run")
        if self._new_job is not None:
            # A job the start created has no archive directory yet (jobs.create makes it).
            self.catalog.storage.get(self._job.archive_system).makedirs(self._job.archive_path)
        return decision

    def _lease_and_send(self, decision: Decision) -> Decision:
        """A retry or a rerun: take the lease, decide again under it, send the event;
        the lease is given back when the job no longer runs."""
        leases = self.catalog.leases
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
        return decision

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


__all__ = ["Starting"]
