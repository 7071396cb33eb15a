"""Open reads of provenance: a file traced upstream, a job as W3C PROV-JSON.

The lineage graph and the other exports are in :mod:`.lineage`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query

from datacatalog import provenance
from datacatalog.service import constraints
from datacatalog.service.dependencies import CatalogDep, JobUUID
from datacatalog.service.openapi import error_responses
from datacatalog.service.responses import LineageResponse

router = APIRouter(tags=["provenance"], responses=error_responses(400, 404))

FileReference = Annotated[
    str,
    Query(
        description="A file UUID, an absolute catalog path (no `..` parts) or a "
        "storage URI with a path.",
        min_length=1,
        json_schema_extra=constraints.FILE_REFERENCE,
    ),
]


@router.get(
    "/files/lineage",
    summary="Trace a file upstream",
    description="The jobs that generated the file (by UUID or absolute catalog path), "
    "their pipelines and data, the metadata chain up to the experiment design, and the "
    "files it was derived from.",
    response_model=LineageResponse,
)
def file_lineage(file: FileReference, catalog: CatalogDep) -> dict[str, Any]:
    return provenance.lineage(catalog.store, file).to_dict()


@router.get(
    "/jobs/{job_uuid}/prov",
    summary="Export a job as W3C PROV-JSON",
    description="The job, its outputs with checksums, its inputs, pipeline and metadata.",
    response_model=dict[str, Any],
)
def job_prov(job_uuid: JobUUID, catalog: CatalogDep) -> dict[str, Any]:
    catalog.jobs.get(job_uuid)  # a deleted job is hidden here as on every other read
    exported: dict[str, Any] = json.loads(provenance.prov_json(catalog.store, job_uuid))
    return exported
