"""The HTTP application: routes over one :class:`~datacatalog.catalog.Catalog`.

Who may do what
    * Reads (``GET``) are open. They return jobs, histories and file records,
      never a token.
    * Job writes (events, scheduler statuses, indexing) need the job's token,
      as ``?token=`` (the form :meth:`JobService.webhook_url` hands out) or as
      ``Authorization: Bearer <token>``. A missing token is ``401``, a wrong one
      ``403``; either way nothing is written.
    * ``/admin/...`` needs an admin token, given the same two ways. The service
      never issues admin tokens; they are made where the secret is
      (``datacatalog admin token``).

Errors
    Every :class:`~datacatalog.errors.DataCatalogError` becomes the status of
    its code (:func:`datacatalog.errors.mapping_for`) and the body
    ``{"error": {"code", "message", "details"}}``. Malformed JSON and bodies of
    the wrong shape are ``400 invalid_request``; an unexpected failure is ``500``
    with code ``error`` and the same body (its details go to the server log only). Bodies over
    ``settings.max_body_bytes`` are refused with ``413`` before they are parsed
    (:mod:`datacatalog.service.limits`).

Routes are plain (not ``async``) functions: the store is blocking, so FastAPI
runs each call in its worker thread pool.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import WithJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

from datacatalog import __version__, provenance, states, tokens
from datacatalog.catalog import Catalog
from datacatalog.errors import (
    DataCatalogError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    UnauthorizedError,
    mapping_for,
)
from datacatalog.jobs import Actor, Job
from datacatalog.orchestrator.records import ExecutionRecords
from datacatalog.service import constraints
from datacatalog.service.limits import BodySizeLimit
from datacatalog.service.lineage import router as lineage_router
from datacatalog.service.responses import (
    ErrorResponse,
    EventRequest,
    EventResponse,
    ExecutionResponse,
    ExecutionsResponse,
    FilesResponse,
    Health,
    HistoryResponse,
    IndexReportModel,
    IndexRequestBody,
    JobList,
    JobModel,
    JobResponse,
    LineageResponse,
    PurgeReportModel,
    error_body,
)
from datacatalog.service.ui import create_ui

DESCRIPTION = """\
The webhook service of **datacatalog**: remote jobs report their progress here, and
anyone may read jobs, their histories and their indexed files.

* **Reads** (`GET`) are open and never reveal a token.
* **Job writes** need the job token: `?token=<token>` (the webhook URL carries it) or
  `Authorization: Bearer <token>`.
* **Admin actions** (`/admin/...`) need an admin token, given the same ways. The service
  never issues admin tokens.

Every error has the body `{"error": {"code", "message", "details"}}`.
"""

TAGS = [
    {"name": "events", "description": "Move a job through its state machine."},
    {"name": "jobs", "description": "Read jobs, their histories and their files (open)."},
    {"name": "indexing", "description": "Index a job's outputs."},
    {"name": "provenance", "description": "Where a file came from; a job as W3C PROV-JSON."},
    {"name": "workflows", "description": "Workflow executions on jobs and their tasks (open)."},
    {"name": "admin", "description": "Administrative actions; need an admin token."},
    {"name": "health", "description": "Liveness and readiness."},
]
UI_PATH = "/ui"
"""Where the dashboard (:mod:`datacatalog.service.ui`) is mounted."""

JobUUID = Annotated[
    str,
    Path(
        description="The job's UUID (a typed UUID starting with `107`).",
        examples=["107a90b7-f083-5167-a63d-41a3bf278bf8"],
        pattern=constraints.JOB_UUID,
    ),
]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="A job token (job writes) or an admin token (`/admin/...`).",
)
_query_token = APIKeyQuery(
    name="token",
    auto_error=False,
    scheme_name="queryToken",
    description="The same token as a query parameter, as in the job's webhook URL.",
)


_ADMIN_JOB_ROUTES: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
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
"""Admin actions answered with the job: (action, summary, description, extra statuses)."""


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses: ``statuses``, plus 500 and 503 (any route may fail)."""
    meaning = {
        400: "The request is malformed or names an unknown event, state or status.",
        401: "No token was given.",
        403: "The token is wrong for this job (or not a valid admin token).",
        404: "No such job (or it is deleted), file or pipeline.",
        409: "The event is not allowed from the job's current state.",
        413: "The request body is over the size limit.",
        500: "An unexpected failure (the service log has the details).",
        502: "The job's storage system failed.",
        503: "The database cannot be reached, or the embedded catalog stayed busy.",
    }
    return {
        s: {"model": ErrorResponse, "description": meaning[s]}
        for s in sorted({*statuses, 500, 503})
    }


def presented_token(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    query: Annotated[str | None, Security(_query_token)],
) -> str | None:
    """The token the caller presented, from the ``Authorization`` header or ``?token=``.

    Raises:
        UnauthorizedError: The ``Authorization`` header uses a scheme other than Bearer.
        ForbiddenError: The header and the query parameter give different tokens (at
            most one of them can be right, so the caller is refused as with a wrong one).
    """
    header = request.headers.get("authorization")
    if header and bearer is None:
        raise UnauthorizedError("the Authorization header must be 'Bearer <token>'")
    from_header = bearer.credentials if bearer is not None else None
    if from_header and query and from_header != query:
        raise ForbiddenError("two different tokens given (Authorization header and ?token=)")
    return from_header or query or None


Token = Annotated[str | None, Depends(presented_token)]


def _caller(request: Request) -> Actor:
    """Who a request comes from, as recorded in history entries and the audit log."""
    return Actor(host=request.client.host if request.client else None)


def create_app(catalog: Catalog) -> FastAPI:
    """Build the service's application over ``catalog``.

    Args:
        catalog: The catalog to serve. The caller keeps ownership (and closes it).

    Returns:
        A FastAPI application, wrapped in the request body limit of
        ``catalog.settings.max_body_bytes``.
    """
    app = FastAPI(
        title="datacatalog",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
    )
    app.state.catalog = catalog
    app.add_middleware(BodySizeLimit, max_bytes=catalog.settings.max_body_bytes)
    _install_error_handlers(app)
    _document_400_not_422(app)
    app.include_router(lineage_router(catalog))
    app.mount(UI_PATH, create_ui(catalog), name="ui")
    jobs = catalog.jobs

    def remote_event(
        job_uuid: str,
        name: str,
        data: dict[str, Any] | None,
        event_id: str | None,
        token: str | None,
        request: Request,
    ) -> dict[str, Any]:
        """Apply an event from a remote caller: the job token is required."""
        result = jobs.send(
            job_uuid,
            name,
            data=data,
            event_id=event_id,
            token=token,
            require_token=True,
            actor=_caller(request),
        )
        return {
            "job": result.job.to_dict(),
            "entry": result.entry.to_dict(),
            "applied": result.applied,
        }

    # -- events -----------------------------------------------------------------------------

    @app.post(
        "/jobs/{job_uuid}/events",
        tags=["events"],
        summary="Send an event to a job",
        description="Apply one event (`run`, `update`, `resource`, `fail`, `finish`, `index`, "
        "`indexed`, `validate`, ...) atomically. This is the job's webhook URL. Resending an "
        "`event_id` that was already applied changes nothing and returns `applied: false`. "
        "`reset` and `ready` are administrative: use `/admin/jobs/{uuid}/...`.",
        response_model=EventResponse,
        responses=_errors(400, 401, 403, 404, 409, 413),
    )
    def send_event(
        job_uuid: JobUUID, body: EventRequest, token: Token, request: Request
    ) -> dict[str, Any]:
        if states.transition(body.name).admin:
            raise InvalidRequestError(
                f"{body.name!r} is an administrative event; "
                f"use POST /admin/jobs/{job_uuid}/{body.name} with an admin token",
                event=body.name,
            )
        return remote_event(job_uuid, body.name, body.data, body.event_id, token, request)

    @app.post(
        "/jobs/{job_uuid}/status",
        tags=["events"],
        summary="Report a scheduler status",
        description="Map an external scheduler status to an event and apply it: `RUNNING` → "
        "`run`, `FINISHED` → `finish`, `FAILED`/`STOPPED`/`ARCHIVING_FAILED` → `fail`, "
        "`HEARTBEAT` → `update`, anything else (`PENDING`, `QUEUED`, `STAGING_INPUTS`, ...) → "
        "`resource`. An optional JSON object body becomes the event data; the reported "
        "status is kept in it as `status` unless the body sets that key.",
        response_model=EventResponse,
        responses=_errors(400, 401, 403, 404, 409, 413),
    )
    def report_status(
        job_uuid: JobUUID,
        status: Annotated[
            str,
            Query(
                description="The scheduler status, e.g. `RUNNING` (any case; not blank).",
                max_length=64,
                pattern=constraints.NOT_BLANK,
            ),
        ],
        token: Token,
        request: Request,
        data: Annotated[
            dict[str, Any] | None,
            WithJsonSchema(constraints.freeform_object("Event data (a JSON object).")),
            Body(description="Event data (a JSON object)."),
        ] = None,
        event_id: Annotated[
            str | None,
            Query(min_length=1, max_length=128, description="Idempotency key of the event."),
        ] = None,
    ) -> dict[str, Any]:
        event = states.event_for_status(status)
        payload = dict(data or {})
        payload.setdefault("status", status.strip().upper())
        return remote_event(job_uuid, event, payload, event_id, token, request)

    # -- reads ------------------------------------------------------------------------------

    @app.get(
        "/jobs",
        tags=["jobs"],
        summary="List jobs",
        description="Jobs matching every filter given, newest first. Deleted jobs are left out.",
        response_model=JobList,
        responses=_errors(400, 404),
    )
    def list_jobs(
        state: Annotated[
            str | None,
            Query(
                description="A job state, e.g. `FINISHED` (any case).",
                pattern=constraints.STATE_FILTER,
            ),
        ] = None,
        pipeline: Annotated[
            str | None,
            Query(
                description="A pipeline UUID, or a pipeline id (which is not a UUID).",
                min_length=1,
                json_schema_extra=constraints.PIPELINE_REFERENCE,
            ),
        ] = None,
        metadata: Annotated[
            str | None,
            Query(
                description="A metadata UUID the jobs are a `child_of`.",
                pattern=constraints.METADATA_UUID,
            ),
        ] = None,
        agent: Annotated[str | None, Query(description="The agent that created the jobs.")] = None,
        limit: Annotated[int, Query(ge=0, le=1000, description="Page size (0: 1000).")] = 100,
        skip: Annotated[
            int, Query(ge=0, le=constraints.MAX_SKIP, description="Jobs to skip (paging).")
        ] = 0,
    ) -> dict[str, Any]:
        found = jobs.find(
            state=state.strip().upper() if state is not None else None,
            pipeline=pipeline,
            metadata=metadata,
            agent=agent,
            limit=limit,
            skip=skip,
        )
        return {"jobs": [j.to_dict() for j in found], "limit": limit, "skip": skip}

    @app.get(
        "/jobs/{job_uuid}",
        tags=["jobs"],
        summary="Get a job",
        description="The job as stored, without its history, and its `executions`: each run "
        "of it (run id, holder, times, outcome) and each up-to-date check.",
        response_model=JobModel,
        responses=_errors(400, 404),
    )
    def get_job(job_uuid: JobUUID) -> dict[str, Any]:
        job = jobs.get(job_uuid).to_dict()
        job["executions"] = [e.to_dict() for e in jobs.executions(job_uuid)]
        return job

    @app.get(
        "/jobs/{job_uuid}/history",
        tags=["jobs"],
        summary="Get a job's history",
        description="Every event the job received, oldest first, with who sent it.",
        response_model=HistoryResponse,
        responses=_errors(400, 404),
    )
    def get_history(job_uuid: JobUUID) -> dict[str, Any]:
        return {"job": job_uuid, "history": [e.to_dict() for e in jobs.history(job_uuid)]}

    @app.get(
        "/jobs/{job_uuid}/files",
        tags=["jobs"],
        summary="List a job's indexed files",
        description="File records the job generated (filled in by indexing).",
        response_model=FilesResponse,
        responses=_errors(400, 404),
    )
    def get_files(job_uuid: JobUUID) -> dict[str, Any]:
        jobs.get(job_uuid)  # a deleted job is hidden here as on every other read
        return {"job": job_uuid, "files": [f.to_dict() for f in catalog.indexing.files(job_uuid)]}

    # -- workflows --------------------------------------------------------------------------

    @app.get(
        "/jobs/{job_uuid}/executions",
        tags=["workflows"],
        summary="List a job's workflow executions",
        description="The job's workflow executions, newest first.",
        response_model=ExecutionsResponse,
        responses=_errors(400, 404),
    )
    def get_executions(job_uuid: JobUUID) -> dict[str, Any]:
        jobs.get(job_uuid)
        found = ExecutionRecords(catalog.store).executions(job_uuid)
        return {"job": job_uuid, "executions": [e.to_dict() for e in found]}

    @app.get(
        "/executions/{execution_id}",
        tags=["workflows"],
        summary="Get a workflow execution",
        description="The execution with its tasks: statuses, attempts, times and errors.",
        response_model=ExecutionResponse,
        responses=_errors(400, 404),
    )
    def get_execution(
        execution_id: Annotated[
            str,
            Path(
                description="The execution's id (a UUID starting with `100`).",
                pattern=constraints.typed_uuid_pattern("generic"),
            ),
        ],
    ) -> dict[str, Any]:
        records = ExecutionRecords(catalog.store)
        execution = records.execution(execution_id)
        return {
            "execution": execution.to_dict(),
            "tasks": [t.to_dict() for t in records.tasks(execution.id)],
        }

    # -- provenance -------------------------------------------------------------------------

    @app.get(
        "/files/lineage",
        tags=["provenance"],
        summary="Trace a file upstream",
        description="The jobs that generated the file (by UUID or absolute catalog path), "
        "their pipelines and data, the metadata chain up to the experiment design, and the "
        "files it was derived from.",
        response_model=LineageResponse,
        responses=_errors(400, 404),
    )
    def file_lineage(
        file: Annotated[
            str,
            Query(
                description="A file UUID, an absolute catalog path (no `..` parts) or a "
                "storage URI with a path.",
                min_length=1,
                json_schema_extra=constraints.FILE_REFERENCE,
            ),
        ],
    ) -> dict[str, Any]:
        return provenance.lineage(catalog.store, file).to_dict()

    @app.get(
        "/jobs/{job_uuid}/prov",
        tags=["provenance"],
        summary="Export a job as W3C PROV-JSON",
        description="The job, its outputs with checksums, its inputs, pipeline and metadata.",
        response_model=dict[str, Any],
        responses=_errors(400, 404),
    )
    def job_prov(job_uuid: JobUUID) -> dict[str, Any]:
        jobs.get(job_uuid)  # a deleted job is hidden here as on every other read
        exported: dict[str, Any] = json.loads(provenance.prov_json(catalog.store, job_uuid))
        return exported

    # -- indexing ---------------------------------------------------------------------------

    @app.post(
        "/jobs/{job_uuid}/index",
        tags=["indexing"],
        summary="Index a job's outputs",
        description="List the job's archive path and record one file per matching file, "
        "linked to the job. The job goes FINISHED → INDEXING and, with `transition` (the "
        "default here), back to FINISHED. Re-indexing is idempotent. Needs the job token.",
        response_model=IndexReportModel,
        responses=_errors(400, 401, 403, 404, 409, 413, 502),
    )
    def index_job(
        job_uuid: JobUUID,
        token: Token,
        body: Annotated[IndexRequestBody | None, Body()] = None,
    ) -> dict[str, Any]:
        options = body or IndexRequestBody()
        # indexing checks a token only when one is given; over HTTP one is required.
        tokens.check_job_token(jobs.secret, job_uuid, token)
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

    # -- admin ------------------------------------------------------------------------------

    admin_errors = (400, 401, 403, 404, 409, 413)

    def admin_route(action: str) -> Callable[..., dict[str, Any]]:
        act: Callable[..., Job] = getattr(jobs, action)

        def route(job_uuid: JobUUID, token: Token, request: Request) -> dict[str, Any]:
            return {"job": act(job_uuid, token=token, actor=_caller(request)).to_dict()}

        route.__name__ = f"{action}_job"  # the OpenAPI operation id
        return route

    for action, summary, description, statuses in _ADMIN_JOB_ROUTES:
        app.post(
            f"/admin/jobs/{{job_uuid}}/{action}",
            tags=["admin"],
            summary=summary,
            description=description,
            response_model=JobResponse,
            responses=_errors(*admin_errors, *statuses),
        )(admin_route(action))

    @app.post(
        "/admin/jobs/{job_uuid}/purge",
        tags=["admin"],
        summary="Purge a job for good",
        description="Remove the job, its file records and its archive contents. With "
        "`dry_run=true` nothing is removed and the report lists what would go.",
        response_model=PurgeReportModel,
        responses=_errors(*admin_errors, 502),
    )
    def purge_job(
        job_uuid: JobUUID,
        token: Token,
        request: Request,
        dry_run: Annotated[bool, Query(description="Only report what would be removed.")] = False,
    ) -> dict[str, Any]:
        return asdict(jobs.purge(job_uuid, token=token, dry_run=dry_run, actor=_caller(request)))

    # -- health -----------------------------------------------------------------------------

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Check the service",
        description='`200 {"status": "ok"}` when one cheap read of the catalog succeeds; '
        "`503` with the error otherwise.",
        response_model=Health,
        response_model_exclude_none=True,
        responses={
            500: _errors()[500],
            503: {"model": Health, "description": "The catalog cannot be read."},
        },
    )
    def healthz() -> Any:
        try:
            catalog.store.find("pipeline", {}, limit=1, projection={"uuid": 1})
        except DataCatalogError as exc:
            return JSONResponse({"status": "unavailable", **error_body(exc)}, status_code=503)
        return {"status": "ok"}

    return app


def _document_400_not_422(app: FastAPI) -> None:
    """Leave FastAPI's default ``422`` out of the OpenAPI document.

    Request validation errors are answered ``400`` with the one error body
    (:func:`_install_error_handlers`), which every route documents already.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        constraints.add_components(schema)
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                operation.get("responses", {}).pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_error_handlers(app: FastAPI) -> None:
    async def catalog_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DataCatalogError)
        return _error_response(exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [_problem(e) for e in exc.errors()]
        summary = "; ".join(f"{p['where']}: {p['message']}" for p in problems[:5])
        content_type = request.headers.get("content-type", "")
        if content_type and "json" not in content_type.lower():
            # The usual cause: `curl -d` without a header sends a form content type.
            summary += (
                f" (the body was sent as {content_type!r}; send JSON with "
                "'Content-Type: application/json')"
            )
        return _error_response(
            InvalidRequestError(f"invalid request: {summary}", problems=problems)
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error: DataCatalogError
        if exc.status_code == 404:
            error = NotFoundError(f"no route {request.method} {request.url.path}")
        else:
            error = DataCatalogError(str(exc.detail))
            error.code = _HTTP_CODES.get(exc.status_code, "error")
        return _error_response(error, status=exc.status_code, headers=exc.headers)

    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # The exception's text may name internals; the server log keeps it (the
        # exception is raised on after this answer), the caller gets the one body.
        return _error_response(
            DataCatalogError(
                f"internal error while handling {request.method} {request.url.path}; "
                "the service log has the details"
            )
        )

    app.add_exception_handler(DataCatalogError, catalog_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def _error_response(
    error: DataCatalogError,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    code = mapping_for(error).http_status if status is None else status
    extra = dict(headers or {})
    if code == 401:
        extra.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(error_body(error), status_code=code, headers=extra or None)


def _problem(error: Mapping[str, Any]) -> dict[str, Any]:
    """One validation problem, without echoing the (possibly large) input back."""
    location = [str(part) for part in error.get("loc", ())]
    kind = str(error.get("type", "invalid"))
    message = str(error.get("msg", "invalid"))
    if kind == "json_invalid" and location[:1] == ["body"]:
        # FastAPI puts the character position where a field name would be ("body.1").
        reason = (error.get("ctx") or {}).get("error") or message
        at = f" (at character {location[1]})" if len(location) > 1 else ""
        return {"where": "body", "message": f"not valid JSON: {reason}{at}", "type": kind}
    return {"where": ".".join(location) or "request", "message": message, "type": kind}
