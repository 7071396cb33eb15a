"""The dashboard's pages: one read-only route per page, over one catalog.

==============================  ========================================================
path (under the mount point)    page
==============================  ========================================================
``/``                           jobs: filters, sorting, keyset paging, live states
``/jobs/{uuid}``                a job: identity, state, timeline, files, lineage
``/jobs/{uuid}/prov.json``      the job as W3C PROV-JSON (a download)
``/jobs/{uuid}/openlineage...``  its OpenLineage run events, JSON Lines (a download)
``/jobs/{uuid}/ro-crate.zip``   its Process Run Crate, metadata only (a download)
``/files/{uuid}``               a file: record, storage, preview, lineage up and down
``/files/{uuid}/content``       the file itself, on local storage (a download)
``/pipelines``, ``/{uuid}``     pipelines, and one pipeline with its newest jobs
``/metadata``, ``/{uuid}``      metadata trees, and one entity with its children and jobs
``/search?q=``                  a UUID, canonical id or path, to its page
``/api/states?uuid=...``        states of some jobs, as JSON (the pages' live refresh)
==============================  ========================================================

Routes are plain functions (the store blocks; FastAPI runs them in its thread pool).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.responses import HTMLResponse

from datacatalog import provenance
from datacatalog.catalog import Catalog
from datacatalog.clock import utc_now
from datacatalog.errors import DataCatalogError, InvalidRequestError, NotFoundError
from datacatalog.identifiers import require_kind
from datacatalog.indexing import file_document
from datacatalog.jobs import HistoryEntry, Job, job_document
from datacatalog.jobs.executions import executions as job_executions
from datacatalog.metadata import ID_FIELDS, LEVELS, PARENTS
from datacatalog.provenance import openlineage, rocrate
from datacatalog.service.ui import details, executions, lookups, pictures, queries
from datacatalog.service.ui.queries import JobPage, JobQuery
from datacatalog.service.ui.render import Pages
from datacatalog.service.ui.search import page_path, search

FILES_PER_PAGE = 200
CHUNK_BYTES = 1 << 20
JOBS_PER_ENTITY = 50
MAX_LIVE_JOBS = 200


def page_routes(catalog: Catalog, pages: Pages) -> APIRouter:
    """The dashboard's routes over ``catalog``, rendered by ``pages``."""
    router = APIRouter()
    _job_routes(router, catalog, pages)
    _export_routes(router, catalog)
    _file_routes(router, catalog, pages)
    _browse_routes(router, catalog, pages)
    return router


def _job_routes(router: APIRouter, catalog: Catalog, pages: Pages) -> None:
    """The job list, the live states it polls and a job's page."""
    store = catalog.store

    @router.get("/", response_class=HTMLResponse)
    def jobs_page(request: Request) -> HTMLResponse:
        params = dict(request.query_params)
        problem: DataCatalogError | None = None
        page = JobPage([], None, None)
        try:
            query = JobQuery.from_params(params)
        except InvalidRequestError as exc:
            query, problem = JobQuery(), exc
        if problem is None:
            try:
                page = queries.job_page(
                    store,
                    query,
                    after_cursor=params.get("after") or None,
                    before_cursor=params.get("before") or None,
                )
            except (InvalidRequestError, NotFoundError) as exc:
                problem = exc
        # A bad filter is shown on the page itself, with the form to fix it.
        return pages.render_form(
            request,
            "jobs.html",
            problem=problem,
            pipelines=catalog.pipelines,
            title="Jobs",
            nav="jobs",
            query=query,
            given=params,
            page=page,
            page_sizes=queries.PAGE_SIZES,
            sorts=list(queries.SORTS),
            metadata_filters=queries.METADATA_FILTERS,
        )

    @router.get("/api/states")
    def live_states(
        uuid: Annotated[list[str], Query(max_length=64, description="Job UUIDs.")],
    ) -> JSONResponse:
        if len(uuid) > MAX_LIVE_JOBS:
            raise InvalidRequestError(f"ask for at most {MAX_LIVE_JOBS} jobs at once")
        return JSONResponse({"jobs": queries.job_states(store, uuid)})

    @router.get("/jobs/{job_uuid}", response_class=HTMLResponse)
    def job_page(
        request: Request,
        job_uuid: str,
        files_after: Annotated[str | None, Query(max_length=4096)] = None,
    ) -> HTMLResponse:
        document = job_document(store, job_uuid, history=True)
        history = [HistoryEntry.from_document(e) for e in document.get("history", [])]
        job = Job.from_document(document)
        files, more_files = lookups.job_files(
            store, job.uuid, after_name=files_after or None, limit=FILES_PER_PAGE
        )
        names = lookups.labels(
            store,
            [job.pipeline_uuid, *job.child_of, *job.acted_on, *job.acted_using, *job.generated_by],
        )
        entries, left_out = details.timeline(history)
        return pages.render(
            request,
            "job.html",
            title=f"Job {job.uuid}",
            nav="jobs",
            job=job,
            names=names,
            pipeline=store.get("pipeline", {"uuid": job.pipeline_uuid}),
            chain=provenance.metadata_chain(store, job.child_of),
            next_events=details.next_events(job.state, job.uuid),
            failure=details.failure(history) if job.state == "FAILED" else None,
            holder=details.holder(document, history, now=utc_now()),
            verify=details.last_verify(history),
            entries=entries,
            left_out=left_out,
            history_size=len(history),
            files=files,
            files_after=files_after,
            more_files=more_files,
            file_count=queries.file_counts(store, [job.uuid]).get(job.uuid, 0),
            relative=lambda name: details.relative_name(job.archive_path, name),
            live=job.state in queries.LIVE_STATES,
            picture=pictures.picture(store, job.uuid, link=_linker(request)),
            rocrate=job.state in rocrate.FINISHED_STATES,
            executions=executions.executions(store, job.uuid),
            max_executions=executions.MAX_EXECUTIONS,
            runs=job_executions(job.uuid, history),
        )


def _export_routes(router: APIRouter, catalog: Catalog) -> None:
    """A job's provenance as downloads (PROV-JSON, OpenLineage, RO-Crate)."""
    store = catalog.store

    @router.get("/jobs/{job_uuid}/prov.json")
    def job_prov(job_uuid: str) -> Response:
        job_document(store, job_uuid)  # a deleted or unknown job is not exported
        return _download(provenance.prov_json(store, job_uuid), f"{job_uuid}.prov.json")

    @router.get("/jobs/{job_uuid}/openlineage.jsonl")
    def job_openlineage(job_uuid: str) -> Response:
        job_document(store, job_uuid)
        body = openlineage.export(store, job_uuid, storage=catalog.storage)
        return _download(body, f"{job_uuid}.openlineage.jsonl", "application/x-ndjson")

    @router.get("/jobs/{job_uuid}/ro-crate.zip")
    def job_rocrate(job_uuid: str) -> Response:
        job_document(store, job_uuid)
        with tempfile.TemporaryDirectory(prefix="datacatalog-crate-") as scratch:
            target = Path(scratch) / f"{job_uuid}.zip"
            rocrate.export(store, job_uuid, target, storage=catalog.storage)
            content = target.read_bytes()
        return _download(content, f"{job_uuid}-ro-crate.zip", "application/zip")


def _file_routes(router: APIRouter, catalog: Catalog, pages: Pages) -> None:
    """A file's page and its content."""
    store = catalog.store

    @router.get("/files/{file_uuid}", response_class=HTMLResponse)
    def file_page(request: Request, file_uuid: str) -> HTMLResponse:
        require_kind(file_uuid, "file", what="file")
        record = file_document(store, file_uuid)
        upstream = provenance.lineage(store, file_uuid)
        below = lookups.downstream(store, file_uuid)
        names = lookups.labels(
            store,
            [
                *(job["pipeline_uuid"] for job in upstream.jobs),
                *record.get("derived_from", []),
                *record.get("derived_using", []),
                *record.get("child_of", []),
            ],
        )
        system_name = record["storage_system"]
        url = catalog.storage.get(system_name).url if system_name in catalog.storage else None
        content = lookups.content(catalog.storage, record)
        return pages.render(
            request,
            "file.html",
            title=f"File {record['name']}",
            nav="jobs",
            record=record,
            names=names,
            lineage=upstream,
            downstream=below,
            system_url=details.location(url, "") if url else None,
            location=details.location(url, record["name"]),
            picture=pictures.picture(store, record["uuid"], link=_linker(request)),
            content=content,
        )

    @router.get("/files/{file_uuid}/content")
    def file_content(file_uuid: str) -> Response:
        require_kind(file_uuid, "file", what="file")
        record = file_document(store, file_uuid)
        stream = lookups.open_local(catalog.storage, record)
        name = record["name"].rsplit("/", 1)[-1]
        return StreamingResponse(
            _chunks(stream),
            media_type="application/octet-stream",  # a download, never shown as a page
            headers={"Content-Disposition": _attachment(name)},
        )


def _browse_routes(router: APIRouter, catalog: Catalog, pages: Pages) -> None:
    """Pipelines, the metadata tree and search."""
    store = catalog.store

    @router.get("/pipelines", response_class=HTMLResponse)
    def pipelines_page(request: Request) -> HTMLResponse:
        return pages.render(
            request,
            "pipelines.html",
            title="Pipelines",
            nav="pipelines",
            pipelines=catalog.pipelines.find(limit=lookups.MAX_CHILDREN),
            limit=lookups.MAX_CHILDREN,
        )

    @router.get("/pipelines/{pipeline_uuid}", response_class=HTMLResponse)
    def pipeline_page(request: Request, pipeline_uuid: str) -> HTMLResponse:
        pipeline = catalog.pipelines.get(require_kind(pipeline_uuid, "pipeline", what="pipeline"))
        return pages.render(
            request,
            "pipeline.html",
            title=f"Pipeline {pipeline.id}",
            nav="pipelines",
            pipeline=pipeline,
            rows=queries.jobs_of(store, "pipeline_uuid", pipeline.uuid, limit=JOBS_PER_ENTITY),
            limit=JOBS_PER_ENTITY,
        )

    @router.get("/metadata", response_class=HTMLResponse)
    def metadata_page(request: Request) -> HTMLResponse:
        return pages.render(
            request,
            "metadata.html",
            title="Metadata",
            nav="metadata",
            tops={kind: lookups.roots(store, kind) for kind in LEVELS},
            id_fields=ID_FIELDS,
            limit=lookups.MAX_CHILDREN,
        )

    @router.get("/metadata/{entity_uuid}", response_class=HTMLResponse)
    def entity_page(request: Request, entity_uuid: str) -> HTMLResponse:
        entity = lookups.metadata_entity(store, entity_uuid)
        kind = entity["kind"]
        ancestors = provenance.metadata_chain(store, list(entity.get("child_of", [])))
        skip = {"uuid", "kind", ID_FIELDS[kind], "child_of", "_properties", "_visible"}
        filter_name = next(n for n, k in queries.METADATA_FILTERS.items() if k == kind)
        return pages.render(
            request,
            "entity.html",
            title=f"{kind.replace('_', ' ').capitalize()} {entity[ID_FIELDS[kind]]}",
            nav="metadata",
            entity=entity,
            kind=kind,
            ident=entity[ID_FIELDS[kind]],
            ancestors=list(reversed(ancestors)),
            parent_kind=PARENTS[kind],
            extras={k: v for k, v in entity.items() if k not in skip},
            children=lookups.children(store, entity["uuid"]),
            id_fields=ID_FIELDS,
            rows=queries.jobs_of(store, "child_of", entity["uuid"], limit=JOBS_PER_ENTITY),
            jobs_filter={filter_name: entity["uuid"]},
            limit=JOBS_PER_ENTITY,
            children_limit=lookups.MAX_CHILDREN,
        )

    @router.get("/search", response_class=HTMLResponse)
    def search_page(request: Request, q: Annotated[str, Query(max_length=4096)] = "") -> Response:
        matches = search(store, q)
        if len(matches) == 1:
            base = str(request.scope.get("root_path", "")).rstrip("/")
            return RedirectResponse(base + matches[0].path, status_code=303)
        return pages.render(
            request,
            "search.html",
            status=200 if matches else 404,
            title=f"Search: {q}",
            nav="search",
            q=q.strip(),
            matches=matches,
        )


def _linker(request: Request) -> Callable[[str], str | None]:
    """Links to the dashboard's pages as seen from ``request`` (its mount point)."""
    base = str(request.scope.get("root_path", "")).rstrip("/")

    def link(uuid: str) -> str | None:
        path = page_path(uuid)
        return base + path if path is not None else None

    return link


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


def _attachment(name: str) -> str:
    """A Content-Disposition for ``name``: ASCII fallback, and the name itself (RFC 6266)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _download(body: str | bytes, filename: str, media_type: str = "application/json") -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
