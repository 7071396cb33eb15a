"""One active execution per job: the job's lease, taken for the length of an execution.

The lease service (:mod:`datacatalog.jobs.leases`, shared with the stage driver) takes
a job's lease with one conditional write and renews it by heartbeat. Where that service
is not installed the runner still refuses a second execution on a job by its records:
an execution that has not ended holds the job.
"""

from __future__ import annotations

import importlib
from typing import Any

from datacatalog.catalog import Catalog
from datacatalog.errors import ActiveExecutionsError as CatalogActiveExecutionsError
from datacatalog.orchestrator.exceptions import ActiveExecutionsError

LEASE_KIND = "workflow"


def _lease_module() -> Any | None:
    try:
        return importlib.import_module("datacatalog.jobs.leases")
    except ImportError:
        return None


class ExecutionLease:
    """The lease of one execution on one job (a no-op where leases are not available)."""

    def __init__(self, catalog: Catalog) -> None:
        module = _lease_module()
        self._service: Any | None = module.LeaseService(catalog.store) if module else None
        self._heartbeat_type: Any | None = getattr(module, "Heartbeat", None) if module else None
        self._lease: Any | None = None
        self._heartbeat: Any | None = None

    @property
    def available(self) -> bool:
        """Whether the lease service is installed."""
        return self._service is not None

    def holder(self, job_uuid: str) -> str | None:
        """Who holds the job's lease now (None: nobody, or no lease service)."""
        if self._service is None:
            return None
        lease = self._service.get(job_uuid)
        return None if lease is None else str(lease.holder)

    def acquire(self, job_uuid: str, execution_id: str) -> None:
        """Take the job's lease for ``execution_id`` and keep it renewed.

        Raises:
            ActiveExecutionsError: Someone else holds it (named in the message).
        """
        if self._service is None:
            return
        try:
            self._lease = self._service.acquire(job_uuid, holder=execution_id, kind=LEASE_KIND)
        except CatalogActiveExecutionsError as exc:
            if isinstance(exc, ActiveExecutionsError):
                raise
            raise ActiveExecutionsError(str(exc), **exc.details) from exc
        if self._heartbeat_type is not None:
            self._heartbeat = self._heartbeat_type(self._service, self._lease)
            self._heartbeat.__enter__()

    def release(self) -> None:
        """Stop renewing and release the lease (conditional on holding it)."""
        if self._heartbeat is not None:
            self._heartbeat.__exit__(None, None, None)
            self._heartbeat = None
        if self._service is not None and self._lease is not None:
            self._service.release(self._lease)
            self._lease = None
