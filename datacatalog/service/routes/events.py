"""Job writes that move a job through its state machine: events and scheduler statuses.

Both need the job's token (``?token=`` or ``Authorization: Bearer``); administrative
events (``reset``, ``ready``) are refused here and belong to :mod:`.admin`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import WithJsonSchema

from datacatalog import states
from datacatalog.catalog import Catalog
from datacatalog.errors import InvalidRequestError
from datacatalog.service import constraints
from datacatalog.service.dependencies import CatalogDep, JobUUID, Token, caller
from datacatalog.service.openapi import error_responses
from datacatalog.service.responses import EventRequest, EventResponse

router = APIRouter(tags=["events"], responses=error_responses(400, 401, 403, 404, 409, 413))

StatusQuery = Annotated[
    str,
    Query(
        description="The scheduler status, e.g. `RUNNING` (any case; not blank).",
        max_length=64,
        pattern=constraints.NOT_BLANK,
    ),
]
EventData = Annotated[
    dict[str, Any] | None,
    WithJsonSchema(constraints.freeform_object("Event data (a JSON object).")),
    Body(description="Event data (a JSON object)."),
]
EventIdQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=128, description="Idempotency key of the event."),
]


def remote_event(
    catalog: Catalog,
    request: Request,
    job_uuid: str,
    name: str,
    *,
    data: dict[str, Any] | None,
    event_id: str | None,
    token: str | None,
) -> dict[str, Any]:
    """Apply an event from a remote caller (the job token is required): the answer body."""
    result = catalog.jobs.send(
        job_uuid,
        name,
        data=data,
        event_id=event_id,
        token=token,
        require_token=True,
        actor=caller(request),
    )
    return {
        "job": result.job.to_dict(),
        "entry": result.entry.to_dict(),
        "applied": result.applied,
    }


@router.post(
    "/jobs/{job_uuid}/events",
    summary="Send an event to a job",
    description="Apply one event (`run`, `update`, `resource`, `fail`, `finish`, `index`, "
    "`indexed`, `validate`, ...) atomically. This is the job's webhook URL. Resending an "
    "`event_id` that was already applied changes nothing and returns `applied: false`. "
    "`reset` and `ready` are administrative: use `/admin/jobs/{uuid}/...`.",
    response_model=EventResponse,
)
def send_event(
    job_uuid: JobUUID, body: EventRequest, token: Token, request: Request, catalog: CatalogDep
) -> dict[str, Any]:
    if states.transition(body.name).admin:
        raise InvalidRequestError(
            f"{body.name!r} is an administrative event; "
            f"use POST /admin/jobs/{job_uuid}/{body.name} with an admin token",
            event=body.name,
        )
    return remote_event(
        catalog, request, job_uuid, body.name, data=body.data, event_id=body.event_id, token=token
    )


@router.post(
    "/jobs/{job_uuid}/status",
    summary="Report a scheduler status",
    description="Map an external scheduler status to an event and apply it: `RUNNING` → "
    "`run`, `FINISHED` → `finish`, `FAILED`/`STOPPED`/`ARCHIVING_FAILED` → `fail`, "
    "`HEARTBEAT` → `update`, anything else (`PENDING`, `QUEUED`, `STAGING_INPUTS`, ...) → "
    "`resource`. An optional JSON object body becomes the event data; the reported "
    "status is kept in it as `status` unless the body sets that key.",
    response_model=EventResponse,
)
def report_status(
    job_uuid: JobUUID,
    status: StatusQuery,
    token: Token,
    request: Request,
    catalog: CatalogDep,
    data: EventData = None,
    event_id: EventIdQuery = None,
) -> dict[str, Any]:
    event = states.event_for_status(status)
    payload = dict(data or {})
    payload.setdefault("status", status.strip().upper())
    return remote_event(
        catalog, request, job_uuid, event, data=payload, event_id=event_id, token=token
    )
