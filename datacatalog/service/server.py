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
from urllib.parse import unquote_plus

import uvicorn

from datacatalog.catalog import Catalog
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


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Open the catalog ``settings`` describe and serve it until interrupted.

    Args:
        settings: The configuration (store, secret, data dir, body limit).
        host: Address to listen on (``127.0.0.1`` for this machine only).
        port: TCP port to listen on.
    """
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
        uvicorn.Server(config).run()
    finally:
        catalog.close()
