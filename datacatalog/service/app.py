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

Where things are
    The routes, one router per area, are in :mod:`datacatalog.service.routes`; what
    they take from FastAPI (the catalog, the token, the caller) in
    :mod:`datacatalog.service.dependencies`; the exception handlers in
    :mod:`datacatalog.service.handlers`; the document's description, tags, error
    responses and adjustments in :mod:`datacatalog.service.openapi`.

Routes are plain (not ``async``) functions: the store is blocking, so FastAPI
runs each call in its worker thread pool.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from datacatalog import __version__
from datacatalog.catalog import Catalog
from datacatalog.service.dependencies import (
    JobUUID,
    Token,
    one_value_per_query_parameter,
    presented_token,
)
from datacatalog.service.handlers import install_error_handlers
from datacatalog.service.limits import BodySizeLimit
from datacatalog.service.openapi import DESCRIPTION, TAGS, document_400_not_422
from datacatalog.service.routes import ROUTERS
from datacatalog.service.ui import create_ui

__all__ = [
    "DESCRIPTION",
    "TAGS",
    "UI_PATH",
    "JobUUID",
    "Token",
    "create_app",
    "presented_token",
]

UI_PATH = "/ui"
"""Where the dashboard (:mod:`datacatalog.service.ui`) is mounted."""


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
    app.state.catalog = catalog  # what the routes' catalog dependency hands out
    app.add_middleware(BodySizeLimit, max_bytes=catalog.settings.max_body_bytes)
    install_error_handlers(app)
    document_400_not_422(app)
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(one_value_per_query_parameter)])
    app.mount(UI_PATH, create_ui(catalog), name="ui")
    return app
