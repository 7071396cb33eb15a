"""The web dashboard: jobs, their histories, files, pipelines, metadata and lineage.

Server-rendered HTML (Jinja2 templates in ``templates/``) with a little JavaScript of
its own (``static/dashboard.js``: live states of running jobs); no build step and
nothing fetched from elsewhere, so it works offline. ``datacatalog serve`` mounts it at
``/ui``; ``datacatalog ui`` serves it and opens it in a browser.

Modules: :mod:`~datacatalog.service.ui.app` (the application and its error pages),
:mod:`~datacatalog.service.ui.pages` (the routes), :mod:`~datacatalog.service.ui.queries`
(the jobs listing), :mod:`~datacatalog.service.ui.lookups` (the other pages' reads),
:mod:`~datacatalog.service.ui.paging` (keyset paging),
:mod:`~datacatalog.service.ui.details` (what the pages derive from documents),
:mod:`~datacatalog.service.ui.search` (the search box),
:mod:`~datacatalog.service.ui.pictures` (lineage pictures),
:mod:`~datacatalog.service.ui.executions` (workflow executions),
:mod:`~datacatalog.service.ui.render` (templates) and
:mod:`~datacatalog.service.ui.security` (security headers).
"""

from __future__ import annotations

from datacatalog.service.ui.app import create_ui

__all__ = ["create_ui"]
