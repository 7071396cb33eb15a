"""The dashboard's coverage page: a metadata selection against pipelines and parameter sets.

``/coverage?under=experiment&ids=E&level=sample[&pipeline=P[,P2]][&data=JSON][&offset=N]``
draws one row per selected entity and one column per pipeline (by default every one with
a job on them) and parameter set, each
cell the entity's job (its state, linking to the job), and the cells per state of each
column. The counts are two aggregations on the server and a page of rows one read
(:mod:`datacatalog.jobs.coverage`), so the page stays quick over many jobs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from datacatalog.catalog import Catalog
from datacatalog.errors import DataCatalogError, InvalidRequestError
from datacatalog.jobs.coverage import MISSING, Coverage
from datacatalog.metadata import ID_FIELDS, LEVELS
from datacatalog.service.ui.render import Pages
from datacatalog.states import STATES

ROWS_PER_PAGE = 100
MAX_IDS = 1000  # ids in the form's box


def coverage_routes(catalog: Catalog, pages: Pages) -> APIRouter:
    """The coverage page over ``catalog``."""
    router = APIRouter()

    @router.get("/coverage", response_class=HTMLResponse)
    def coverage_page(request: Request) -> HTMLResponse:
        params = dict(request.query_params)
        problem: DataCatalogError | None = None
        result: Coverage | None = None
        if params.get("ids"):
            try:
                result = catalog.jobs.coverage(**_arguments(params))
            except DataCatalogError as exc:
                problem = exc
        return pages.render_form(
            request,
            "coverage.html",
            problem=problem,
            pipelines=catalog.pipelines,
            title="Coverage",
            nav="coverage",
            given=params,
            result=result,
            levels=LEVELS,
            count_states=[*STATES, MISSING],
            rows_per_page=ROWS_PER_PAGE,
            registered_twice=_registered_twice(result),
        )

    return router


def _registered_twice(result: Coverage | None) -> set[str]:
    """Pipeline ids with columns of more than one registration (told apart by UUID)."""
    if result is None:
        return set()
    seen: dict[str, set[str]] = {}
    for column in result.columns:
        seen.setdefault(column.pipeline_id, set()).add(column.pipeline_uuid)
    return {pid for pid, uuids in seen.items() if len(uuids) > 1}


def _arguments(params: Mapping[str, str]) -> dict[str, Any]:
    """The page's query parameters as arguments of ``catalog.jobs.coverage``."""
    pipelines = [p for p in params.get("pipeline", "").replace(",", " ").split() if p]
    under = params.get("under") or "experiment"
    if under not in LEVELS:
        raise InvalidRequestError(f"unknown kind {under!r}; choose one of {', '.join(LEVELS)}")
    ids = params.get("ids", "").replace(",", " ").split()
    if not ids:
        raise InvalidRequestError(f"give the {under} id(s) to select under")
    if len(ids) > MAX_IDS:
        raise InvalidRequestError(f"give at most {MAX_IDS} ids")
    data: Any = None
    if params.get("data", "").strip():
        try:
            data = json.loads(params["data"])
        except ValueError as exc:
            raise InvalidRequestError(f"parameters are not JSON: {exc}") from exc
    try:
        offset = int(params.get("offset") or 0)
    except ValueError:
        raise InvalidRequestError("offset must be a whole number") from None
    return {
        "pipelines": pipelines or None,
        "metadata": {ID_FIELDS[under]: ids},
        "level": params.get("level") or None,
        "parameters": data,
        "offset": max(offset, 0),
        "limit": ROWS_PER_PAGE,
    }
