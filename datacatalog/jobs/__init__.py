"""Jobs: one run of a pipeline on some inputs, driven through the state machine.

The package has one module per concept:

* :mod:`~datacatalog.jobs.model` — the values: :class:`Job`, :class:`HistoryEntry`,
  :class:`Actor`, :class:`AuditRecord`, plans, results and reports;
* :mod:`~datacatalog.jobs.limits` — what a job may hold;
* :mod:`~datacatalog.jobs.references` — which inputs name files and references;
* :mod:`~datacatalog.jobs.plan` — a job's identity, archive path and creation;
* :mod:`~datacatalog.jobs.events` — applying an event, in one conditional update;
* :mod:`~datacatalog.jobs.leases` — one active execution per job: the lease, its heartbeat;
* :mod:`~datacatalog.jobs.admin` — reset, ready, delete, purge and the audit trail;
* :mod:`~datacatalog.jobs.queries` — reading jobs and their history;
* :mod:`~datacatalog.jobs.credentials` — job and admin tokens;
* :mod:`~datacatalog.jobs.service` — :class:`JobService`, composing all of them.
"""

from __future__ import annotations

from datacatalog.jobs import model
from datacatalog.jobs.leases import Heartbeat, LeaseService
from datacatalog.jobs.limits import ENTRY_OVERHEAD as _ENTRY_OVERHEAD
from datacatalog.jobs.limits import (
    MAX_EVENT_DATA_BYTES,
    MAX_HISTORY_BYTES,
    MAX_INDEX_REQUESTS,
    MAX_INPUTS,
    MAX_JOB_DATA_BYTES,
    MAX_PAGE,
)
from datacatalog.jobs.model import *  # noqa: F403 - re-exported: model.__all__
from datacatalog.jobs.queries import FindFilters, job_document
from datacatalog.jobs.references import (
    FILE_SCHEMES,
    REFERENCE_SCHEMES,
    file_reference_uuid,
    is_file_reference,
    is_reference,
    reference_uuid,
    references_in,
)
from datacatalog.jobs.service import JobService

__all__ = [
    "FILE_SCHEMES",
    "MAX_EVENT_DATA_BYTES",
    "MAX_HISTORY_BYTES",
    "MAX_INDEX_REQUESTS",
    "MAX_INPUTS",
    "MAX_JOB_DATA_BYTES",
    "MAX_PAGE",
    "REFERENCE_SCHEMES",
    "_ENTRY_OVERHEAD",
    "FindFilters",
    "Heartbeat",
    "JobService",
    "LeaseService",
    "file_reference_uuid",
    "is_file_reference",
    "is_reference",
    "job_document",
    "reference_uuid",
    "references_in",
]
__all__ += model.__all__
