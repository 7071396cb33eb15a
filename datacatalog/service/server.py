"""Running the service: open the configured catalog and serve it with uvicorn.

Job tokens travel in webhook URLs (``?token=...``), and uvicorn's access log
prints every request's URL; :class:`RedactTokens` masks token values in those
lines so the log never holds a usable token. A query parameter counts as the
token when its *decoded* name is ``token`` (``?%74oken=`` is read as ``token``
by the service, so it is masked too).
"""

from __future__ import annotations

import logging
import re
import socket
from urllib.parse import unquote_plus

import uvicorn

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


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Open the catalog ``settings`` describe and serve it until interrupted.

    Args:
        settings: The configuration (store, secret, data dir, body limit).
        host: Address to listen on (``127.0.0.1`` for this machine only).
        port: TCP port to listen on.

    Raises:
        InvalidRequestError: ``host:port`` cannot be listened on, or the
            configuration is wrong; nothing is served.
    """
    sock = listen(host, port)
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
