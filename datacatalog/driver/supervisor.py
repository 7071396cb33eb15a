"""The stage driver's supervisor: prepare, execute attempts and cleanup, under a deadline.

The supervisor thread runs each callback on a worker (:mod:`~datacatalog.driver.workers`)
and waits for it, for the stage's deadline, or for a cancel: a cancel is cooperative (the
callback polls ``cancel_requested``) but is announced at once, and a callback still running
at the deadline is left to its worker while the stage times out. Execute is attempted up
to ``max_attempts`` times, ``retry_interval`` apart; cleanup runs on every path, with a
grace period of its own after a timeout. A lease lost meanwhile (the heartbeat's report)
is handled like a cancel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datacatalog.driver.notifications import Notifying
from datacatalog.driver.state import StageOutcome
from datacatalog.driver.values import Payload, error_record
from datacatalog.driver.workers import Call, failure, spawn
from datacatalog.errors import LeaseLostError

POLL = 0.05  # seconds between looks at the clock while a deadline runs


class Supervising(Notifying):
    """Runs the callbacks of one life-cycle and records what they came to."""

    def _lifecycle(self, outcome: StageOutcome) -> None:
        self._emit("started", None, f"stage {self._stage_name} of job {self._job_name} started")
        if self._prepare is not None and self._may_continue(outcome, "prepare"):
            prepare = self._prepare
            self._phase(outcome, "prepare", lambda: prepare(self))
        if outcome.reason is None and self._execute is not None:
            self._attempts(outcome)
        self._run_cleanup(outcome)

    def _attempts(self, outcome: StageOutcome) -> None:
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
        outcome: StageOutcome,
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
        call = spawn(phase, body, self._wake)
        self._last_error = None
        if not self._await(call, self._deadline):
            self._time_out(outcome, phase)
            return "timeout"
        reason = failure(call)
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

    def _run_cleanup(self, outcome: StageOutcome) -> None:
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
        call = spawn("cleanup", lambda: cleanup(self), self._wake)
        if not self._await(call, deadline):
            record = {"type": "TimeoutError", "message": "cleanup did not return in time"}
            self._emit("timeout", "cleanup", "cleanup did not return in time")
            outcome.cleanup_error = record
            outcome.fail("timeout", "cleanup", record)
            return
        reason = failure(call)
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

    def _await(self, call: Call, deadline: float | None) -> bool:
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
                self._wake.wait(min(remaining, POLL))
            self._wake.clear()
        self._announce_cancel()
        return True

    def _pause(self, seconds: float, outcome: StageOutcome) -> bool:
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

    def _may_continue(self, outcome: StageOutcome, phase: str) -> bool:
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

    def _time_out(self, outcome: StageOutcome, phase: str) -> None:
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
        """The heartbeat's report: the lease went to another execution; stop like a cancel."""
        self._lease_lost = error
        with self._lock:
            if self._cancel_reason is None:
                self._cancel_reason = "lease_lost"
            self._cancel.set()
        self._wake.set()


__all__ = ["POLL", "Supervising"]
