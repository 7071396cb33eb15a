"""The ``local://DATA_DIR`` engine: the managed MongoDB server of a data dir.

Opening it finds or starts the server (:class:`datacatalog.local.LocalServer`), connects
while the start lock is held, and imports a ``catalog.json`` left by the earlier embedded
engine once. Where no server binary runs here and the server never held data, the embedded
JSON engine on ``<data dir>/catalog.json`` is used instead, with a warning (shown once per
data dir and cause) naming its limits and how to get a server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from datacatalog.errors import InvalidRequestError
from datacatalog.local import BinaryUnusableError, LocalServer, LocalServerError
from datacatalog.local.binary import INSTALL_HINT
from datacatalog.local.layout import Layout, ServerState, read_json, write_json
from datacatalog.local.manager import DEFAULT_IDLE_TIMEOUT
from datacatalog.store.engines import Backend, DatabaseBackend
from datacatalog.store.migrate import import_snapshot

logger = logging.getLogger("datacatalog.local")

SNAPSHOT = "catalog.json"


def local_uri(data_dir: Path, idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> str:
    """The ``local://`` target of ``data_dir``."""
    return f"local://{quote(str(data_dir))}?idle_timeout={idle_timeout:g}"


def parse_local_uri(uri: str) -> tuple[Path, float]:
    """The data dir and idle timeout named by a ``local://`` target.

    Raises:
        InvalidRequestError: No absolute path, or a malformed idle timeout.
    """
    parts = urlsplit(uri)
    path = unquote(parts.netloc + parts.path)
    if not path.startswith("/"):
        raise InvalidRequestError(
            f"local:// needs an absolute data dir path, e.g. local:///home/me/data, not {uri!r}"
        )
    raw = parse_qs(parts.query).get("idle_timeout", [str(DEFAULT_IDLE_TIMEOUT)])[-1]
    try:
        idle = float(raw)
    except ValueError:
        idle = -1.0
    if not idle > 0:
        raise InvalidRequestError(f"idle_timeout in {uri!r} must be a positive number of seconds")
    return Path(path), idle


def open_local(
    uri: str,
    database: str,
    timeout_ms: int,
    lock_timeout: float | None,
    connect_mongodb: Callable[[str, str | None, int, float | None], Backend],
) -> Backend:
    """Open the managed server of the data dir in ``uri`` (or the JSON fallback).

    Args:
        uri: A ``local://`` target.
        database: The database name.
        timeout_ms: Connection timeout.
        lock_timeout: The JSON fallback's lock wait.
        connect_mongodb: The ``mongodb://`` engine factory.
    """
    data_dir, idle_timeout = parse_local_uri(uri)
    server = LocalServer(data_dir, idle_timeout=idle_timeout)
    try:
        with server.attached() as state:
            backend = connect_mongodb(state.uri, database, timeout_ms, lock_timeout)
            import_snapshot(state.uri, database, data_dir / SNAPSHOT)
    except BinaryUnusableError as exc:
        # Only the JSON file stands in, and only for a server that never held data.
        if server.layout.has_data():
            raise LocalServerError(
                f"{exc}\nThe catalog in {server.layout.db} needs its server, so the JSON "
                f"engine cannot stand in for it. To get a server: {INSTALL_HINT}",
                path=str(server.layout.db),
            ) from exc
        return _fallback(server.layout, data_dir, database, lock_timeout, str(exc))
    server.layout.fallback.unlink(missing_ok=True)
    assert isinstance(backend, DatabaseBackend)
    backend.description = f"local MongoDB server in {server.layout.root}"
    return backend


def start_local(data_dir: Path, database: str, idle_timeout: float) -> ServerState:
    """Start (or find) the managed server and import a ``catalog.json`` once; no fallback.

    Raises:
        BinaryUnusableError: No server binary runs here.
        LocalServerError: The server cannot start.
    """
    server = LocalServer(data_dir, idle_timeout=idle_timeout)
    with server.attached() as state:
        import_snapshot(state.uri, database, data_dir / SNAPSHOT)
    server.layout.fallback.unlink(missing_ok=True)
    return state


def _fallback(
    layout: Layout, data_dir: Path, database: str, lock_timeout: float | None, reason: str
) -> Backend:
    from datacatalog.store.embedded import EmbeddedBackend

    path = data_dir / SNAPSHOT
    record = read_json(layout.fallback)
    if record is None or record.get("reason") != reason:
        logger.warning(
            "warning: no MongoDB server can run here, so the catalog is the JSON file %s. "
            "It rewrites the whole file on every write (about 0.4 s per job at 1,000 jobs, "
            "growing with the square of the catalog) and suits hundreds of jobs. To get a "
            "server: %s, or set DATACATALOG_MONGODB_URI. (This warning is shown once.) "
            "Cause: %s",
            path,
            INSTALL_HINT,
            reason,
        )
        write_json(layout.fallback, {"reason": reason, "at": time.time(), "catalog": str(path)})
    backend = EmbeddedBackend(path, database=database, lock_timeout=lock_timeout)
    backend.description = f"embedded catalog {path} (JSON fallback: no MongoDB server)"
    return backend
