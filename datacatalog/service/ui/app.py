"""The dashboard application: pages, static files, error pages and security headers.

:func:`create_ui` builds a FastAPI application of its own, which the service mounts at
``/ui``. Being an application of its own, it answers errors with HTML pages (the API
next to it answers them with JSON bodies) and sends its security headers
(:mod:`datacatalog.service.ui.security`) on every response, error pages included.

It only reads: every route is a ``GET`` and nothing it calls writes.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse

from datacatalog.catalog import Catalog
from datacatalog.errors import DataCatalogError, InvalidRequestError, NotFoundError, mapping_for
from datacatalog.service.ui.coverage import coverage_routes
from datacatalog.service.ui.pages import page_routes
from datacatalog.service.ui.render import Pages
from datacatalog.service.ui.security import HEADERS, SecurityHeaders

DEFAULT_REFRESH_SECONDS = 5.0

_TITLES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    500: "Something went wrong",
    502: "Storage failure",
    503: "Catalog unavailable",
}


def create_ui(catalog: Catalog, *, refresh_seconds: float = DEFAULT_REFRESH_SECONDS) -> FastAPI:
    """Build the dashboard over ``catalog``.

    Args:
        catalog: The catalog to show (the caller keeps it and closes it).
        refresh_seconds: How often pages poll for the states of running jobs.

    Raises:
        InvalidRequestError: ``refresh_seconds`` is not a positive number.
    """
    if not isinstance(refresh_seconds, (int, float)) or not refresh_seconds > 0:
        raise InvalidRequestError(
            f"the refresh interval must be a positive number of seconds, not {refresh_seconds!r}"
        )
    pages = Pages(description=catalog.store.description, refresh_seconds=float(refresh_seconds))
    ui = FastAPI(title="datacatalog dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    ui.add_middleware(SecurityHeaders)
    ui.mount(
        "/static",
        StaticFiles(packages=[("datacatalog.service.ui", "static")]),
        name="static",
    )
    ui.include_router(page_routes(catalog, pages))
    ui.include_router(coverage_routes(catalog, pages))
    _install_error_pages(ui, pages)
    return ui


def _install_error_pages(ui: FastAPI, pages: Pages) -> None:
    def error_page(request: Request, status: int, error: DataCatalogError) -> HTMLResponse:
        return pages.render(
            request,
            "error.html",
            status=status,
            title=_TITLES.get(status, "Error"),
            nav="",
            status_code=status,
            error=error,
        )

    async def catalog_error(request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, DataCatalogError)
        return error_page(request, mapping_for(exc).http_status, exc)

    async def validation_error(request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, RequestValidationError)
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()[:5]
        )
        return error_page(request, 400, InvalidRequestError(f"invalid request: {where}"))

    async def http_error(request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, StarletteHTTPException)
        error: DataCatalogError
        if exc.status_code == 404:
            error = NotFoundError(f"there is no page at {request.url.path}")
        else:
            error = DataCatalogError(str(exc.detail))
        return error_page(request, exc.status_code, error)

    async def unexpected_error(request: Request, exc: Exception) -> HTMLResponse:
        # The exception's text may name internals: the server log keeps it. This
        # handler runs outside the middleware, so it adds the security headers itself.
        response = error_page(
            request,
            500,
            DataCatalogError(
                f"the page {request.url.path} failed to render; the service log has the details"
            ),
        )
        response.headers.update(HEADERS)
        return response

    ui.add_exception_handler(DataCatalogError, catalog_error)
    ui.add_exception_handler(RequestValidationError, validation_error)
    ui.add_exception_handler(StarletteHTTPException, http_error)
    ui.add_exception_handler(Exception, unexpected_error)
