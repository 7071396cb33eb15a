"""HTTP routes for the lineage graph and a job's standard exports (open reads).

``GET /lineage/{uuid}`` answers the graph as JSON (the documented shape) or as a
picture (``format=dot|mermaid|svg|tree``); each picture node links to that node's own
lineage in the same direction and format. ``GET /jobs/{uuid}/export`` answers a job as
PROV-JSON, OpenLineage run events (JSON Lines) or an RO-Crate zip.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, WithJsonSchema

from datacatalog import provenance
from datacatalog.catalog import Catalog
from datacatalog.provenance import openlineage, rocrate
from datacatalog.provenance.graph import Node
from datacatalog.service import constraints
from datacatalog.service.dependencies import CatalogDep
from datacatalog.service.responses import ErrorResponse

MEDIA_TYPES = {
    "json": "application/json",
    "dot": "text/vnd.graphviz; charset=utf-8",
    "mermaid": "text/plain; charset=utf-8",
    "svg": "image/svg+xml",
    "tree": "text/plain; charset=utf-8",
}


class GraphNodeModel(BaseModel):
    """One entity of the graph."""

    id: str = Field(description="The entity's UUID.")
    kind: str = Field(description="job, file, pipeline, reference, sample, ...")
    label: str
    depth: int = Field(description="Edges from the root.")
    attrs: dict[str, Any]


class GraphEdgeModel(BaseModel):
    """One stored link, effect (source) → cause (target)."""

    source: str
    target: str
    relation: str


class LineageGraphModel(BaseModel):
    """The lineage graph: flat node and edge lists."""

    root: str
    direction: Literal["up", "down", "both"]
    depth: int
    relations: list[str]
    truncated: bool = Field(description="True when max_nodes cut the walk short.")
    frontier: list[str] = Field(description="UUIDs reached but left out by max_nodes.")
    nodes: list[GraphNodeModel]
    edges: list[GraphEdgeModel]


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "A bad direction, depth, relation or format."},
    404: {"model": ErrorResponse, "description": "No such entity or job (or it is deleted)."},
    500: {"model": ErrorResponse, "description": "An unexpected failure."},
    503: {"model": ErrorResponse, "description": "The database, or Graphviz for SVG, is missing."},
}


Relation = Literal[
    "generated_by", "acted_on", "acted_using", "derived_from", "derived_using", "child_of"
]
"""The relations a lineage walk may follow (datacatalog.provenance.RELATIONS)."""


router = APIRouter(tags=["provenance"])
"""The lineage graph and export routes."""


@router.get(
    "/lineage/{uuid}",
    summary="The lineage graph of an entity",
    description="Causes (`direction=up`), effects (`down`) or both of any catalogued "
    "entity, to `depth` edges, following the given `relation`s (default all). JSON has "
    "flat `nodes` and `edges` lists; `dot`, `mermaid`, `svg` and `tree` are pictures "
    "whose nodes link to their own lineage.",
    response_model=None,
    responses={
        **_ERRORS,
        200: {
            "model": LineageGraphModel,
            "description": "The graph (JSON) or its picture.",
            "content": {m.split(";")[0]: {} for m in MEDIA_TYPES.values() if "json" not in m},
        },
    },
)
def lineage(
    uuid: Annotated[
        str,
        Path(
            description="A typed UUID of any catalogued entity.",
            pattern=constraints.LINEAGE_ROOT,
        ),
    ],
    catalog: CatalogDep,
    direction: Literal["up", "down", "both"] = "up",
    depth: Annotated[int, Query(ge=0, le=provenance.MAX_DEPTH)] = provenance.DEFAULT_DEPTH,
    relation: Annotated[
        list[Relation] | None,
        Query(description="A relation to follow (default: all); repeat for several."),
    ] = None,
    format: Literal["json", "dot", "mermaid", "svg", "tree"] = "json",
    max_nodes: Annotated[int, Query(ge=1, le=provenance.MAX_NODES)] = provenance.DEFAULT_MAX_NODES,
    include_deleted: bool = False,
) -> Response:
    result = provenance.graph(
        catalog,
        uuid,
        direction=direction,
        depth=depth,
        relations=list(relation) if relation else None,
        include_deleted=include_deleted,
        max_nodes=max_nodes,
    )
    if format == "json":
        return JSONResponse(result.to_dict())

    def link(node: Node) -> str:
        query = {"direction": direction, "depth": depth, "format": format}
        return f"/lineage/{quote(node.id)}?{urlencode(query)}"

    return Response(provenance.render(result, format, link=link), media_type=MEDIA_TYPES[format])


@router.get(
    "/jobs/{job_uuid}/export",
    summary="Export a job as PROV-JSON, OpenLineage events or an RO-Crate",
    description="`prov-json`: a W3C PROV document. `openlineage`: the job's run events "
    "(JSON Lines, one OpenLineage event per line). `ro-crate`: a Process Run Crate as a "
    "zip, metadata only unless `with_files=true` (a finished job only).",
    responses={
        **_ERRORS,
        409: {
            "model": ErrorResponse,
            "description": "An RO-Crate of a job whose run is not over.",
        },
        200: {
            "content": {
                "application/json": {},
                "application/x-ndjson": {},
                "application/zip": {},
            }
        },
    },
)
def export(
    job_uuid: Annotated[str, Path(description="The job's UUID.", pattern=constraints.JOB_UUID)],
    catalog: CatalogDep,
    format: Literal["prov-json", "openlineage", "ro-crate"] = "prov-json",
    with_files: Annotated[
        bool,
        Query(description="Copy the files into the crate (format=ro-crate; ignored otherwise)."),
    ] = False,
    namespace: Annotated[
        str,
        Query(description="The OpenLineage job namespace (format=openlineage)."),
        WithJsonSchema(
            {**constraints.OPENLINEAGE_NAMESPACE, "default": openlineage.DEFAULT_NAMESPACE}
        ),
    ] = openlineage.DEFAULT_NAMESPACE,
) -> Response:
    # Refused whatever the format: the parameter's schema says what it may be.
    openlineage.check_namespace(namespace)
    catalog.jobs.get(job_uuid)  # a deleted job is hidden here as on every other read
    if format == "prov-json":
        return JSONResponse(json.loads(provenance.prov_json(catalog.store, job_uuid)))
    if format == "openlineage":
        body = openlineage.export(
            catalog.store, job_uuid, storage=catalog.storage, namespace=namespace
        )
        return Response(body, media_type="application/x-ndjson")
    return _crate(catalog, job_uuid, with_files=with_files)


def _crate(catalog: Catalog, job_uuid: str, *, with_files: bool) -> Response:
    """The job's RO-Crate as a zip attachment (built in a scratch directory)."""
    with tempfile.TemporaryDirectory(prefix="datacatalog-crate-") as scratch:
        target = FilePath(scratch) / f"{job_uuid}.zip"
        rocrate.export(
            catalog.store, job_uuid, target, storage=catalog.storage, with_files=with_files
        )
        content = target.read_bytes()
    return Response(
        content,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{job_uuid}-ro-crate.zip"'},
    )
