"""Connecting to a catalog: the engine is chosen by the target's URI scheme.

=====================  =================================================================
target                 engine
=====================  =================================================================
``mongodb://...``      a MongoDB server or replica set
``mongodb+srv://...``  a MongoDB cluster found through DNS SRV records
``mongomock://``       the in-memory engine (fresh and empty for every ``connect``)
``local://DATA_DIR``   the managed MongoDB server of a data dir (started when needed;
                       the JSON fallback where no server binary runs)
``embedded://PATH``    the embedded JSON catalog persisted in the file ``PATH``
a settings dict        ``{"uri", "database"}`` or ``{"host", "port", "username",
                       "password", "database"}``
a pymongo Database     used as it is
=====================  =================================================================

Only this package imports the MongoDB driver. Heavy or optional engines are
imported when first used.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus

from pymongo import MongoClient, uri_parser
from pymongo import errors as mongo_errors
from pymongo.database import Database

from datacatalog.errors import InvalidRequestError, UnavailableError
from datacatalog.store.core import (
    COLLECTIONS,
    SERVER_NOW,
    Backend,
    BulkResult,
    DatabaseBackend,
    Document,
    OrderedBulkResult,
    Store,
    Upsert,
)

__all__ = [
    "COLLECTIONS",
    "SERVER_NOW",
    "BulkResult",
    "Document",
    "OrderedBulkResult",
    "Store",
    "Upsert",
    "close_clients",
    "connect",
    "redact_uri",
    "schemes",
]

DEFAULT_DATABASE = "catalog"
DEFAULT_TIMEOUT_MS = 5000

_CLIENTS: dict[str, MongoClient[Document]] = {}
_CLIENTS_LOCK = threading.Lock()


def close_clients() -> bool:
    """Close the shared clients; at a process's end, leave without waiting for pymongo.

    For a short-lived process such as a command: once every client is closed, pymongo's
    exit hook has nothing left to do but join its monitor threads, which notice they were
    stopped only when they wake from their half-second naps. That wait is dropped when
    every pymongo background thread has been stopped; otherwise (or when pymongo's
    internals are not the ones this knows) the hook stays. Nothing is closed while other
    threads of the process still run: they may be using a client.

    Returns:
        Whether the exit hook was dropped.
    """
    others = [
        t
        for t in threading.enumerate()
        if t is not threading.current_thread() and not t.daemon and t.is_alive()
    ]
    if others:
        return False
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        client.close()
    try:
        from pymongo import periodic_executor
        from pymongo.synchronous import monitor

        hook = monitor._shutdown_resources
        executors = [ref() for ref in list(periodic_executor._EXECUTORS)]
        if not all(e is None or getattr(e, "_stopped", False) is True for e in executors):
            return False
    except (ImportError, AttributeError, TypeError):
        return False
    atexit.unregister(hook)
    return True


def redact_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***``."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        userinfo, _, hosts = authority.rpartition("@")
        user = userinfo.split(":", 1)[0]
        authority = f"{user}:***@{hosts}" if ":" in userinfo else f"{user}@{hosts}"
    return f"{scheme}://{authority}{slash}{tail}"


def _mongodb(
    uri: str, database: str | None, timeout_ms: int, lock_timeout: float | None
) -> Backend:
    shown = redact_uri(uri)
    name = _database_name(uri, database, timeout_ms, shown)
    key = f"{uri}|{timeout_ms}"
    with _CLIENTS_LOCK:
        client: MongoClient[Document] | None = _CLIENTS.get(key)
        if client is None:
            client = _new_client(uri, timeout_ms, shown)
            _CLIENTS[key] = client
    return DatabaseBackend(client[name], shown)


def _own_mongodb(
    uri: str, database: str | None, timeout_ms: int, lock_timeout: float | None
) -> Backend:
    """A backend with a client of its own, closed with the store.

    The managed local server stops once no client is connected, so a closed catalog
    must not leave a cached client holding connections.
    """
    shown = redact_uri(uri)
    name = _database_name(uri, database, timeout_ms, shown)
    return DatabaseBackend(_new_client(uri, timeout_ms, shown)[name], shown, owns_client=True)


def _database_name(uri: str, database: str | None, timeout_ms: int, shown: str) -> str:
    try:
        parsed = uri_parser.parse_uri(uri, connect_timeout=timeout_ms / 1000)
    except (mongo_errors.InvalidURI, mongo_errors.ConfigurationError, ValueError) as exc:
        raise InvalidRequestError(f"malformed MongoDB URI {shown}: {exc}", uri=shown) from exc
    return str(database or parsed.get("database") or DEFAULT_DATABASE)


def _new_client(uri: str, timeout_ms: int, shown: str) -> MongoClient[Document]:
    """A connected client (it answered a ping)."""
    try:
        # timeoutMS bounds each whole call, retries included (finding a server, connecting,
        # every answer): a server that stops answering mid-call makes the call fail in
        # that time instead of hanging.
        client: MongoClient[Document] = MongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            timeoutMS=timeout_ms,
        )
        client.admin.command("ping")
    except (
        mongo_errors.ConnectionFailure,
        mongo_errors.ServerSelectionTimeoutError,
    ) as exc:
        raise UnavailableError(
            f"cannot reach MongoDB at {shown} within {timeout_ms / 1000:g} s "
            "(DATACATALOG_MONGODB_TIMEOUT)",
            uri=shown,
        ) from exc
    except mongo_errors.PyMongoError as exc:
        raise InvalidRequestError(f"cannot connect to MongoDB at {shown}: {exc}") from exc
    return client


def _memory(uri: str, database: str | None, timeout_ms: int, lock_timeout: float | None) -> Backend:
    import mongomock_ng

    rest = uri.partition("://")[2].strip("/")
    client: Any = mongomock_ng.MongoClient(tz_aware=True)
    return DatabaseBackend(
        client[database or rest or DEFAULT_DATABASE],
        "mongomock://",
        True,
        serialized=True,
        evaluates_now=False,
    )


def _embedded(
    uri: str, database: str | None, timeout_ms: int, lock_timeout: float | None
) -> Backend:
    from datacatalog.store.embedded import EmbeddedBackend

    path = uri.partition("://")[2]
    if not path:
        raise InvalidRequestError(
            "embedded:// needs a file path, e.g. embedded:///data/catalog.json"
        )
    return EmbeddedBackend(path, database=database or DEFAULT_DATABASE, lock_timeout=lock_timeout)


def _local(uri: str, database: str | None, timeout_ms: int, lock_timeout: float | None) -> Backend:
    from datacatalog.store.local import open_local

    return open_local(uri, database or DEFAULT_DATABASE, timeout_ms, lock_timeout, _own_mongodb)


_SCHEMES: dict[str, Callable[[str, str | None, int, float | None], Backend]] = {
    "mongodb": _mongodb,
    "mongodb+srv": _mongodb,
    "mongomock": _memory,
    "embedded": _embedded,
    "local": _local,
}


def schemes() -> list[str]:
    """The URI schemes :func:`connect` understands."""
    return list(_SCHEMES)


def connect(
    target: str | Mapping[str, Any] | Database[Document] | Store,
    *,
    database: str | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    lock_timeout: float | None = None,
) -> Store:
    """Connect to a catalog.

    Args:
        target: A URI, a settings dict, a pymongo ``Database`` or an existing ``Store``.
        database: Database name (overrides the one in the URI or settings).
        timeout_ms: How long any one call waits for the server (to find it, to connect,
            for each answer) before giving up with :class:`UnavailableError`.
        lock_timeout: Seconds the embedded catalog waits for its lock (default: the
            ``DATACATALOG_LOCK_TIMEOUT`` variable, else 30).

    Raises:
        InvalidRequestError: The target is malformed or uses an unknown scheme.
        UnavailableError: The server cannot be reached in time.
    """
    if isinstance(target, Store):
        return target
    if isinstance(target, Database) or _looks_like_database(target):
        # An in-memory engine's database may be handed over too; it has no server clock.
        engine = type(target.client).__module__  # type: ignore[union-attr]
        return Store(
            DatabaseBackend(
                target,  # type: ignore[arg-type]
                f"database {target.name}",  # type: ignore[union-attr]
                evaluates_now=not engine.startswith("mongomock"),
            )
        )
    if isinstance(target, Mapping):
        uri, name = _from_settings(target)
        return connect(
            uri, database=database or name, timeout_ms=timeout_ms, lock_timeout=lock_timeout
        )
    if not isinstance(target, str) or "://" not in target:
        raise InvalidRequestError(
            f"cannot connect to {target!r}: expected a URI with one of the schemes "
            f"{', '.join(s + '://' for s in _SCHEMES)}, a settings dict or a Database"
        )
    scheme = target.split("://", 1)[0].lower()
    factory = _SCHEMES.get(scheme)
    if factory is None:
        raise InvalidRequestError(
            f"unknown URI scheme {scheme!r} in {redact_uri(target)}; "
            f"valid schemes: {', '.join(_SCHEMES)}",
            scheme=scheme,
        )
    return Store(factory(target, database, timeout_ms, lock_timeout))


def _looks_like_database(target: object) -> bool:
    # The in-memory engine's Database is not a pymongo Database but quacks like one.
    return all(hasattr(target, a) for a in ("client", "name", "list_collection_names"))


def _from_settings(settings: Mapping[str, Any]) -> tuple[str, str | None]:
    name = settings.get("database") or settings.get("db")
    if settings.get("uri"):
        return str(settings["uri"]), name
    host = settings.get("host")
    if not host:
        raise InvalidRequestError(
            "MongoDB settings need either 'uri' or 'host' (with optional port, username, "
            "password, database)"
        )
    port = settings.get("port")
    auth = ""
    if settings.get("username"):
        auth = quote_plus(str(settings["username"]))
        if settings.get("password"):
            auth += ":" + quote_plus(str(settings["password"]))
        auth += "@"
    where = f"{host}:{port}" if port else str(host)
    if str(host).startswith(("mongodb://", "mongodb+srv://", "mongomock://")):
        return str(host), name
    return f"mongodb://{auth}{where}/", name
