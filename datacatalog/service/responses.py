"""The shapes of request and response bodies, and the one error body.

Every error the service returns has the same body::

    {"error": {"code": "invalid_transition", "message": "...", "details": {...}}}

``code`` is the stable machine code of :mod:`datacatalog.errors` (plus
``method_not_allowed`` for a wrong HTTP method); the status comes from the
same table the command line reads its exit codes from.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from datacatalog.errors import DataCatalogError


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
    """One event for a job (SPEC §9)."""

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

    name: str = Field(description="The event: `run`, `update`, `resource`, `fail`, `finish`, ...")
    data: dict[str, Any] | None = Field(
        default=None, description="A JSON object kept with the event (at most 64 KiB)."
    )
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
    level: str = Field(default="1", description="Processing level of the indexed files.")
    filters: list[str] | None = Field(
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


class EventResponse(BaseModel):
    """The job after an event, and the history entry the event made (or had made)."""

    job: dict[str, Any] = Field(description="The job as stored after the event.")
    entry: dict[str, Any] = Field(description="The history entry of the event.")
    applied: bool = Field(
        description="False when the `event_id` had been seen already and nothing changed."
    )


class JobList(BaseModel):
    """One page of jobs, newest first."""

    jobs: list[dict[str, Any]]
    limit: int
    skip: int


class HistoryResponse(BaseModel):
    """A job's events, oldest first."""

    job: str
    history: list[dict[str, Any]]


class FilesResponse(BaseModel):
    """The files indexed for a job."""

    job: str
    files: list[dict[str, Any]]


class JobResponse(BaseModel):
    """A job after an administrative action."""

    job: dict[str, Any]


class Health(BaseModel):
    """Whether the service can read its catalog."""

    status: str = Field(description="`ok`, or `unavailable` (with an `error`).")
    error: ErrorDetail | None = None
