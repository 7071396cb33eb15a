"""How a stage driver's life-cycle ends: one terminal event, sent again until the lease ends.

The supervisor alone posts the terminal event. The decision (finish, or fail with a
reason) is taken once, under the lock that ``Driver.cancel`` takes too, so a cancel racing
completion yields exactly one terminal event. The event(s) and the lease release are one
conditional write (``finish`` + ``index`` + ``indexed`` after the file records' bulk
write when the outputs are indexed). A lease lost to another execution posts no terminal
event at all: the job is someone else's now.

While the database is unavailable (a replica set electing a new primary), the terminal
write, the reads that decide it and the lease release are sent again until the lease
would run out (the last renewal plus its time to live); only then does the stage end
``store_failed``. Every event carries a key made of the driver's id, so sending it again
changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar

from datacatalog.clock import utc_now
from datacatalog.driver.notifications import Notifying
from datacatalog.driver.state import StageOutcome
from datacatalog.driver.values import DriverResult, error_record
from datacatalog.errors import DataCatalogError, LeaseLostError
from datacatalog.store import RetryPolicy

if TYPE_CHECKING:
    from datacatalog.indexing import IndexReport

T = TypeVar("T")


class Ending(Notifying):
    """Decides, posts the terminal event, indexes when asked, releases the lease."""

    def _finish(self, outcome: StageOutcome) -> None:
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

    def _post_terminal(self, outcome: StageOutcome) -> IndexReport | None:
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

    def _fail_data(self, outcome: StageOutcome) -> dict[str, Any]:
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

    def _complete(
        self,
        outcome: StageOutcome,
        *,
        report: IndexReport | None = None,
        event_error: dict[str, Any] | None = None,
        events_posted: bool = True,
    ) -> None:
        """Release the lease if still held, and record the result: the life-cycle is over."""
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
        decision = self._decision
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
            outcome=decision.outcome.value if decision is not None else None,
            verification=decision.verification if decision is not None else None,
            message=decision.message if decision is not None else None,
        )
        with self._lock:
            self._deciding = True
        verdict = "succeeded" if succeeded else f"failed ({outcome.reason})"
        self._emit("completed", None, f"stage {self._stage_name} {verdict}", record=False)
        self._close_catalog()
        self._finished.set()


__all__ = ["Ending"]
