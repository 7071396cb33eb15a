"""A throw-away replica set of several members, for the fault tests.

The members are :class:`~datacatalog.testing.server.MongodServer` instances (started by
the product's own launcher) with test commands enabled, so that a test can kill one,
restart it, step it down or cut it off from the others with a fail point. It talks to
the members with pymongo directly: this is a test tool, not product code.
"""

from __future__ import annotations

import contextlib
from typing import Any

from datacatalog.lifetime import StartStop
from datacatalog.local import ports
from datacatalog.testing.server import MongodError, MongodServer, find_mongod
from datacatalog.waiting import wait_until


class ReplicaSet(StartStop):
    """A throw-away replica set of ``members`` mongods on loopback ports, for fault tests.

    Every member runs the same binary with test commands enabled (so fail points can cut
    a member off) and a small oplog; the set is initiated with the given election
    settings, so that a crash failover takes a few seconds instead of MongoDB's default
    ten or more. Members are addressed by index; :meth:`primary` says which one leads.

    ::

        with ReplicaSet(3, election_timeout_ms=2000) as rs:
            old = rs.primary()
            rs.kill(old)                 # SIGKILL
            rs.wait_for_primary(besides=old)
            rs.restart(old)              # same data, same port: it rejoins (and rolls
                                         # back what only it had)

    Args:
        members: How many members (data-bearing, one vote each).
        name: The set's name.
        election_timeout_ms: ``settings.electionTimeoutMillis`` of the set.
        heartbeat_interval_ms: ``settings.heartbeatIntervalMillis`` of the set.
        startup_timeout: Seconds to wait for the set to have a primary and its secondaries.
        mongod: The binary (default: :func:`find_mongod`).
    """

    def __init__(
        self,
        members: int = 3,
        *,
        name: str = "rs0",
        election_timeout_ms: int = 2000,
        heartbeat_interval_ms: int = 500,
        startup_timeout: float = 60.0,
        mongod: str | None = None,
    ) -> None:
        if members < 1:
            raise MongodError(f"a replica set needs at least one member, not {members}")
        self.name = name
        self._count = members
        self._election_timeout_ms = election_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._startup_timeout = startup_timeout
        self._mongod = mongod
        self.members: list[MongodServer] = []

    @property
    def hosts(self) -> list[str]:
        """``127.0.0.1:PORT`` of each member, by index."""
        return [f"127.0.0.1:{m.port}" for m in self.members]

    @property
    def uri(self) -> str:
        """A URI naming every member and the set."""
        return f"mongodb://{','.join(self.hosts)}/?replicaSet={self.name}"

    def start(self) -> ReplicaSet:
        """Start every member, initiate the set, wait for a primary and its secondaries."""
        binary = self._mongod or find_mongod()
        try:
            for port in ports.free_ports(self._count):
                member = MongodServer(
                    mongod=binary,
                    port=port,
                    replica_set=self.name,
                    cache_size_gb=0.25,
                    startup_timeout=self._startup_timeout,
                    stop_timeout=5.0,
                    extra_args=["--setParameter", "enableTestCommands=1"],
                    initiate=False,
                    oplog_mb=64,
                )
                self.members.append(member)
                member.start()
            config = {
                "_id": self.name,
                "members": [{"_id": i, "host": host} for i, host in enumerate(self.hosts)],
                "settings": {
                    "electionTimeoutMillis": self._election_timeout_ms,
                    "heartbeatIntervalMillis": self._heartbeat_interval_ms,
                    "catchUpTimeoutMillis": 0,
                },
            }
            self.command(0, "replSetInitiate", config)
            self.wait_healthy(self._startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every member (a throw-away set has nothing to flush) and remove their folders."""
        for member in self.members:
            with contextlib.suppress(MongodError):
                member.kill_now()
                member.stop()

    def rolled_back(self, index: int) -> bool:
        """Whether member ``index`` rolled writes back (it keeps what it undid in
        ``<dbpath>/rollback``): it had writes that no majority had."""
        dbpath = self.members[index].dbpath
        return dbpath is not None and any(p.is_file() for p in (dbpath / "rollback").rglob("*"))

    # -- looking -----------------------------------------------------------------------

    def command(self, index: int, name: str, argument: Any = 1, **fields: Any) -> dict[str, Any]:
        """Run an admin command on member ``index`` alone (a direct connection)."""
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(
            host="127.0.0.1",
            port=self.members[index].port,
            directConnection=True,
            serverSelectionTimeoutMS=5000,
            connectTimeoutMS=5000,
            socketTimeoutMS=30000,
        )
        try:
            return dict(client.admin.command(name, argument, **fields))
        finally:
            client.close()

    def state(self, index: int) -> str | None:
        """Member ``index``'s own view: PRIMARY, SECONDARY, ... (None when it is down)."""
        if not self.members[index].running:
            return None
        try:
            hello = self.command(index, "hello")
        except Exception:  # down or unreachable: no state to tell
            return None
        if hello.get("isWritablePrimary"):
            return "PRIMARY"
        if hello.get("secondary"):
            return "SECONDARY"
        return "OTHER"

    def primary(self) -> int | None:
        """The index of the member that is primary now, or None."""
        for index in range(len(self.members)):
            if self.state(index) == "PRIMARY":
                return index
        return None

    def wait_for_primary(self, *, besides: int | None = None, timeout: float = 60.0) -> int:
        """Wait until a member other than ``besides`` is primary; return its index."""

        def new_primary() -> int | None:
            found = self.primary()
            return found if found != besides else None

        found = wait_until(new_primary, timeout=timeout, interval=0.1)
        if found is None:
            raise MongodError(f"replica set {self.name}: no new primary within {timeout:g} s")
        return found

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Wait until one member is primary and every other one secondary."""

        def healthy() -> bool:
            states = [self.state(i) for i in range(len(self.members))]
            return states.count("PRIMARY") == 1 and states.count("SECONDARY") == len(states) - 1

        if not wait_until(healthy, timeout=timeout, interval=0.1):
            raise MongodError(f"replica set {self.name} not healthy within {timeout:g} s")

    # -- breaking ----------------------------------------------------------------------

    def kill(self, index: int) -> None:
        """SIGKILL member ``index`` (kill -9): no step-down, no shutdown."""
        self.members[index].kill_now()

    def restart(self, index: int) -> None:
        """Start member ``index`` again on its data; it rejoins the set."""
        self.members[index].restart()

    def step_down(self, index: int, seconds: int = 10) -> None:
        """Ask primary ``index`` to step down (and not stand again for ``seconds``)."""
        from pymongo.errors import AutoReconnect

        with contextlib.suppress(AutoReconnect):  # older servers drop the connection
            self.command(
                index,
                "replSetStepDown",
                seconds,
                secondaryCatchUpPeriodSecs=max(0, min(5, seconds - 1)),
            )

    def isolate(self, index: int) -> None:
        """Stop every other member from replicating from member ``index`` (the
        ``stopReplProducer`` fail point on each of them): what only it receives from now
        on is never majority-committed, and is rolled back once another member leads."""
        for other in range(len(self.members)):
            if other != index and self.members[other].running:
                self.command(other, "configureFailPoint", "stopReplProducer", mode="alwaysOn")

    def reconnect(self) -> None:
        """Turn the ``stopReplProducer`` fail point off on every running member."""
        for index, member in enumerate(self.members):
            if member.running:
                self.command(index, "configureFailPoint", "stopReplProducer", mode="off")
