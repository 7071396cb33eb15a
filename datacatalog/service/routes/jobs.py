"""Open reads of jobs: listings, one job with its executions, its history, its files."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from datacatalog.service import constraints
from datacatalog.service.dependencies import CatalogDep, JobUUID
from datacatalog.service.openapi import error_responses
from datacatalog.service.responses import FilesResponse, HistoryResponse, JobList, JobModel

router = APIRouter(tags=["jobs"], responses=error_responses(400, 404))

StateFilter = Annotated[
    str | None,
    Query(description="A job state, e.g. `FINISHED` (any case).", pattern=constraints.STATE_FILTER),
]
PipelineFilter = Annotated[
    str | None,
    Query(
        description="A pipeline UUID, or a pipeline id (which is not a UUID).",
        min_length=1,
        json_schema_extra=constraints.PIPELINE_REFERENCE,
    ),
]
MetadataFilter = Annotated[
    str | None,
    Query(
        description="A metadata UUID the jobs are a `child_of`.",
        pattern=constraints.METADATA_UUID,
    ),
]
AgentFilter = Annotated[str | None, Query(description="The agent that created the jobs.")]
Limit = Annotated[int, Query(ge=0, le=1000, description="Page size (0: 1000).")]
Skip = Annotated[int, Query(ge=0, le=constraints.MAX_SKIP, description="Jobs to skip (paging).")]


@router.get(
    "/jobs",
    summary="List jobs",
    description="Jobs matching every filter given, newest first. Deleted jobs are left out.",
    response_model=JobList,
)
def list_jobs(
    catalog: CatalogDep,
    state: StateFilter = None,
    pipeline: PipelineFilter = None,
    metadata: MetadataFilter = None,
    agent: AgentFilter = None,
    limit: Limit = 100,
    skip: Skip = 0,
) -> dict[str, Any]:
    found = catalog.jobs.find(
        state=state.strip().upper() if state is not None else None,
        pipeline=pipeline,
        metadata=metadata,
        agent=agent,
        limit=limit,
        skip=skip,
    )
    return {"jobs": [j.to_dict() for j in found], "limit": limit, "skip": skip}


@router.get(
    "/jobs/{job_uuid}",
    summary="Get a job",
    description="The job as stored, without its history, and its `executions`: each run "
    "of it (run id, holder, times, outcome) and each up-to-date check.",
    response_model=JobModel,
)
def get_job(job_uuid: JobUUID, catalog: CatalogDep) -> dict[str, Any]:
    job = catalog.jobs.get(job_uuid).to_dict()
    job["executions"] = [e.to_dict() for e in catalog.jobs.executions(job_uuid)]
    return job


@router.get(
    "/jobs/{job_uuid}/history",
    summary="Get a job's history",
    description="Every event the job received, oldest first, with who sent it.",
    response_model=HistoryResponse,
)
def get_history(job_uuid: JobUUID, catalog: CatalogDep) -> dict[str, Any]:
    return {"job": job_uuid, "history": [e.to_dict() for e in catalog.jobs.history(job_uuid)]}


@router.get(
    "/jobs/{job_uuid}/files",
    summary="List a job's indexed files",
    description="File records the job generated (filled in by indexing).",
    response_model=FilesResponse,
)
def get_files(job_uuid: JobUUID, catalog: CatalogDep) -> dict[str, Any]:
    catalog.jobs.get(job_uuid)  # a deleted job is hidden here as on every other read
    return {"job": job_uuid, "files": [f.to_dict() for f in catalog.indexing.files(job_uuid)]}
