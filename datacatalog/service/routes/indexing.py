"""Indexing a job's outputs over HTTP: a job write, so the job's token is required."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from datacatalog import tokens
from datacatalog.service.dependencies import CatalogDep, JobUUID, Token
from datacatalog.service.openapi import error_responses
from datacatalog.service.responses import IndexReportModel, IndexRequestBody

router = APIRouter(tags=["indexing"])


@router.post(
    "/jobs/{job_uuid}/index",
    summary="Index a job's outputs",
    description="List the job's archive path and record one file per matching file, "
    "linked to the job. The job goes FINISHED → INDEXING and, with `transition` (the "
    "default here), back to FINISHED. Re-indexing is idempotent. Needs the job token.",
    response_model=IndexReportModel,
    responses=error_responses(400, 401, 403, 404, 409, 413, 502),
)
def index_job(
    job_uuid: JobUUID,
    token: Token,
    catalog: CatalogDep,
    body: Annotated[IndexRequestBody | None, Body()] = None,
) -> dict[str, Any]:
    options = body or IndexRequestBody()
    # indexing checks a token only when one is given; over HTTP one is required.
    tokens.check_job_token(catalog.jobs.secret, job_uuid, token)
    report = catalog.indexing.index(
        job_uuid,
        token=token,
        transition=options.transition,
        level=options.level,
        fixity=options.fixity,
        filters=options.filters,
        permissive=options.permissive,
    )
    return report.to_dict()
