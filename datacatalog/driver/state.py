"""What a stage driver knows while its life-cycle runs, shared by its parts.

:class:`DriverState` declares the driver's state once: the parts of the life-cycle
(:mod:`~datacatalog.driver.starting`, :mod:`~datacatalog.driver.supervisor`,
:mod:`~datacatalog.driver.ending`, :mod:`~datacatalog.driver.notifications`) are its
subclasses, and :class:`~datacatalog.driver.core.Driver` combines them and sets the state
up. :class:`StageOutcome` is where the life-cycle stands, the first failure kept as the
root cause.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from datacatalog.driver.source import JobSource
from datacatalog.driver.values import DriverResult, Entry
from datacatalog.errors import DataCatalogError, LeaseLostError
from datacatalog.jobs import Job
from datacatalog.jobs.leases import Heartbeat, Lease
from datacatalog.jobs.reruns import Decision

if TYPE_CHECKING:
    from datacatalog.catalog import Catalog


@dataclass
class StageOutcome:
    """Where the life-cycle stands: None reason means success so far."""

    reason: str | None = None
    phase: str | None = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    cleanup_error: dict[str, Any] | None = None

    def fail(self, reason: str, phase: str, error: dict[str, Any] | None) -> None:
        if self.reason is None:  # the first failure is the root cause
            self.reason, self.phase, self.error = reason, phase, error


class Running:
    """The drivers whose supervisor runs: the process waits for them when it exits.

    Supervisors run on reused daemon threads (:mod:`~datacatalog.driver.workers`), which
    would not keep the process alive; waiting for them at exit keeps the promise that a
    life-cycle under way ends with its terminal event (and the lease given back).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drivers: set[DriverState] = set()
        atexit.register(self.wait)

    def add(self, driver: DriverState) -> None:
        with self._lock:
            self._drivers.add(driver)

    def discard(self, driver: DriverState) -> None:
        with self._lock:
            self._drivers.discard(driver)

    def wait(self) -> None:
        """Wait until every running driver has ended."""
        with self._lock:
            running = list(self._drivers)
        for driver in running:
            driver._finished.wait()


class DriverState:
    """The state of one driver's life-cycle (set up by ``Driver.__init__``)."""

    id: str
    # The arguments, checked. The callbacks take the driver itself as first argument.
    _source: JobSource
    _prepare: Callable[..., Any] | None
    _execute: Callable[..., Any] | None
    _cleanup: Callable[..., Any] | None
    _notify_callback: Callable[..., Any] | None
    _rerun_options: dict[str, Any]
    _retry_interval: float
    _grace: float
    _timeout: timedelta | None
    _lease_ttl: float
    _max_attempts: int
    _index_outputs: bool
    _clock: Callable[[], float]
    _sleep: Callable[[float], Any] | None
    _job_name: str
    _stage_name: str
    # Where the life-cycle stands.
    _job: Job
    _new_job: Mapping[str, Any] | None  # a planned job's document, created by the start
    _lock: threading.Lock
    _cancel: threading.Event  # callbacks poll it (cancel_requested)
    _wake: threading.Event  # wakes the supervisor: a callback ended, a cancel
    _finished: threading.Event
    _started: bool
    _deciding: bool  # past the decision: a cancel has no effect any more
    _cancel_reason: str | None
    _cancel_seen: bool
    _lease: Lease | None
    _released: bool  # the end write gave the lease back
    _lease_taken_at: float  # on self._clock, just before the lease was taken
    _heartbeat: Heartbeat | None
    _lease_lost: LeaseLostError | None
    _result: DriverResult | None
    _recorded: int
    _events: list[str]
    _started_at: datetime
    _deadline: float | None
    _last_error: dict[str, Any] | None
    _current_phase: str | None
    _payload_entries: tuple[list[Entry], list[Entry]]
    _decision: Decision | None

    @property
    def catalog(self) -> Catalog:
        """The catalog the job is in."""
        return self._source.catalog

    @property
    def lease(self) -> Lease | None:
        """The job's lease while the driver holds it."""
        beat = self._heartbeat
        return beat.lease if beat is not None else self._lease

    def _close_catalog(self) -> None:
        if self._source.owns_catalog:
            with suppress(DataCatalogError):
                self._source.catalog.close()


RUNNING = Running()

__all__ = ["RUNNING", "DriverState", "Running", "StageOutcome"]
