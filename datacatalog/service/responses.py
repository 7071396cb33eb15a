"""The shapes of request and response bodies, and the one error body.

Every error the service returns has the same body::

    {"error": {"code": "invalid_transition", "message": "...", "details": {...}}}

``code`` is the stable machine code of :mod:`datacatalog.errors` (plus
``method_not_allowed`` for a wrong HTTP method); the status comes from the
same table the command line reads its exit codes from.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from datacatalog.errors import DataCatalogError
from datacatalog.indexing.records import FileRecord
from datacatalog.jobs.model import PurgeReport
from datacatalog.service import constraints
from datacatalog.service.schema_models import model_from_schema


def error_body(error: DataCatalogError) -> dict[str, Any]:
    """The JSON body for ``error``: ``{"error": {"code", "message", "details"}}``."""
    body = error.to_dict()
    body.setdefault("details", {})
    return {"error": body}


# -- errors ----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """What went wrong, for machines (``code``) and people (``message``)."""

    code: str = Field(description="Stable machine code, e.g. `not_found`, `invalid_transition`.")
    message: str = Field(description="A sentence saying what went wrong and what to do.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Structured facts: the job, the state, allowed events."
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


# -- requests --------------------------------------------------------------------------------


class EventRequest(BaseModel):
    """One event for a job (docs/service.md, "Events")."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"name": "run", "data": {"scheduler_id": "4242"}, "event_id": "run-4242"},
                {"name": "finish"},
            ]
        },
    )

    # The service checks the name against the state machine (naming the known events);
    # the document states the same set.
    name: str = Field(
        description="The event: `run`, `update`, `resource`, `fail`, `finish`, ...",
        json_schema_extra=constraints.EVENT_NAME,
    )
    data: Annotated[
        dict[str, Any] | None,
        WithJsonSchema(
            constraints.freeform_object("A JSON object kept with the event (at most 64 KiB).")
        ),
    ] = Field(default=None, description="A JSON object kept with the event (at most 64 KiB).")
    event_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Idempotency key: resending an event with the same key changes nothing.",
    )


class IndexRequestBody(BaseModel):
    """Options for indexing a job's archive path."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"fixity": True, "level": "1", "transition": True}]},
    )

    fixity: bool = Field(default=False, description="Compute a sha256 checksum of each file.")
    level: Annotated[str | None, WithJsonSchema(constraints.INDEX_LEVEL_OR_NULL)] = Field(
        default=None,
        description="Processing level of the indexed files: `0`-`3`, `Reference` or `User`; "
        "absent or null: the level the job's pipeline declares.",
    )
    filters: Annotated[list[str] | None, WithJsonSchema(constraints.INDEX_FILTERS)] = Field(
        default=None,
        description="Regular expressions (OR-ed, `search` on the path relative to the archive "
        "path) selecting the files to index; default: the job's own index requests.",
    )
    transition: bool = Field(
        default=True,
        description="Send `indexed` at the end, so the job goes FINISHED → INDEXING → "
        "FINISHED; without it the job is left INDEXING.",
    )
    permissive: bool = Field(
        default=False, description="Skip `derived_from` references that do not resolve."
    )


# -- responses -------------------------------------------------------------------------------
#
# The shapes of what the routes return (the ``to_dict()`` of the core's value objects), so
# the OpenAPI document describes every field. ``extra="allow"`` keeps any field a newer
# core adds; dates are ISO 8601 strings in UTC, as the core writes them.

_OPEN = ConfigDict(extra="allow")


class LeaseModel(BaseModel):
    """The job's lease: its one active execution (a stage driver or a workflow run)."""

    model_config = _OPEN

    job_uuid: str
    holder: str = Field(description="The driver's or execution's id.")
    kind: str = Field(description="`driver` or `workflow`.")
    host: str
    pid: int
    since: str = Field(description="When the holder took the lease (ISO 8601, server time).")
    renewed: str | None = Field(description="The holder's last renewal.")
    expires: str = Field(description="When the lease lapses unless renewed.")
    ttl: float = Field(description="Seconds each renewal extends the lease by.")
    taken_over: dict[str, Any] | None = Field(
        description="The lapsed lease this one took over (holder, kind, host, pid, expires)."
    )


class JobExecutionModel(BaseModel):
    """One execution of a job (or an up-to-date check), read from its history."""

    model_config = _OPEN

    number: int | None = Field(description="0 for the first execution; null for a check.")
    run_id: str | None = Field(description="The execution's (OpenLineage) run id.")
    began_with: str = Field(description="`run`, `retry`, `rerun`; `reuse` for a check.")
    started: str
    ended: str | None
    outcome: str = Field(
        description="`running`, `finished`, `failed`, `reset` or `up_to_date` (nothing ran)."
    )
    reason: str | None = Field(description="Why it failed, or why it ran again.")
    holder: str | None = Field(description="The driver or workflow execution, or the agent.")
    host: str | None
    pid: int | None
    taken_over_from: list[str] = Field(description="Holders whose lapsed lease it took over.")
    details: dict[str, Any] = Field(
        description="What a re-run superseded and cleared; what a check verified."
    )


class JobModel(BaseModel):
    """A job as stored, without its history."""

    model_config = _OPEN

    uuid: str = Field(description="The job's typed UUID (`107…`).")
    pipeline_uuid: str
    state: str = Field(description="The job's state, e.g. `RUNNING`.")
    last_event: str
    data: dict[str, Any] = Field(description="The job's parameters (part of its identity).")
    archive_path: str
    archive_system: str
    instanced: bool
    session: str | None
    agent: str | None
    task: str | None
    child_of: list[str] = Field(description="UUIDs of the metadata the job is computed from.")
    generated_by: list[str]
    acted_on: list[str]
    acted_using: list[str]
    archive_patterns: list[dict[str, Any]]
    product_patterns: list[dict[str, Any]]
    archive_collection_level: str | None
    visible: bool
    created_date: str | None = Field(description="ISO 8601, UTC.")
    modified_date: str | None = Field(description="ISO 8601, UTC.")
    revision: int
    lease: LeaseModel | None = Field(
        None, description="Who is running the job now, or null when no one holds its lease."
    )
    executions: list[JobExecutionModel] | None = Field(
        None,
        description="Every execution of the job and every up-to-date check, oldest first "
        "(`GET /jobs/{uuid}`; null in listings and event answers).",
    )


class HistoryEntryModel(BaseModel):
    """One event in a job's history, with who sent it."""

    model_config = _OPEN

    uuid: str
    name: str = Field(description="The event, e.g. `run`.")
    date: str = Field(description="ISO 8601, UTC, millisecond precision.")
    data: dict[str, Any]
    event_id: str | None = Field(description="The idempotency key, when one was given.")
    to_state: str | None
    agent: str | None
    host: str | None
    pid: int | None
    version: str | None


FileRecordModel = model_from_schema(
    "file",
    name="FileRecordModel",
    doc="An indexed file.",
    order=FileRecord,
    descriptions={"name": "The file's absolute catalog path."},
)
"""An indexed file: the public fields of ``schemas/file.json``, as ``FileRecord.to_dict()``."""


class EventResponse(BaseModel):
    """The job after an event, and the history entry the event made (or had made)."""

    job: JobModel = Field(description="The job as stored after the event.")
    entry: HistoryEntryModel = Field(description="The history entry of the event.")
    applied: bool = Field(
        description="False when the `event_id` had been seen already and nothing changed."
    )


class JobList(BaseModel):
    """One page of jobs, newest first."""

    jobs: list[JobModel]
    limit: int
    skip: int


class HistoryResponse(BaseModel):
    """A job's events, oldest first."""

    job: str
    history: list[HistoryEntryModel]


class FilesResponse(BaseModel):
    """The files indexed for a job."""

    job: str
    files: list[FileRecordModel]  # type: ignore[valid-type]  # a model built at run time


class ExecutionModel(BaseModel):
    """A workflow execution on a job."""

    model_config = _OPEN

    id: str = Field(description="The execution's id (a UUID starting `100`).")
    job_uuid: str
    workflow_name: str
    status: str = Field(description="pending, started, cancelling, succeeded, failed or cancelled.")
    reason: str | None = Field(description="Why it ended when not succeeded.")
    inputs: dict[str, Any]
    executor: str
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    error: dict[str, Any] | None = Field(description="The root cause: type, message, traceback.")
    cancel_requested: bool
    resumes: int


class TaskModel(BaseModel):
    """One task of a workflow execution."""

    model_config = _OPEN

    name: str
    operation: str
    dependencies: list[str]
    status: str = Field(description="pending, started, retrying, success or failed.")
    attempts: int
    max_attempts: int
    started_at: str | None
    ended_at: str | None
    error: dict[str, Any] | None
    attempt_log: list[dict[str, Any]]


class ExecutionsResponse(BaseModel):
    """A job's workflow executions, newest first."""

    job: str
    executions: list[ExecutionModel]


class ExecutionResponse(BaseModel):
    """One execution with its tasks."""

    execution: ExecutionModel
    tasks: list[TaskModel]


class JobResponse(BaseModel):
    """A job after an administrative action."""

    job: JobModel


class SkippedEntry(BaseModel):
    """An archive entry the listing left out, and why."""

    path: str
    reason: str


class FileError(BaseModel):
    """A file that could not be read, or a reference a permissive run dropped."""

    path: str
    message: str


class IndexReportModel(BaseModel):
    """What one indexing run did."""

    model_config = _OPEN

    job_uuid: str
    seen: int = Field(description="Files listed under the archive path.")
    matched: int = Field(description="Files an index request selected.")
    written: int = Field(description="File records written.")
    files: list[str] = Field(description="UUIDs of the records written, in path order.")
    skipped: list[SkippedEntry]
    errors: list[FileError]
    batches: int = Field(description="Bulk writes sent.")
    state: str = Field(description="The job's state at the end.")


PurgeReportModel = PurgeReport
"""What a purge removed: the core's value itself, which FastAPI documents and serializes."""


class LineageResponse(BaseModel):
    """Everything upstream of one file (stored documents, dates as ISO 8601)."""

    model_config = _OPEN

    file: dict[str, Any] = Field(description="The file record.")
    jobs: list[dict[str, Any]] = Field(description="The jobs that generated it.")
    pipelines: list[dict[str, Any]] = Field(description="Those jobs' pipelines.")
    metadata: list[dict[str, Any]] = Field(
        description="The metadata chain, up to the experiment design."
    )
    upstream_files: list[dict[str, Any]] = Field(
        description="Every file it was derived from, followed transitively."
    )


class Health(BaseModel):
    """Whether the service can read its catalog."""

    status: str = Field(description="`ok`, or `unavailable` (with an `error`).")
    error: ErrorDetail | None = None
