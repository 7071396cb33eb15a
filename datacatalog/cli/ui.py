"""``datacatalog ui``: serve the catalog and open its dashboard in a browser.

The same service as ``datacatalog serve`` (the API and the dashboard at ``/ui``), on the
configured catalog (with no configuration, the zero-configuration local one). Once the
service answers its health check, the dashboard's URL is opened in the user's browser
(Python's :mod:`webbrowser`, which honours ``BROWSER``); ``--no-browser`` only prints it.
"""

from __future__ import annotations

import threading
import time
import webbrowser
from collections.abc import Callable

import click
import httpx

from datacatalog.cli.context import App, pass_app
from datacatalog.errors import InvalidRequestError

READY_TIMEOUT = 30.0
"""Seconds to wait for the service to answer before giving up on opening the browser."""

PROBE_INTERVAL = 0.1


def dashboard_url(host: str, port: int) -> str:
    """The dashboard's URL for a service listening on ``host:port``.

    A wildcard address (``0.0.0.0``, ``::``) is reached on this machine's loopback.
    """
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/ui/"


def answers(url: str) -> bool:
    """True when ``url`` answers 200 (one quick request)."""
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def open_when_ready(
    url: str,
    *,
    ready: Callable[[], bool],
    open_browser: Callable[[str], bool] = webbrowser.open,
    timeout: float = READY_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Open ``url`` in a browser once ``ready()`` is true; False if it never was in time.

    Args:
        url: What to open.
        ready: Whether the service answers yet.
        open_browser: Opens a URL (returns whether a browser took it).
        timeout: Seconds to keep asking ``ready``.
        sleep: Waits between probes (injectable, so tests never sleep).
        clock: Monotonic seconds (injectable with ``sleep``).
    """
    deadline = clock() + timeout
    while not ready():
        if clock() >= deadline:
            return False
        sleep(PROBE_INTERVAL)
    return bool(open_browser(url))


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8750, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-browser", is_flag=True, help="Print the dashboard's URL; open nothing.")
@pass_app
def ui(app: App, host: str, port: int, no_browser: bool) -> None:
    """Serve this catalog and open its dashboard (jobs, files, lineage) in a browser."""
    try:
        from datacatalog.service import serve as run_service
    except ImportError as exc:
        raise InvalidRequestError(f"the dashboard cannot start: {exc}") from exc
    url = dashboard_url(host, port)
    health = url.removesuffix("/ui/") + "/healthz"
    app.out.note(f"the dashboard is at {url} (Ctrl-C stops)")
    if not no_browser:
        threading.Thread(
            target=open_when_ready,
            args=(url,),
            kwargs={"ready": lambda: answers(health)},
            name="open-dashboard",
            daemon=True,
        ).start()
    run_service(app.settings, host=host, port=port)
