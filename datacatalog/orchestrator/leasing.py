"""One active execution per job: the job's lease, held for the length of an execution.

The lease (:mod:`datacatalog.jobs.leases`, shared with the stage driver) is taken with
one conditional write and renewed by a heartbeat thread. Its holder is the execution id
and its kind ``workflow``; another holder makes the start an
:class:`~datacatalog.orchestrator.exceptions.ActiveExecutionsError` naming that holder.

An execution is ``started`` (or ``cancelling``) only while it holds the lease, so such an
execution whose lease has lapsed or been released is dead: its runner was killed. The
next runner on the job closes its record (:meth:`ExecutionRecords.close_abandoned`)
before it checks for active executions, so a killed run never blocks the job forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from datacatalog.catalog import Catalog
from datacatalog.clock import utc_now
from datacatalog.errors import ActiveExecutionsError as CatalogActiveExecutionsError
from datacatalog.errors import LeaseLostError
from datacatalog.jobs.leases import DEFAULT_TTL, Heartbeat, Lease, LeaseService
from datacatalog.orchestrator.exceptions import ActiveExecutionsError
from datacatalog.orchestrator.model import LEASED_EXECUTION_STATUSES, Execution
from datacatalog.orchestrator.records import ExecutionRecords
from datacatalog.store import RetryPolicy

LEASE_KIND = "workflow"

T = TypeVar("T")


class ExecutionLease:
    """The lease of one execution on one job."""

    def __init__(self, catalog: Catalog, *, ttl: float = DEFAULT_TTL) -> None:
        self._service: LeaseService = catalog.leases
        self._ttl = ttl
        self._lease: Lease | None = None
        self._heartbeat: Heartbeat | None = None

    def holder(self, job_uuid: str) -> str | None:
        """Who holds the job's lease now (None: nobody, or it lapsed)."""
        lease = self._service.get(job_uuid)
        if lease is None:
            return None
        return None if lease.expires < utc_now() else str(lease.holder)

    def acquire(
        self,
        job_uuid: str,
        execution_id: str,
        *,
        on_lost: Callable[[LeaseLostError], None] | None = None,
    ) -> None:
        """Take the job's lease for ``execution_id`` and keep it renewed.

        ``on_lost`` is called (on the heartbeat's thread) if the lease is taken over.

        Raises:
            ActiveExecutionsError: Someone else holds it (named in the message).
        """
        try:
            self._lease = self._service.acquire(
                job_uuid, holder=execution_id, kind=LEASE_KIND, ttl=self._ttl
            )
        except CatalogActiveExecutionsError as exc:
            if isinstance(exc, ActiveExecutionsError):
                raise
            raise ActiveExecutionsError(str(exc), **exc.details) from exc
        self._heartbeat = Heartbeat(self._service, self._lease, on_lost=on_lost).start()

    def while_held(self, call: Callable[[], T], *, what: str) -> T:
        """Run ``call`` (safe to resend: a keyed event); while it fails as ``unavailable``,
        again until the lease would run out (its last renewal plus its ttl), at least
        within the store's failover budget."""
        store_policy = self._service.store.failover
        beat = self._heartbeat
        left = 0.0 if beat is None else beat.renewed_at + self._ttl - time.monotonic()
        policy = RetryPolicy(budget=max(left, store_policy.budget, 0.0))
        return policy.call(call, what=what)

    def release(self) -> None:
        """Stop renewing and release the lease (conditional on still holding it)."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._lease = self._heartbeat.lease
            self._heartbeat = None
        if self._lease is not None:
            lease = self._lease
            # Conditional on the holder, so safe to resend through an election.
            self.while_held(
                lambda: self._service.release(lease), what=f"release the lease of {lease.holder}"
            )
            self._lease = None


def check_no_active(
    lease: ExecutionLease,
    records: ExecutionRecords,
    job_uuid: str,
    *,
    besides: str | None,
    now: datetime,
    on_closed: Callable[[Execution], None],
) -> None:
    """Refuse a job with an active execution (but ``besides``); close the dead ones first.

    ``on_closed`` is told of each execution closed because its lease lapsed.

    Raises:
        ActiveExecutionsError: Naming the holder of the job's lease, or its active execution.
    """
    holder = lease.holder(job_uuid)
    if holder is not None and holder != besides:
        raise ActiveExecutionsError(
            f"job {job_uuid} has an active execution: held by {holder}", holder=holder
        )
    # Nobody (but ``besides``) holds the lease: a started execution is a dead one.
    for execution in records.active_executions(job_uuid, besides=besides):
        if execution.status not in LEASED_EXECUTION_STATUSES:
            continue  # a pending one may be a runner that has not executed yet
        if records.close_abandoned(execution, now=now):
            on_closed(execution)
    active = records.active_executions(job_uuid, besides=besides)
    if active:
        raise ActiveExecutionsError(
            f"job {job_uuid} has an active execution: {active[0].id} "
            f"({active[0].workflow_name}, {active[0].status})",
            holder=active[0].id,
        )
