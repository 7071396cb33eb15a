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

Every MongoDB client is made with the durability pinned, whatever the cluster's defaults:
writes are acknowledged once a majority of the replica set has them in its journal
(``w="majority"``, ``j=True``), so no acknowledged write is rolled back by a failover; reads
use read concern ``majority``, so nothing a caller reads (a job, its history, a file
record) can disappear after one. A replica set with arbiters cannot always give majority
writes: connecting to one logs a warning, once per set (:func:`durability_warning`).
"""

from __future__ import annotations

import atexit
import logging
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
from datacatalog.store.failover import DEFAULT_BUDGET, RetryPolicy

__all__ = [
    "COLLECTIONS",
    "SERVER_NOW",
    "BulkResult",
    "Document",
    "OrderedBulkResult",
    "RetryPolicy",
    "Store",
    "Upsert",
    "close_clients",
    "connect",
    "durability_warning",
    "redact_uri",
    "schemes",
]

DEFAULT_DATABASE = "catalog"
DEFAULT_TIMEOUT_MS = 5000

_CLIENTS: dict[str, MongoClient[Document]] = {}
_CLIENTS_LOCK = threading.Lock()
# Replica sets already warned about (the warning is said once per set and process).
_WARNED: set[str] = set()

_log = logging.getLogger(__name__)

# Pinned on every client: majority-acknowledged, journaled writes; majority reads.
DURABILITY: dict[str, Any] = {"w": "majority", "journal": True, "readConcernLevel": "majority"}


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
    """A backend on the shared client of ``uri`` (one per URI and timeout, per process)."""
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
    """A connected client (it answered ``hello``), its durability pinned."""
    try:
        # timeoutMS bounds each whole call, retries included (finding a server, connecting,
        # every answer): a server that stops answering mid-call makes the call fail in
        # that time instead of hanging. Keyword options win over the URI's, so a URI
        # asking for w=1 still gets majority writes.
        client: MongoClient[Document] = MongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            timeoutMS=timeout_ms,
            **DURABILITY,
        )
        # The round trip that proves the server answers also says what it is.
        hello = client.admin.command("hello")
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
    warning = durability_warning(hello)
    if warning is not None:
        key = str(hello.get("setName"))
        with _CLIENTS_LOCK:
            first = key not in _WARNED
            _WARNED.add(key)
        if first:
            _log.warning("MongoDB at %s: %s", shown, warning)
    return client


def durability_warning(hello: Mapping[str, Any]) -> str | None:
    """What a deployment's ``hello`` answer says majority writes cannot be trusted for.

    A replica set with arbiters holds its data on fewer members than it has votes: with
    one data-bearing member down, a majority write cannot be acknowledged (each of the
    catalog's writes then fails as ``unavailable`` until the member is back), and where
    arbiters hold most of the votes, "majority" is the one data-bearing member, which a
    failover can roll back. The catalog keeps majority writes either way (it never falls
    back to ``w:1``), and says so here. A single server and an arbiter-free set are fine.

    Returns:
        The warning, or None when the deployment gives majority writes.
    """
    arbiters = list(hello.get("arbiters") or [])
    if not hello.get("setName") or not arbiters:
        return None
    data_bearing = len(hello.get("hosts") or []) + len(hello.get("passives") or [])
    voters = data_bearing + len(arbiters)
    weak = data_bearing < voters // 2 + 1
    return (
        f"replica set {hello['setName']} has {len(arbiters)} arbiter(s) "
        f"({', '.join(map(str, arbiters))}) and {data_bearing} data-bearing member(s): "
        + (
            "a majority of its votes is not a majority of copies, so an acknowledged write "
            "may live on one member only and be rolled back by a failover"
            if weak
            else "while a data-bearing member is down, majority writes cannot be "
            "acknowledged and every catalog write fails as unavailable"
        )
        + " (the catalog always writes with w=majority, j=true; see the README's "
        "'Moving to a shared MongoDB')"
    )


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
    failover_budget: float = DEFAULT_BUDGET,
) -> Store:
    """Connect to a catalog.

    Args:
        target: A URI, a settings dict, a pymongo ``Database`` or an existing ``Store``.
        database: Database name (overrides the one in the URI or settings).
        timeout_ms: How long any one call waits for the server (to find it, to connect,
            for each answer) before giving up with :class:`UnavailableError`.
        lock_timeout: Seconds the embedded catalog waits for its lock (default: the
            ``DATACATALOG_LOCK_TIMEOUT`` variable, else 30).
        failover_budget: Seconds a call that is safe to resend (a keyed event, a batch
            of file records) keeps trying while the database is unavailable, as during
            a replica set election (:class:`RetryPolicy`); 0 sends it once.

    Raises:
        InvalidRequestError: The target is malformed or uses an unknown scheme.
        UnavailableError: The server cannot be reached in time.
    """
    if isinstance(target, Store):
        return target
    policy = RetryPolicy(budget=failover_budget, attempt_timeout=timeout_ms / 1000)
    if isinstance(target, Database) or _looks_like_database(target):
        # An in-memory engine's database may be handed over too; it has no server clock.
        engine = type(target.client).__module__  # type: ignore[union-attr]
        return Store(
            DatabaseBackend(
                target,  # type: ignore[arg-type]
                f"database {target.name}",  # type: ignore[union-attr]
                evaluates_now=not engine.startswith("mongomock"),
            ),
            failover=policy,
        )
    if isinstance(target, Mapping):
        uri, name = _from_settings(target)
        return connect(
            uri,
            database=database or name,
            timeout_ms=timeout_ms,
            lock_timeout=lock_timeout,
            failover_budget=failover_budget,
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
    return Store(factory(target, database, timeout_ms, lock_timeout), failover=policy)


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
