"""The values jobs are read and reported as: jobs, history entries, actors, audit records.

Built from stored documents by ``from_document``; none of them holds a raw document
or talks to the store.
"""

from __future__ import annotations

import os
import socket
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Required, TypedDict

from datacatalog.indexrequests import IndexRequest, index_request_from
from datacatalog.stored import from_stored

if TYPE_CHECKING:
    from datacatalog.storage import StorageRegistry

__all__ = [
    "Actor",
    "AuditRecord",
    "EventResult",
    "HistoryEntry",
    "Job",
    "JobPlan",
    "Lease",
    "PlanOptions",
    "PurgeReport",
]


@dataclass(frozen=True)
class Actor:
    """Who sends an event: the agent, and the host, process and library version."""

    agent: str | None = None
    host: str | None = None
    pid: int | None = None
    version: str | None = None

    @classmethod
    def current(cls, agent: str | None = None) -> Actor:
        """The running process, acting for ``agent``."""
        from datacatalog import __version__

        return cls(agent=agent, host=socket.gethostname(), pid=os.getpid(), version=__version__)

    def to_dict(self) -> dict[str, Any]:
        """As stored."""
        return {"agent": self.agent, "host": self.host, "pid": self.pid, "version": self.version}


@dataclass(frozen=True)
class HistoryEntry:
    """One event in a job's history."""

    uuid: str
    name: str
    date: datetime
    data: dict[str, Any]
    event_id: str | None = None
    to_state: str | None = None
    agent: str | None = None
    host: str | None = None
    pid: int | None = None
    version: str | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> HistoryEntry:
        """Build from a stored entry."""
        return from_stored(cls, doc, data=dict(doc.get("data") or {}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "uuid": self.uuid,
            "name": self.name,
            "date": self.date.isoformat(),
            "data": self.data,
            "event_id": self.event_id,
            "to_state": self.to_state,
            "agent": self.agent,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
        }


@dataclass(frozen=True)
class Lease:
    """A job's lease, held by its one active execution (see :mod:`datacatalog.jobs.leases`).

    Dates are the database server's. ``taken_over`` describes the lapsed lease this one
    replaced (its holder, kind, host, pid and expiry), or is None.
    """

    job_uuid: uuidlib.UUID
    holder: str
    kind: str
    host: str
    pid: int
    since: datetime
    expires: datetime
    renewed: datetime | None = None
    ttl: float = 0.0
    taken_over: dict[str, Any] | None = None

    @classmethod
    def from_document(cls, job_uuid: str | uuidlib.UUID, doc: Mapping[str, Any]) -> Lease:
        """Build from the stored ``lease`` field of job ``job_uuid``."""
        return from_stored(
            cls,
            doc,
            job_uuid=job_uuid if isinstance(job_uuid, uuidlib.UUID) else uuidlib.UUID(job_uuid),
            pid=int(doc["pid"]),
            ttl=float(doc.get("ttl", 0.0)),
            taken_over=dict(doc["taken_over"]) if doc.get("taken_over") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        taken = None
        if self.taken_over is not None:
            taken = {
                k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in self.taken_over.items()
            }
        return {
            "job_uuid": str(self.job_uuid),
            "holder": self.holder,
            "kind": self.kind,
            "host": self.host,
            "pid": self.pid,
            "since": self.since.isoformat(),
            "renewed": self.renewed.isoformat() if self.renewed else None,
            "expires": self.expires.isoformat(),
            "ttl": self.ttl,
            "taken_over": taken,
        }


@dataclass(frozen=True)
class Job:
    """A job as stored (its history is read separately: :meth:`JobService.history`)."""

    uuid: str
    pipeline_uuid: str
    state: str
    last_event: str
    data: dict[str, Any]
    archive_path: str
    archive_system: str
    child_of: list[str]
    generated_by: list[str]
    acted_on: list[str] = field(default_factory=list)
    acted_using: list[str] = field(default_factory=list)
    archive_patterns: list[dict[str, Any]] = field(default_factory=list)
    product_patterns: list[dict[str, Any]] = field(default_factory=list)
    instanced: bool = False
    session: str | None = None
    agent: str | None = None
    task: str | None = None
    archive_collection_level: str | None = None
    visible: bool = True
    created_date: datetime | None = None
    modified_date: datetime | None = None
    revision: int = 0
    lease: Lease | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Job:
        """Build from a stored document."""
        props = doc.get("_properties", {})
        lease = doc.get("lease")
        return from_stored(
            cls,
            doc,
            data=dict(doc.get("data") or {}),
            child_of=list(doc.get("child_of", [])),
            generated_by=list(doc.get("generated_by", [])),
            visible=bool(doc.get("_visible", True)),
            created_date=props.get("created_date"),
            modified_date=props.get("modified_date"),
            revision=int(props.get("revision", 0)),
            lease=Lease.from_document(doc["uuid"], lease) if lease else None,
        )

    def archive_dir(self, storage: StorageRegistry) -> Path | None:
        """The local directory of the job's archive path, where outputs are written;
        None when the job's storage system is not local.

        ``archive_path`` is a catalog path (``/products/v2/…``), relative to the storage
        system's root: this is where it lies on this machine.
        """
        return storage.local_dir(self.archive_system, self.archive_path)

    def index_requests(self) -> list[IndexRequest]:
        """The job's archive and product index requests, as objects."""
        return [index_request_from(r) for r in [*self.archive_patterns, *self.product_patterns]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "uuid": self.uuid,
            "pipeline_uuid": self.pipeline_uuid,
            "state": self.state,
            "last_event": self.last_event,
            "data": self.data,
            "archive_path": self.archive_path,
            "archive_system": self.archive_system,
            "instanced": self.instanced,
            "session": self.session,
            "agent": self.agent,
            "task": self.task,
            "child_of": self.child_of,
            "generated_by": self.generated_by,
            "acted_on": self.acted_on,
            "acted_using": self.acted_using,
            "archive_patterns": self.archive_patterns,
            "product_patterns": self.product_patterns,
            "archive_collection_level": self.archive_collection_level,
            "visible": self.visible,
            "created_date": self.created_date.isoformat() if self.created_date else None,
            "modified_date": self.modified_date.isoformat() if self.modified_date else None,
            "revision": self.revision,
            "lease": self.lease.to_dict() if self.lease else None,
        }


@dataclass(frozen=True)
class EventResult:
    """The outcome of sending an event."""

    job: Job
    entry: HistoryEntry
    applied: bool  # False when the idempotency key had been seen: nothing changed


class PlanOptions(TypedDict, total=False):
    """What a job is planned from: the keyword arguments of ``catalog.jobs.plan(...)``.

    Declared once, for :meth:`JobPlanner.plan <datacatalog.jobs.plan.JobPlanner.plan>`
    and :meth:`JobService.plan <datacatalog.jobs.service.JobService.plan>`, which take
    them as ``**options``. Only ``pipeline`` and ``metadata`` are required; every other
    option left out is None (``instanced``: False).

    Attributes:
        pipeline: The pipeline's id or UUID.
        metadata: The entities the job runs on, by id field (``{"sample_id": "s-1"}``).
        data: The job's parameters (a JSON object); part of its identity.
        inputs: Files and references the job reads, besides those named in ``data``.
        archive_path: An explicit archive path, instead of the one computed.
        archive_system: The storage system of the archive path (default: the default one).
        archive_patterns: Archive index requests, run when the job is indexed.
        product_patterns: Product index requests, run when the job is indexed.
        instanced: Give the run its own directory under the computed archive path.
        session: The session the run belongs to (names the instanced directory).
        agent: Who makes the job.
        task: What the job is for.
        generated_by: Process or pipeline UUIDs its outputs are also generated by.
        archive_collection_level: A level recorded with the job's archive collection
            (kept for the compatibility API).
        instance: The name of the instanced directory, to claim a path computed earlier.
    """

    pipeline: Required[str]
    metadata: Required[Mapping[str, str | Sequence[str] | None]]
    data: Mapping[str, Any] | None
    inputs: Sequence[Any] | None
    archive_path: str | None
    archive_system: str | None
    archive_patterns: Sequence[Any] | None
    product_patterns: Sequence[Any] | None
    instanced: bool
    session: str | None
    agent: str | None
    task: str | None
    generated_by: Sequence[str] | None
    archive_collection_level: str | None
    instance: str | None


PLAN_OPTIONS: frozenset[str] = frozenset(PlanOptions.__required_keys__) | frozenset(
    PlanOptions.__optional_keys__
)
"""The names :class:`PlanOptions` declares."""


@dataclass(frozen=True)
class JobPlan:
    """Everything that defines a job, computed before anything is written."""

    uuid: str
    pipeline_uuid: str
    child_of: list[str]
    data: dict[str, Any]
    archive_path: str
    archive_system: str
    instanced: bool
    explicit_path: bool
    session: str | None
    agent: str | None
    task: str | None
    acted_on: list[str]
    acted_using: list[str]
    generated_by: list[str]
    archive_patterns: list[dict[str, Any]]
    product_patterns: list[dict[str, Any]]
    archive_collection_level: str | None


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed (or, for a dry run, would remove): the UUIDs of the file
    records (``files``) and the paths under the archive path (``archive_entries``)."""

    job_uuid: str
    dry_run: bool
    archive_path: str
    archive_system: str
    files: list[str]
    archive_entries: list[str]


@dataclass(frozen=True)
class AuditRecord:
    """One administrative action, as recorded."""

    uuid: str
    action: str
    job_uuid: str
    date: datetime
    actor: dict[str, Any]
    details: dict[str, Any]
    dry_run: bool
    seq: int | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> AuditRecord:
        """Build from a stored record."""
        return from_stored(
            cls,
            doc,
            actor=dict(doc.get("actor") or {}),
            details=dict(doc.get("details") or {}),
            dry_run=bool(doc.get("dry_run", False)),
        )
