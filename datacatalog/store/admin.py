"""Administrative commands on a server the product manages itself.

The managed local server (:mod:`datacatalog.local`) must initiate its replica set, ask
whether it is a writable primary, count its clients and shut it down. Those are MongoDB
commands, and only this package talks to MongoDB, so they live here as small functions
over a connection URI. Every client made here carries an application name starting with
:data:`INTERNAL_APP_PREFIX`, so the idle watcher does not count it as a user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

from pymongo import MongoClient
from pymongo import errors as mongo_errors
from pymongo.database import Database

from datacatalog.errors import UnavailableError
from datacatalog.waiting import wait_until

INTERNAL_APP_PREFIX = "datacatalog-local-"
"""Application-name prefix of the manager's own connections (not counted as clients)."""

_ALREADY_INITIALIZED = 23


def socket_uri(path: str) -> str:
    """The URI of a server listening on the Unix socket ``path`` (one member, direct)."""
    return f"mongodb://{quote_plus(path)}/?directConnection=true"


def tcp_uri(port: int) -> str:
    """The URI of a server on loopback TCP ``port`` (one member, direct)."""
    return f"mongodb://127.0.0.1:{port}/?directConnection=true"


class AdminClient:
    """A short-lived client for the manager's own commands.

    Args:
        uri: The server's URI (from :func:`socket_uri` or :func:`tcp_uri`).
        role: Suffix of the application name (``start``, ``status``, ``watch``, ...).
        timeout: Seconds to wait for the server.
    """

    def __init__(self, uri: str, *, role: str, timeout: float = 5.0) -> None:
        self.uri = uri
        ms = max(1, int(timeout * 1000))
        self._client: MongoClient[dict[str, Any]] = MongoClient(
            uri,
            appname=INTERNAL_APP_PREFIX + role,
            serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms,
            tz_aware=True,
        )

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def database(self, name: str) -> Database[dict[str, Any]]:
        """The pymongo database ``name`` (for the store package's own use)."""
        return self._client[name]

    def command(self, name: str, value: Any = 1, **fields: Any) -> dict[str, Any]:
        """Run one admin command; unreachable servers raise :class:`UnavailableError`."""
        try:
            return dict(self._client.admin.command(name, value, **fields))
        except (mongo_errors.ConnectionFailure, mongo_errors.ServerSelectionTimeoutError) as exc:
            raise UnavailableError(
                f"the local server at {self.uri} does not answer: {exc}"
            ) from exc

    def reachable(self) -> bool:
        """Whether the server answers a ping."""
        try:
            self.command("ping")
        except (UnavailableError, mongo_errors.PyMongoError):
            return False
        return True

    def make_primary(self, host: str, replica_set: str, timeout: float) -> None:
        """Initiate (or re-point) the one-member replica set and wait for a writable primary.

        The replica set config stores the member's address; when the server now listens
        somewhere else (a new port, a socket instead of TCP), it is forced to the new one.
        A server that has just started may still be loading its config, or drop
        connections while it applies a new one: each step is retried until ``timeout``.

        Raises:
            UnavailableError: Not a writable primary within ``timeout`` seconds.
        """
        problems: list[Exception] = []

        def step() -> bool:
            try:
                return self._primary_step(host, replica_set)
            except (UnavailableError, mongo_errors.PyMongoError) as exc:
                problems[:] = [exc]  # the last one is reported
                return False

        if not wait_until(step, timeout=timeout, interval=0.05):
            raise UnavailableError(
                f"the local server at {self.uri} is not a writable primary after "
                f"{timeout:g} s" + (f": {problems[-1]}" if problems else "")
            )

    def _primary_step(self, host: str, replica_set: str) -> bool:
        """One step towards a writable primary at ``host``; whether it is one now."""
        # The stored config is readable at once, before the server has loaded it.
        stored = self._client.local["system.replset"].find_one({})
        if stored is None:
            try:
                self.command(
                    "replSetInitiate", {"_id": replica_set, "members": [{"_id": 0, "host": host}]}
                )
            except mongo_errors.OperationFailure as exc:
                if exc.code != _ALREADY_INITIALIZED:
                    raise
            return False
        members = stored.get("members", [])
        if len(members) != 1 or members[0].get("host") != host:
            config = {k: v for k, v in stored.items() if k not in ("term",)}
            config["members"] = (
                [{**members[0], "host": host}] if members else [{"_id": 0, "host": host}]
            )
            config["version"] = int(stored.get("version", 1)) + 1
            # The member's new address drops the open connections: expected.
            with contextlib.suppress(UnavailableError):
                self.command("replSetReconfig", config, force=True)
            return False
        return bool(self.command("hello").get("isWritablePrimary"))

    def repoint_member(self, host: str) -> bool:
        """On a server started without ``--replSet``: store ``host`` as the member's address.

        Starting a member whose stored address is no longer its own makes it probe the old
        address first, which can hang for half a minute when something else listens
        there; rewriting the stored config while the server runs standalone avoids that.

        Returns:
            Whether a stored config was changed.
        """
        configs = self._client.local["system.replset"]
        stored = configs.find_one({})
        if stored is None:
            return False
        members = stored.get("members", [])
        if len(members) == 1 and members[0].get("host") == host:
            return False
        new_members = [{**members[0], "host": host}] if members else [{"_id": 0, "host": host}]
        configs.update_one(
            {"_id": stored["_id"]},
            {"$set": {"members": new_members, "version": int(stored.get("version", 1)) + 1}},
        )
        return True

    def client_count(self) -> int:
        """How many connections belong to clients other than the manager's own."""
        try:
            ops = list(
                self._client.admin.aggregate(
                    [
                        {"$currentOp": {"allUsers": True, "idleConnections": True}},
                        {"$match": {"connectionId": {"$exists": True}}},
                        {"$project": {"appName": 1}},
                    ]
                )
            )
        except mongo_errors.PyMongoError as exc:
            raise UnavailableError(
                f"cannot list the connections of the local server at {self.uri}: {exc}"
            ) from exc
        return sum(
            1 for op in ops if not str(op.get("appName", "")).startswith(INTERNAL_APP_PREFIX)
        )

    def server_status(self) -> Mapping[str, Any]:
        """The server's ``serverStatus`` document (version, uptime, connections)."""
        try:
            return self.command("serverStatus")
        except mongo_errors.PyMongoError as exc:
            raise UnavailableError(
                f"the local server at {self.uri} refused serverStatus: {exc}"
            ) from exc

    def shutdown(self) -> None:
        """Ask the server to shut down cleanly; the dropped connection is expected."""
        # The server closes the connection as it goes.
        with contextlib.suppress(mongo_errors.PyMongoError):
            self._client.admin.command("shutdown", 1, force=True)
