"""The HTTP webhook service (FastAPI, served by uvicorn).

Remote jobs report their progress by posting events to their webhook URL,
``<service>/jobs/<uuid>/events?token=<job token>`` (:meth:`JobService.webhook_url`);
anyone may read jobs, histories and indexed files; administrators reset, delete
and purge jobs with an admin token. Who may do what is in
:mod:`datacatalog.service.app`, the routes in :mod:`datacatalog.service.routes`; the
request body limit in
:mod:`datacatalog.service.limits`; running it in :mod:`datacatalog.service.server`.

Run it with ``datacatalog serve`` or ``python -m datacatalog.service``.
"""

from __future__ import annotations

from datacatalog.service.app import create_app
from datacatalog.service.server import serve

__all__ = ["create_app", "serve"]
