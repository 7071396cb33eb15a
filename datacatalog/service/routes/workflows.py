"""Open reads of workflow executions: a job's executions, one execution with its tasks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from datacatalog.orchestrator.records import ExecutionRecords
from datacatalog.service import constraints
from datacatalog.service.dependencies import CatalogDep, JobUUID
from datacatalog.service.openapi import error_responses
from datacatalog.service.responses import ExecutionResponse, ExecutionsResponse

router = APIRouter(tags=["workflows"], responses=error_responses(400, 404))

ExecutionId = Annotated[
    str,
    Path(
        description="The execution's id (a UUID starting with `100`).",
        pattern=constraints.typed_uuid_pattern("generic"),
    ),
]


@router.get(
    "/jobs/{job_uuid}/executions",
    summary="List a job's workflow executions",
    description="The job's workflow executions, newest first.",
    response_model=ExecutionsResponse,
)
def get_executions(job_uuid: JobUUID, catalog: CatalogDep) -> dict[str, Any]:
    catalog.jobs.get(job_uuid)
    found = ExecutionRecords(catalog.store).executions(job_uuid)
    return {"job": job_uuid, "executions": [e.to_dict() for e in found]}


@router.get(
    "/executions/{execution_id}",
    summary="Get a workflow execution",
    description="The execution with its tasks: statuses, attempts, times and errors.",
    response_model=ExecutionResponse,
)
def get_execution(execution_id: ExecutionId, catalog: CatalogDep) -> dict[str, Any]:
    records = ExecutionRecords(catalog.store)
    execution = records.execution(execution_id)
    return {
        "execution": execution.to_dict(),
        "tasks": [t.to_dict() for t in records.tasks(execution.id)],
    }
