"""Running the service: open the configured catalog and serve it with uvicorn.

Job tokens travel in webhook URLs (``?token=...``), and uvicorn's access log
prints every request's URL; :class:`RedactTokens` masks token values in those
lines so the log never holds a usable token. A query parameter counts as the
token when its *decoded* name is ``token`` (``?%74oken=`` is read as ``token``
by the service, so it is masked too).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from typing import Any
from urllib.parse import unquote_plus

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from datacatalog.catalog import Catalog
from datacatalog.errors import InvalidRequestError
from datacatalog.service.app import create_app
from datacatalog.settings import Settings

_QUERY_PARAMETER = re.compile(r"([?&])([^=&\s#]*)=([^&\s#\"]*)")


def redact_tokens(text: str) -> str:
    """``text`` with the value of every ``token`` query parameter replaced by ``***``."""

    def mask(match: re.Match[str]) -> str:
        if unquote_plus(match.group(2)).strip().lower() != "token":
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}=***"

    return _QUERY_PARAMETER.sub(mask, text)


class RedactTokens(logging.Filter):
    """Replace the value of every ``token`` query parameter in a log record with ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's arguments (and message) in place; always keep the record."""
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        return True


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``, ready to hand to the server.

    Binding here, before the server starts, turns a port already in use or an
    unknown address into one clear error instead of a server log line and an
    exit code outside the error table.

    Raises:
        InvalidRequestError: The address cannot be resolved or bound.
    """
    if not 0 <= port <= 65535:
        raise InvalidRequestError(
            f"cannot listen on {host}:{port}: a port is 0 to 65535", host=host, port=port
        )
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except BaseException:
            sock.close()
            raise
    except (OSError, OverflowError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidRequestError(
            f"cannot listen on {host}:{port}: {reason}", host=host, port=port
        ) from exc
    sock.set_inheritable(True)
    return sock


MAX_WORKERS = 64
"""Most worker processes ``serve`` starts."""


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    """Open the catalog ``settings`` describe and serve it until interrupted.

    Args:
        settings: The configuration (store, secret, data dir, body limit).
        host: Address to listen on (``127.0.0.1`` for this machine only).
        port: TCP port to listen on.
        workers: Processes serving requests (1: this one). More than one start
            uvicorn workers, each with its own catalog connection (see
            :func:`serve_workers`).

    Raises:
        InvalidRequestError: ``workers`` is not 1 to 64, ``host:port`` cannot be
            listened on, or the configuration is wrong; nothing is served.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InvalidRequestError(
            f"workers must be an integer from 1 to {MAX_WORKERS}, not {workers!r}",
            workers=workers,
        )
    sock = listen(host, port)
    if workers > 1:
        try:
            serve_workers(settings, sock, host=host, port=port, workers=workers)
        finally:
            sock.close()
        return
    try:
        catalog = Catalog.open(settings=settings)
        try:
            # Resolve (or, for a local catalog, create) the secret now rather than on the
            # first request, so a misconfiguration stops the service at start.
            _ = catalog.jobs.secret
            config = uvicorn.Config(
                create_app(catalog), host=host, port=port, server_header=False, log_level="info"
            )
            # Config has set up logging by now; filter what the access log prints.
            logging.getLogger("uvicorn.access").addFilter(RedactTokens())
            shown = f"[{host}]" if ":" in host else host
            logging.getLogger("uvicorn.error").info(
                "serving the catalog on http://%s:%d (Ctrl-C stops)", shown, port
            )
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            catalog.close()
    finally:
        sock.close()


WORKER_APP = "datacatalog.service.server:worker_app"
"""The app factory each worker process imports and calls."""


def serve_workers(
    settings: Settings, sock: socket.socket, *, host: str, port: int, workers: int
) -> None:
    """Serve on ``sock`` from ``workers`` uvicorn worker processes until interrupted.

    A MongoDB client must not cross a process boundary, so every worker opens the
    catalog itself (:func:`worker_app`). The workers are new interpreters: they read
    their configuration from ``DATACATALOG_*`` variables, which are set here from
    ``settings``. The secret is resolved first (for a local catalog, generated once),
    so every worker signs and checks tokens with the same one.
    """
    with Catalog.open(settings=settings) as catalog:
        secret = catalog.jobs.secret
    os.environ.update(settings_environment(settings, secret=secret))
    config = uvicorn.Config(
        WORKER_APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        log_level="info",
    )
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info(
        "serving the catalog on http://%s:%d with %d workers (Ctrl-C stops)", shown, port, workers
    )
    Multiprocess(config, sockets=[sock]).run()


def worker_app() -> FastAPI:
    """The app of one worker process: the catalog its ``DATACATALOG_*`` variables name."""
    # Each worker set up its own logging: filter what its access log prints.
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    return create_app(Catalog.open(settings=Settings.load()))


def settings_environment(settings: Settings, *, secret: str) -> dict[str, str]:
    """``DATACATALOG_*`` variables from which :meth:`Settings.load` reads ``settings``."""
    values: dict[str, Any] = {
        "data_dir": str(settings.data_dir),
        "mongodb_uri": settings.mongodb_uri,
        "mongodb_database": settings.mongodb_database,
        "secret": secret,
        "service_url": settings.service_url,
        "storage_systems": json.dumps(dict(settings.storage_systems)),
        "default_storage": settings.default_storage,
        "admin_token_lifetime": str(settings.admin_token_lifetime),
        "max_body_bytes": str(settings.max_body_bytes),
        "lock_timeout": str(settings.lock_timeout),
    }
    return {f"DATACATALOG_{name.upper()}": value for name, value in values.items() if value}
