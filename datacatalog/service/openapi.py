"""The OpenAPI document: its introduction, its tags, the documented errors and two fixes.

FastAPI writes the document from the routes; this module adds what the routes do not
say themselves: the service's description and tags, the error responses every route
documents (:func:`error_responses`), and, on each build, the shared components of
:mod:`datacatalog.service.constraints` and the removal of FastAPI's default ``422``
(:func:`document_400_not_422`): request validation errors are answered ``400``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from datacatalog.service import constraints
from datacatalog.service.responses import ErrorResponse

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

_MEANINGS = {
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


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses: ``statuses``, plus 500 and 503 (any route may fail)."""
    return {
        s: {"model": ErrorResponse, "description": _MEANINGS[s]}
        for s in sorted({*statuses, 500, 503})
    }


def document_400_not_422(app: FastAPI) -> None:
    """Leave FastAPI's default ``422`` out of the OpenAPI document.

    Request validation errors are answered ``400`` with the one error body
    (:mod:`datacatalog.service.handlers`), which every route documents already. The
    shared components of :mod:`datacatalog.service.constraints` are added on the way.
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
