"""Rendering pages: the Jinja2 environment, its filters, and the context every page gets.

Templates live in ``templates/`` inside this package and are loaded as package data.
Autoescaping is on for every template and undefined names are errors, so anything a
page shows (file names, event data, metadata: all user input) is escaped unless a
template says otherwise, which only the lineage picture does (see
:mod:`datacatalog.service.ui.pictures`).

Links are made relative to the dashboard's mount point (the ASGI ``root_path``), so the
same pages work under ``/ui`` or anywhere else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from datacatalog import __version__, states
from datacatalog.clock import as_utc
from datacatalog.errors import DataCatalogError, mapping_for
from datacatalog.pipelines import PipelineRegistry
from datacatalog.service.ui.queries import LIVE_STATES
from datacatalog.service.ui.search import page_path

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def when(moment: datetime | None) -> str:
    """A date as ``YYYY-MM-DD HH:MM:SS UTC`` (empty for None)."""
    if moment is None:
        return ""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(moment: datetime | None) -> str:
    """A date in ISO 8601 (for ``<time datetime=...>``)."""
    return as_utc(moment).isoformat() if moment is not None else ""


def size(value: int | None) -> str:
    """A byte count for people (``1.5 MiB``); empty when unknown."""
    if value is None:
        return ""
    amount = float(value)
    for unit in _UNITS:
        if amount < 1024 or unit == _UNITS[-1]:
            return f"{value} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def span(value: timedelta | None) -> str:
    """A duration for people: ``45 s``, ``12 min 5 s``, ``3 h 20 min``, ``2 d 4 h``."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def pretty(value: Any) -> str:
    """A JSON value indented for reading (dates as ISO text)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=_plain)


def short(uuid: str | None) -> str:
    """The first 13 characters of a UUID (kind prefix and more), for narrow columns."""
    return "" if uuid is None else uuid[:13] + "…" if len(uuid) > 13 else uuid


def shown(value: Any) -> str:
    """Any stored value as one line of text (dates as :func:`when` writes them)."""
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=_plain)
    return "" if value is None else str(value)


def kind_name(kind: str) -> str:
    """A kind as people say it (``pipelinejob`` is a job)."""
    return "job" if kind == "pipelinejob" else kind.replace("_", " ")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


class Pages:
    """Renders the dashboard's templates into responses.

    Args:
        description: Where the catalog is (shown in the footer; no password).
        refresh_seconds: How often the pages poll for running jobs' states.
    """

    def __init__(self, *, description: str, refresh_seconds: float) -> None:
        self.description = description
        self.refresh_seconds = refresh_seconds
        self.env = Environment(
            loader=PackageLoader("datacatalog.service.ui", "templates"),
            autoescape=select_autoescape(["html", "svg"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            when=when,
            iso=iso,
            size=size,
            span=span,
            pretty=pretty,
            shown=shown,
            short=short,
            kind_name=kind_name,
        )
        self.env.globals.update(
            states=states.STATES,
            state_descriptions=states.STATE_DESCRIPTIONS,
            version=__version__,
            live_states=LIVE_STATES,
        )

    def render(
        self, request: Request, template: str, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """The page ``template`` filled with ``context`` (plus the shared context)."""
        base = str(request.scope.get("root_path", "")).rstrip("/")

        def url(path: str, params: Mapping[str, Any] | None = None) -> str:
            query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
            return base + path + (f"?{urlencode(query)}" if query else "")

        def link(uuid: str) -> str | None:
            path = page_path(uuid)
            return base + path if path is not None else None

        html = self.env.get_template(template).render(
            url=url,
            link=link,
            base=base,
            catalog=self.description,
            refresh_ms=int(self.refresh_seconds * 1000),
            request_path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def render_form(
        self,
        request: Request,
        template: str,
        *,
        problem: DataCatalogError | None,
        pipelines: PipelineRegistry,
        **context: Any,
    ) -> HTMLResponse:
        """A page with a filter form: a bad filter (``problem``) is shown on the page
        itself, with the form to fix it, under the error's HTTP status; the form offers
        the registered pipeline ids."""
        return self.render(
            request,
            template,
            status=mapping_for(problem).http_status if problem else 200,
            problem=problem,
            pipeline_ids=sorted({p.id for p in pipelines.find(limit=1000)}),
            **context,
        )
