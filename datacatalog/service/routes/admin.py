"""Administrative actions on a job: reset, ready, delete, undelete and purge.

Each needs an admin token (made where the secret is, ``datacatalog admin token``; the
service never issues one) and is recorded in the audit log with the caller's host.
The four actions answered with the job are one route each, made from
:data:`JOB_ACTIONS`; purge answers with its report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from datacatalog.jobs.model import PurgeReport
from datacatalog.service.dependencies import CatalogDep, JobUUID, Token, caller
from datacatalog.service.openapi import error_responses
from datacatalog.service.responses import JobResponse

router = APIRouter(tags=["admin"])

_STATUSES = (400, 401, 403, 404, 409, 413)
"""The error statuses every admin route documents."""

JOB_ACTIONS: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    (
        "reset",
        "Reset a job",
        "Move the job to RESET, empty its archive directory and unlink the files "
        "indexed from it. Recorded in the audit log.",
        (502,),
    ),
    (
        "ready",
        "Make a reset job ready",
        "Move a RESET job back to CREATED. Recorded in the audit log.",
        (),
    ),
    (
        "delete",
        "Delete a job (recoverable)",
        "Hide the job from queries and events; `undelete` restores it.",
        (),
    ),
    ("undelete", "Restore a deleted job", "Make a deleted job visible again.", ()),
)
"""Admin actions answered with the job: (action, summary, description, extra statuses).

Each is the :class:`~datacatalog.jobs.JobService` method of the same name.
"""


def _job_action(action: str) -> Callable[..., dict[str, Any]]:
    """The route of one :data:`JOB_ACTIONS` entry."""

    def route(
        job_uuid: JobUUID, token: Token, request: Request, catalog: CatalogDep
    ) -> dict[str, Any]:
        act = getattr(catalog.jobs, action)
        return {"job": act(job_uuid, token=token, actor=caller(request)).to_dict()}

    route.__name__ = f"{action}_job"  # the OpenAPI operation id
    return route


for _action, _summary, _description, _extra in JOB_ACTIONS:
    router.post(
        f"/admin/jobs/{{job_uuid}}/{_action}",
        summary=_summary,
        description=_description,
        response_model=JobResponse,
        responses=error_responses(*_STATUSES, *_extra),
    )(_job_action(_action))


@router.post(
    "/admin/jobs/{job_uuid}/purge",
    summary="Purge a job for good",
    description="Remove the job, its file records and its archive contents. With "
    "`dry_run=true` nothing is removed and the report lists what would go.",
    response_model=PurgeReport,
    responses=error_responses(*_STATUSES, 502),
)
def purge_job(
    job_uuid: JobUUID,
    token: Token,
    request: Request,
    catalog: CatalogDep,
    dry_run: Annotated[bool, Query(description="Only report what would be removed.")] = False,
) -> PurgeReport:
    return catalog.jobs.purge(job_uuid, token=token, dry_run=dry_run, actor=caller(request))
