"""Liveness and readiness: one cheap read of the catalog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from datacatalog.errors import DataCatalogError
from datacatalog.service.dependencies import CatalogDep
from datacatalog.service.openapi import error_responses
from datacatalog.service.responses import Health, error_body

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Check the service",
    description='`200 {"status": "ok"}` when one cheap read of the catalog succeeds; '
    "`503` with the error otherwise.",
    response_model=Health,
    response_model_exclude_none=True,
    responses={
        500: error_responses()[500],
        503: {"model": Health, "description": "The catalog cannot be read."},
    },
)
def healthz(catalog: CatalogDep) -> Any:
    try:
        catalog.store.find("pipeline", {}, limit=1, projection={"uuid": 1})
    except DataCatalogError as exc:
        return JSONResponse({"status": "unavailable", **error_body(exc)}, status_code=503)
    return {"status": "ok"}
