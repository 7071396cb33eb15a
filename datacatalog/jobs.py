"""Jobs: one run of a pipeline on some inputs, driven through the state machine.

Creating a job
    The job's identity is what it computes: ``job_uuid(pipeline, child_of, data)``.
    Its archive path is computed from the same values, once, and stored. Creating
    a job that exists attaches to it *without changing it*; two processes creating
    the same job at once end with one document (an atomic upsert on the unique
    ``uuid``). Instanced archive paths are claimed through a unique index on
    ``(archive_system, archive_path)``; on a collision a new instance name is drawn.

Applying an event
    One atomic conditional update per event: the filter names the job, the
    states the event is allowed from (:mod:`datacatalog.states`), that the
    event's idempotency key is not yet in the history, and that the history has
    room; the update sets the state and ``last_event``, appends the history
    entry and bumps the revision. Nothing is read first. When the update matches
    nothing, one read says why: unknown job, replayed event (a no-op returning
    the job as it is), invalid transition, or full history.

Limits (all refused with a clear error and nothing written)
    * job ``data``: 1 MiB of canonical JSON;
    * event ``data``: 64 KiB of canonical JSON;
    * a job's history: 12 MiB in all (tracked in ``_properties.history_bytes``;
      admin events such as ``reset`` may use a further 256 KiB so a full job can
      still be reset),
      which keeps every job document well under MongoDB's 16 MiB limit;
    * inputs: 10,000 references; index requests: 64 per kind.

Tokens and admin actions
    Events that arrive with a token are checked against the job token; callers
    outside the process must present one. ``reset``, ``ready``, ``delete``,
    ``undelete`` and ``purge`` need an admin token, and each leaves an audit record
    in the ``audit`` collection, which survives the job's deletion.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

from datacatalog import archive, schemas, states, tokens
from datacatalog.clock import utc_now
from datacatalog.errors import (
    ConflictError,
    DataCatalogError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)
from datacatalog.freeform import check_json, check_object, encoded_size
from datacatalog.identifiers import (
    file_uuid,
    is_uuid,
    job_uuid,
    kind_of,
    random_uuid,
    require_kind,
    typed_uuid,
)
from datacatalog.indexrequests import (
    ArchiveIndexRequest,
    IndexRequest,
    ProductIndexRequest,
    index_request_from,
)
from datacatalog.metadata import LEVELS as METADATA_LEVELS
from datacatalog.metadata import MetadataRegistry
from datacatalog.pipelines import PipelineRegistry
from datacatalog.settings import Settings
from datacatalog.storage import StorageRegistry
from datacatalog.store import Document, Store

MAX_JOB_DATA_BYTES = 1 << 20
MAX_EVENT_DATA_BYTES = 64 << 10
MAX_HISTORY_BYTES = 12 << 20
ADMIN_HISTORY_RESERVE = 256 << 10  # admin events may still be recorded on a full history
MAX_INPUTS = 10_000
MAX_INDEX_REQUESTS = 64
MAX_PAGE = 1000
INSTANCE_ATTEMPTS = 8
_ENTRY_OVERHEAD = 512  # bytes budgeted per history entry beyond its data

FILE_SCHEMES = ("agave://", "file://", "s3://", "gs://", "memory://", "sftp://")
REFERENCE_SCHEMES = ("http://", "https://", "ftp://", "doi:")


# -- value objects ---------------------------------------------------------------------------


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
        return cls(
            uuid=doc["uuid"],
            name=doc["name"],
            date=doc["date"],
            data=dict(doc.get("data") or {}),
            event_id=doc.get("event_id"),
            to_state=doc.get("to_state"),
            agent=doc.get("agent"),
            host=doc.get("host"),
            pid=doc.get("pid"),
            version=doc.get("version"),
        )

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

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Job:
        """Build from a stored document."""
        props = doc.get("_properties", {})
        return cls(
            uuid=doc["uuid"],
            pipeline_uuid=doc["pipeline_uuid"],
            state=doc["state"],
            last_event=doc["last_event"],
            data=dict(doc.get("data") or {}),
            archive_path=doc["archive_path"],
            archive_system=doc["archive_system"],
            child_of=list(doc.get("child_of", [])),
            generated_by=list(doc.get("generated_by", [])),
            acted_on=list(doc.get("acted_on", [])),
            acted_using=list(doc.get("acted_using", [])),
            archive_patterns=list(doc.get("archive_patterns", [])),
            product_patterns=list(doc.get("product_patterns", [])),
            instanced=bool(doc.get("instanced", False)),
            session=doc.get("session"),
            agent=doc.get("agent"),
            task=doc.get("task"),
            archive_collection_level=doc.get("archive_collection_level"),
            visible=bool(doc.get("_visible", True)),
            created_date=props.get("created_date"),
            modified_date=props.get("modified_date"),
            revision=int(props.get("revision", 0)),
        )

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
        }


@dataclass(frozen=True)
class EventResult:
    """The outcome of sending an event."""

    job: Job
    entry: HistoryEntry
    applied: bool  # False when the idempotency key had been seen: nothing changed


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
    """What a purge removed (or, for a dry run, would remove)."""

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

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> AuditRecord:
        """Build from a stored record."""
        return cls(
            uuid=doc["uuid"],
            action=doc["action"],
            job_uuid=doc["job_uuid"],
            date=doc["date"],
            actor=dict(doc.get("actor") or {}),
            details=dict(doc.get("details") or {}),
            dry_run=bool(doc.get("dry_run", False)),
        )


# -- input references ------------------------------------------------------------------------


def is_file_reference(value: str) -> bool:
    """True for strings naming a file: a file UUID, an absolute path, a storage URI."""
    if is_uuid(value):
        return kind_of(value) == "file"
    return value.startswith("/") or value.startswith(FILE_SCHEMES)


def is_reference(value: str) -> bool:
    """True for strings naming a reference: a reference UUID or a web/DOI address."""
    if is_uuid(value):
        return kind_of(value) == "reference"
    return value.startswith(REFERENCE_SCHEMES)


def file_reference_uuid(value: str) -> str:
    """The file UUID a file reference names (UUIDs pass through)."""
    if is_uuid(value):
        return require_kind(value, "file", what="input")
    if "://" in value:
        rest = value.split("://", 1)[1]
        value = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return file_uuid(value)


def reference_uuid(value: str) -> str:
    """The reference UUID a reference names (UUIDs pass through)."""
    if is_uuid(value):
        return require_kind(value, "reference", what="reference")
    return typed_uuid(value, "reference")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _whole(value: object, low: int, high: int) -> bool:
    """Whether ``value`` is an integer (not a bool) within ``low``-``high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def references_in(
    data: Mapping[str, Any] | None, inputs: Sequence[Any] | None = None, *, store: str = "files"
) -> list[str]:
    """Strings in ``inputs``, ``data["inputs"]`` and ``data["parameters"]`` that name files
    (``store="files"``) or references (``store="references"``), in order, without repeats.

    Values of any JSON type are tolerated; only strings can be references.
    """
    if store not in ("files", "references"):
        raise InvalidRequestError(f"store must be 'files' or 'references', not {store!r}")
    test = is_file_reference if store == "files" else is_reference
    sources: list[Any] = [inputs or []]
    if data:
        sources += [data.get("inputs"), data.get("parameters")]
    seen: dict[str, None] = {}
    for source in sources:
        for text in _strings(source):
            if test(text):
                seen.setdefault(text, None)
    return list(seen)


# -- reading stored jobs ---------------------------------------------------------------------


def job_document(
    store: Store,
    job_uuid: str,
    *,
    include_deleted: bool = False,
    history: bool = False,
    entry: str | None = None,
) -> Document:
    """The stored job ``job_uuid``, without its history unless ``history``.

    A soft-deleted job is not found unless ``include_deleted``: every read of a job
    (events, indexing, files, provenance) goes through here, so a deleted job is hidden
    from all of them alike.

    Args:
        store: The store.
        job_uuid: The job.
        include_deleted: Find a soft-deleted job too.
        history: Read the whole history (up to 12 MiB).
        entry: Read only the history entry with this UUID (``history`` is then ``[]``
            or that one entry); the server picks it out, the rest never travels.

    Raises:
        InvalidRequestError: ``job_uuid`` is not a job UUID.
        NotFoundError: No such job (or it is deleted).
    """
    require_kind(job_uuid, "pipelinejob", what="job")
    query: dict[str, Any] = {"uuid": job_uuid}
    if not include_deleted:
        query["_visible"] = True
    projection: dict[str, Any] | None = None if history else {"history": 0}
    if entry is not None:
        projection = {f: 1 for f in _fields_besides_history()}
        projection["history"] = {"$elemMatch": {"uuid": entry}}
    found = store.find("job", query, projection=projection)
    if not found:
        raise NotFoundError(f"job {job_uuid} not found", job=job_uuid)
    return found[0]


@cache
def _fields_besides_history() -> tuple[str, ...]:
    # Named from the schema: an inclusion projection must list every field it keeps.
    return tuple(f for f in schemas.schema_for("job")["properties"] if f != "history")


# -- the service -----------------------------------------------------------------------------


class JobService:
    """Create, drive, query and administer jobs on one store."""

    def __init__(
        self,
        store: Store,
        *,
        settings: Settings | None = None,
        storage: StorageRegistry | None = None,
        actor: Actor | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or Settings.load()
        self.storage = storage or StorageRegistry(
            systems=self.settings.storage_map(), default=self.settings.default_storage
        )
        self.actor = actor or Actor.current()
        self.pipelines = PipelineRegistry(store)
        self.metadata = MetadataRegistry(store)
        self._secret: str | None = None

    # -- tokens -----------------------------------------------------------------------------

    @property
    def secret(self) -> str:
        """The deployment secret (read or generated once)."""
        if self._secret is None:
            self._secret = self.settings.resolve_secret()
        return self._secret

    def job_token(self, job_uuid: str) -> str:
        """The token that authorizes events for ``job_uuid``."""
        return tokens.job_token(self.secret, require_kind(job_uuid, "pipelinejob", what="job"))

    def admin_token(self) -> str:
        """An admin token for the current window."""
        return tokens.admin_token(self.secret, lifetime=self.settings.admin_token_lifetime)

    def check_admin(self, token: str | None, *, action: str) -> None:
        """Raise unless ``token`` is a valid admin token."""
        tokens.check_admin_token(
            self.secret, token, lifetime=self.settings.admin_token_lifetime, action=action
        )

    def webhook_url(self, job_uuid: str, *, base_url: str | None = None) -> str:
        """``<service>/jobs/<uuid>/events?token=<job token>`` (SPEC §9)."""
        base = (base_url or self.settings.service_url).rstrip("/")
        return f"{base}/jobs/{job_uuid}/events?token={self.job_token(job_uuid)}"

    # -- creating ---------------------------------------------------------------------------

    def plan(
        self,
        *,
        pipeline: str,
        metadata: Mapping[str, str | Sequence[str] | None],
        data: Mapping[str, Any] | None = None,
        inputs: Sequence[Any] | None = None,
        archive_path: str | None = None,
        archive_system: str | None = None,
        archive_patterns: Sequence[Any] | None = None,
        product_patterns: Sequence[Any] | None = None,
        instanced: bool = False,
        session: str | None = None,
        agent: str | None = None,
        task: str | None = None,
        generated_by: Sequence[str] | None = None,
        archive_collection_level: str | None = None,
    ) -> JobPlan:
        """Check every argument and compute the job's identity; writes nothing."""
        pipeline_uuid = self.pipelines.get(pipeline).uuid
        job_data = dict(check_object(data, where="data", max_bytes=MAX_JOB_DATA_BYTES))
        child_of = self.metadata.resolve(**dict(metadata))
        if inputs is not None and not isinstance(inputs, (list, tuple)):
            raise InvalidRequestError("inputs must be a list")
        check_json(list(inputs or []), where="inputs")
        files = references_in(job_data, inputs, store="files")
        refs = references_in(job_data, inputs, store="references")
        if len(files) + len(refs) > MAX_INPUTS:
            raise PayloadTooLargeError(f"a job may name at most {MAX_INPUTS} inputs")
        uuid = job_uuid(pipeline_uuid, child_of, job_data)
        if session is not None:
            archive.check_session(session)
        system = archive_system or self.storage.default_name
        self.storage.get(system)
        explicit = archive_path is not None
        if archive_path is not None:
            path = archive.check_archive_path(archive_path)
        else:
            path = archive.archive_path(pipeline_uuid, child_of, job_data)
            if instanced:
                path = f"{path}/{archive.instanced_directory(session)}"
        extra_generators = [_generator(g) for g in (generated_by or [])]
        return JobPlan(
            uuid=uuid,
            pipeline_uuid=pipeline_uuid,
            child_of=child_of,
            data=job_data,
            archive_path=path,
            archive_system=system,
            instanced=bool(instanced) and not explicit,
            explicit_path=explicit,
            session=session,
            agent=agent,
            task=task,
            acted_on=sorted({file_reference_uuid(f) for f in files}),
            acted_using=sorted({reference_uuid(r) for r in refs}),
            generated_by=sorted({pipeline_uuid, *extra_generators}),
            archive_patterns=_requests(archive_patterns, ArchiveIndexRequest, "archive_patterns"),
            product_patterns=_requests(product_patterns, ProductIndexRequest, "product_patterns"),
            archive_collection_level=archive_collection_level,
        )

    def create(
        self, plan: JobPlan, *, setup_archive_path: bool = True, actor: Actor | None = None
    ) -> tuple[Job, bool]:
        """Create the planned job, or attach to it unchanged if it exists.

        Returns the job and whether this call created it.
        """
        who = actor or self.actor
        current = plan
        # An unknown system, or a path leaving the system's root through a symbolic link,
        # is refused before anything is written.
        self.storage.get(plan.archive_system).resolve(plan.archive_path)
        self._check_no_overlap(plan)
        for _attempt in range(INSTANCE_ATTEMPTS):
            doc = self._document(current, who)
            try:
                stored, created = self.store.insert_if_absent("job", doc)
            except ConflictError as exc:
                if exc.details.get("key") != ["archive_system", "archive_path"]:
                    raise
                if not current.instanced:
                    raise ConflictError(
                        f"archive path {current.archive_path} on {current.archive_system} "
                        "already belongs to another job",
                        archive_path=current.archive_path,
                    ) from exc
                base = current.archive_path.rsplit("/", 1)[0]
                fresh = f"{base}/{archive.instanced_directory(None)}"
                current = _replace_path(current, fresh)
                continue
            job = Job.from_document(stored)
            if setup_archive_path:
                self.storage.get(job.archive_system).makedirs(job.archive_path)
            return job, created
        raise ConflictError(
            f"could not claim a free instanced archive path after {INSTANCE_ATTEMPTS} attempts"
        )

    def _check_no_overlap(self, plan: JobPlan) -> None:
        """Refuse an archive path inside another job's, or holding another job's.

        Reset and purge empty a job's directory; if it held another job's outputs they
        would go too. Generated paths never nest; explicit ones might.
        """
        path, system = plan.archive_path, plan.archive_system
        parts = path.strip("/").split("/")
        ancestors = ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
        clash = self.store.find(
            "job",
            {
                "archive_system": system,
                "uuid": {"$ne": plan.uuid},
                "$or": [
                    {"archive_path": {"$in": ancestors}},
                    {"archive_path": {"$regex": "^" + re.escape(path + "/")}},
                ],
            },
            projection={"uuid": 1, "archive_path": 1},
            limit=1,
        )
        if clash:
            other = clash[0]
            raise ConflictError(
                f"archive path {path} on {system} overlaps job {other['uuid']}'s archive path "
                f"{other['archive_path']}; one job's directory may not hold another's",
                archive_path=path,
                job=other["uuid"],
            )

    def _document(self, plan: JobPlan, who: Actor) -> Document:
        entry = self._entry("create", {}, event_id=None, to_state=states.INITIAL_STATE, actor=who)
        return {
            "uuid": plan.uuid,
            "pipeline_uuid": plan.pipeline_uuid,
            "state": states.INITIAL_STATE,
            "last_event": "create",
            "history": [entry],
            "data": plan.data,
            "session": plan.session,
            "agent": plan.agent,
            "task": plan.task,
            "archive_path": plan.archive_path,
            "archive_system": plan.archive_system,
            "instanced": plan.instanced,
            "archive_collection_level": plan.archive_collection_level,
            "archive_patterns": plan.archive_patterns,
            "product_patterns": plan.product_patterns,
            "generated_by": plan.generated_by,
            "child_of": plan.child_of,
            "acted_on": plan.acted_on,
            "acted_using": plan.acted_using,
            "_properties": {
                "created_date": entry["date"],
                "modified_date": entry["date"],
                "revision": 0,
                "history_bytes": _entry_size(entry),
            },
            "_visible": True,
        }

    # -- reading ----------------------------------------------------------------------------

    def get(self, job_uuid: str, *, include_deleted: bool = False) -> Job:
        """A job by UUID; a deleted job is not found unless ``include_deleted``."""
        return Job.from_document(
            job_document(self.store, job_uuid, include_deleted=include_deleted)
        )

    def history(self, job_uuid: str, *, include_deleted: bool = False) -> list[HistoryEntry]:
        """The job's events, oldest first."""
        doc = job_document(self.store, job_uuid, include_deleted=include_deleted, history=True)
        return [HistoryEntry.from_document(e) for e in doc.get("history", [])]

    def find(
        self,
        *,
        state: str | None = None,
        pipeline: str | None = None,
        metadata: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        skip: int = 0,
        include_deleted: bool = False,
    ) -> list[Job]:
        """Jobs matching the filters, newest first.

        Args:
            state: One of :data:`datacatalog.states.STATES`.
            pipeline: A pipeline UUID or id.
            metadata: A metadata entity UUID the jobs are a ``child_of``.
            agent: The agent that created the jobs.
            limit: Page size (at most 1000; 0 means 1000).
            skip: Jobs to skip (paging).
            include_deleted: Include soft-deleted jobs.
        """
        if not _whole(limit, 0, MAX_PAGE) or not _whole(skip, 0, 2**63 - 1):
            raise InvalidRequestError(
                f"limit must be an integer within 0-{MAX_PAGE} (0: {MAX_PAGE}) and skip a "
                "non-negative 64-bit integer"
            )
        for name, value in (("state", state), ("agent", agent), ("metadata", metadata)):
            if value is not None and not isinstance(value, str):
                # A dict here would reach the query as an operator ({"$ne": None}).
                raise InvalidRequestError(f"{name} must be a string, not {type(value).__name__}")
        limit = limit or MAX_PAGE
        query: dict[str, Any] = {}
        if state is not None:
            if state not in states.STATES:
                raise InvalidRequestError(
                    f"unknown state {state!r}; known states: {', '.join(states.STATES)}"
                )
            query["state"] = state
        if pipeline is not None:
            query["pipeline_uuid"] = self.pipelines.get(pipeline).uuid
        if metadata is not None:
            if kind_of(metadata) not in METADATA_LEVELS:
                raise InvalidRequestError(f"{metadata!r} is not a metadata UUID")
            query["child_of"] = metadata
        if agent is not None:
            query["agent"] = agent
        if not include_deleted:
            query["_visible"] = True
        docs = self.store.find(
            "job",
            query,
            sort=[("_properties.created_date", -1), ("uuid", 1)],
            skip=skip,
            limit=limit,
            projection={"history": 0},
        )
        return [Job.from_document(d) for d in docs]

    # -- events -----------------------------------------------------------------------------

    def send(
        self,
        job_uuid: str,
        event: str,
        *,
        data: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        token: str | None = None,
        require_token: bool = False,
        actor: Actor | None = None,
    ) -> EventResult:
        """Apply one event to a job atomically.

        Args:
            job_uuid: The job.
            event: An event name from :data:`datacatalog.states.EVENTS`.
            data: Event data (a JSON object, at most 64 KiB).
            event_id: Client-chosen idempotency key; resending it changes nothing.
            token: The job token (or, for ``reset``/``ready``, an admin token). When
                given it is always checked.
            require_token: Refuse the event when no token is given.
            actor: Who sends it (defaults to this process).

        Raises:
            InvalidRequestError: Unknown event, bad data or key.
            UnauthorizedError: A required token is missing (or wrong: ForbiddenError).
            NotFoundError: No such job.
            InvalidTransitionError: The event is not allowed from the job's state.
            PayloadTooLargeError: The data or the job's history is over its limit.
        """
        row = states.transition(event)
        require_kind(job_uuid, "pipelinejob", what="job")
        if row.admin:
            self.check_admin(token, action=f"the {event} event")
        elif token is not None or require_token:
            tokens.check_job_token(self.secret, job_uuid, token)
        payload = check_object(data, where="event data", max_bytes=MAX_EVENT_DATA_BYTES)
        if event_id is not None and (not isinstance(event_id, str) or not 0 < len(event_id) <= 128):
            raise InvalidRequestError("event_id must be a string of 1-128 characters")
        who = actor or self.actor
        if row.admin:
            return self._admin_event(job_uuid, row, payload, event_id, who)
        return self._apply(job_uuid, row, payload, event_id, who)

    def _apply(
        self,
        job_uuid: str,
        row: states.Transition,
        payload: Mapping[str, Any],
        event_id: str | None,
        who: Actor,
    ) -> EventResult:
        """The one conditional update that applies an event (arguments already checked)."""
        event = row.event
        entry = self._entry(
            event, payload, event_id=event_id, to_state=row.target, actor=who, job=job_uuid
        )
        size = _entry_size(entry)
        update: dict[str, Any] = {
            "$set": {"last_event": event, **({"state": row.target} if row.target else {})},
            "$push": {"history": entry},
            "$inc": {"_properties.history_bytes": size},
        }
        query = {
            "uuid": job_uuid,
            "_visible": True,
            "state": {"$in": list(row.sources)},
            "history.uuid": {"$ne": entry["uuid"]},
            "_properties.history_bytes": {"$lte": _history_limit(row) - size},
        }
        for _attempt in range(3):
            after = self.store.update("job", query, update, projection={"history": 0})
            if after is not None:
                return EventResult(
                    Job.from_document(after), HistoryEntry.from_document(entry), True
                )
            outcome = self._explain_miss(job_uuid, event, entry["uuid"], size)
            if outcome is not None:
                return outcome
        raise ConflictError(f"job {job_uuid} kept changing while {event!r} was applied; retry")

    def _explain_miss(
        self, job_uuid: str, event: str, entry_uuid: str, size: int
    ) -> EventResult | None:
        doc = job_document(self.store, job_uuid, entry=entry_uuid)
        for stored in doc.get("history", []):
            if stored["uuid"] == entry_uuid:
                if stored["name"] != event:
                    # A retry resends the same event; another event under the same key is
                    # a client bug, and pretending it happened would hide it.
                    raise ConflictError(
                        f"event_id {stored.get('event_id')!r} was already used for the "
                        f"{stored['name']!r} event of job {job_uuid}, not {event!r}; "
                        "use a new key for a new event",
                        job=job_uuid,
                        event_id=stored.get("event_id"),
                    )
                doc.pop("history", None)
                return EventResult(
                    Job.from_document(doc), HistoryEntry.from_document(stored), False
                )
        if doc["state"] not in states.transition(event).sources:
            raise states.invalid_transition(event, doc["state"])
        used = int(doc.get("_properties", {}).get("history_bytes", 0))
        if used + size > _history_limit(states.transition(event)):
            raise PayloadTooLargeError(
                f"the history of job {job_uuid} is full ({used} of {MAX_HISTORY_BYTES} bytes); "
                "send smaller event data or retire the job",
                job=job_uuid,
            )
        return None  # the job changed between the update and the read: try again

    def _entry(
        self,
        name: str,
        data: Mapping[str, Any],
        *,
        event_id: str | None,
        to_state: str | None,
        actor: Actor,
        job: str | None = None,
    ) -> Document:
        entry_uuid = (
            typed_uuid(f"{job}:{event_id}", "pipelinejob_event")
            if event_id is not None
            else random_uuid("pipelinejob_event")
        )
        return {
            "uuid": entry_uuid,
            "event_id": event_id,
            "name": name,
            "date": utc_now(),
            "data": dict(data),
            "to_state": to_state,
            **actor.to_dict(),
        }

    # -- admin actions ----------------------------------------------------------------------

    def reset(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """RESET the job: unlink its indexed files and empty its archive directory.

        The same as sending the ``reset`` event (see :meth:`_admin_event`).
        """
        self.check_admin(token, action="reset")
        return self.send(job_uuid, "reset", token=token, actor=actor).job

    def ready(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """Make a RESET job CREATED again (the same as sending the ``ready`` event)."""
        self.check_admin(token, action="ready")
        return self.send(job_uuid, "ready", token=token, actor=actor).job

    def _admin_event(
        self,
        job_uuid: str,
        row: states.Transition,
        payload: Mapping[str, Any],
        event_id: str | None,
        who: Actor,
    ) -> EventResult:
        """Apply ``reset`` or ``ready`` with all the action entails, and audit it.

        However it arrives (:meth:`reset`, or :meth:`send` with the event), a reset
        unlinks the job's indexed files and empties its archive directory. The storage
        system is checked before anything is written. Once the job is RESET the action
        is audited, also when emptying the directory fails (the record then holds the
        error, and resetting again finishes the work). A replayed idempotency key
        changes nothing and is not audited again.
        """
        system = (
            self.storage.get(self.get(job_uuid).archive_system) if row.event == "reset" else None
        )
        result = self._apply(job_uuid, row, payload, event_id, who)
        if not result.applied:
            return result
        with self._audited(row.event, job_uuid, who) as details:
            if event_id is not None:
                details["event_id"] = event_id
            if system is not None:
                details["unlinked_files"] = self.store.update_many(
                    "file", {"generated_by": job_uuid}, {"$pull": {"generated_by": job_uuid}}
                )
                details["removed"] = len(system.remove_tree_contents(result.job.archive_path))
        return result

    def delete(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """Soft-delete: hide the job from queries and events; :meth:`undelete` restores it."""
        self.check_admin(token, action="delete")
        doc = self.store.update(
            "job",
            {"uuid": require_kind(job_uuid, "pipelinejob", what="job")},
            {"$set": {"_visible": False, "deleted_date": utc_now()}},
            projection={"history": 0},
        )
        if doc is None:
            raise NotFoundError(f"job {job_uuid} not found", job=job_uuid)
        self._audit("delete", job_uuid, {}, actor)
        return Job.from_document(doc)

    def undelete(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """Restore a soft-deleted job."""
        self.check_admin(token, action="undelete")
        doc = self.store.update(
            "job",
            {"uuid": require_kind(job_uuid, "pipelinejob", what="job")},
            {"$set": {"_visible": True, "deleted_date": None}},
            projection={"history": 0},
        )
        if doc is None:
            raise NotFoundError(f"job {job_uuid} not found", job=job_uuid)
        self._audit("undelete", job_uuid, {}, actor)
        return Job.from_document(doc)

    def purge(
        self,
        job_uuid: str,
        *,
        token: str | None,
        dry_run: bool = False,
        actor: Actor | None = None,
    ) -> PurgeReport:
        """Remove the job, its file records and its archive contents for good.

        With ``dry_run`` nothing is removed; the report lists what would go. The archive
        contents go first (a storage failure leaves the job and its records for another
        try), then the job, then its file records: an indexing run racing the purge finds
        the job gone after its next write and removes what it wrote since (see
        :mod:`datacatalog.indexing`). The action is audited, with the error when it
        failed part-way.
        """
        self.check_admin(token, action="purge")
        job = Job.from_document(job_document(self.store, job_uuid, include_deleted=True))
        system = self.storage.get(job.archive_system)
        file_query = {"generated_by": job_uuid}
        files = sorted(
            d["name"] for d in self.store.find("file", file_query, projection={"name": 1})
        )
        entries: list[str] = []
        with self._audited("purge", job_uuid, actor, dry_run=dry_run) as details:
            details.update(
                {
                    "archive_path": job.archive_path,
                    "archive_system": job.archive_system,
                    "files": len(files),
                    "pipeline_uuid": job.pipeline_uuid,
                    "child_of": job.child_of,
                }
            )
            if dry_run:
                entries = [f.path for f in system.list_files(job.archive_path).files]
            else:
                entries = system.remove_tree(job.archive_path)
                self.store.delete_many("job", {"uuid": job_uuid})
                self.store.delete_many("file", file_query)
            details["archive_entries"] = len(entries)
        return PurgeReport(
            job_uuid=job_uuid,
            dry_run=dry_run,
            archive_path=job.archive_path,
            archive_system=job.archive_system,
            files=files,
            archive_entries=sorted(entries),
        )

    def audit_log(self, job_uuid: str | None = None, *, limit: int = 100) -> list[AuditRecord]:
        """Admin actions, newest first (for one job, or all)."""
        if job_uuid is not None:
            require_kind(job_uuid, "pipelinejob", what="job")
        query = {"job_uuid": job_uuid} if job_uuid is not None else {}
        docs = self.store.find("audit", query, sort=[("date", -1)], limit=limit)
        return [AuditRecord.from_document(d) for d in docs]

    @contextmanager
    def _audited(
        self, action: str, job_uuid: str, actor: Actor | None, *, dry_run: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Audit the action done in the block, with the details it fills in.

        A failure is audited too, with its message, and then raised as it was.
        """
        details: dict[str, Any] = {}
        try:
            yield details
        except Exception as exc:
            details["error"] = str(exc) or type(exc).__name__
            # The action's own error is what the caller needs, even if the audit fails too.
            with suppress(DataCatalogError):
                self._audit(action, job_uuid, details, actor, dry_run=dry_run)
            raise
        self._audit(action, job_uuid, details, actor, dry_run=dry_run)

    def _audit(
        self,
        action: str,
        job_uuid: str,
        details: Mapping[str, Any],
        actor: Actor | None,
        *,
        dry_run: bool = False,
    ) -> None:
        self.store.insert(
            "audit",
            {
                "uuid": random_uuid("generic"),
                "action": action,
                "job_uuid": job_uuid,
                "date": utc_now(),
                "actor": (actor or self.actor).to_dict(),
                "details": dict(details),
                "dry_run": dry_run,
            },
        )


def _requests(
    values: Sequence[Any] | None, cls: type[IndexRequest], where: str
) -> list[dict[str, Any]]:
    if values is None:
        return []
    if not isinstance(values, (list, tuple)):
        raise InvalidRequestError(f"{where} must be a list of index requests")
    if len(values) > MAX_INDEX_REQUESTS:
        raise PayloadTooLargeError(f"{where} may hold at most {MAX_INDEX_REQUESTS} requests")
    out = []
    for value in values:
        request = index_request_from(value)
        if not isinstance(request, cls):
            raise InvalidRequestError(
                f"{where} holds a {request.kind} request, expected {cls.kind}"
            )
        out.append(request.to_dict())
    return out


def _replace_path(plan: JobPlan, path: str) -> JobPlan:
    return replace(plan, archive_path=path)


def _generator(value: Any) -> str:
    kind = kind_of(value)
    if kind not in ("process", "pipeline"):
        raise InvalidRequestError(
            f"generated_by {value!r} must be a process or pipeline UUID", value=str(value)
        )
    assert isinstance(value, str)
    return value


def _history_limit(row: states.Transition) -> int:
    return MAX_HISTORY_BYTES + (ADMIN_HISTORY_RESERVE if row.admin else 0)


def _entry_size(entry: Mapping[str, Any]) -> int:
    return encoded_size(entry.get("data") or {}) + _ENTRY_OVERHEAD
