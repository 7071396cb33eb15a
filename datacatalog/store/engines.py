"""Engines: what differs between a MongoDB server, the in-memory engine and the embedded
catalog, as the store sees it.

The store's code is the same on every engine; an engine gives it a :class:`Backend`: a
database (pymongo's, or the in-memory engine's look-alike), a bracket around each
operation (the embedded catalog locks and persists there; the in-memory engine runs one
operation at a time) and whether the database has a clock of its own
(:data:`SERVER_NOW`; the in-memory engine has none, so the store puts the process clock in
its place with :func:`with_now`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pymongo.database import Database

from datacatalog.store.documents import Document

# In an update pipeline or an ``$expr``: the database server's clock (see Store.update_pipeline).
SERVER_NOW = "$$NOW"


class Backend(Protocol):
    """What an engine provides to the store."""

    database: Database[Document]
    description: str
    # False on the in-memory engine, which has no server clock to evaluate ``$$NOW`` with.
    evaluates_now: bool

    def operation(self, *, write: bool) -> AbstractContextManager[object]:
        """Bracket one store operation (the embedded engine locks and persists here)."""

    def close(self) -> None:
        """Release the engine's resources."""


@dataclass
class DatabaseBackend:
    """A backend over a pymongo (or in-memory engine) database.

    A server makes each operation atomic, so there is nothing to bracket. The in-memory
    engine is not safe for threads (two increments of one field can both read the old
    value), so it is given ``serialized=True``: one operation at a time, as a server would
    appear to run them.
    """

    database: Database[Document]
    description: str
    owns_client: bool = False
    serialized: bool = False
    evaluates_now: bool = True
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def operation(self, *, write: bool) -> AbstractContextManager[object]:
        """Bracket one operation: nothing on a server, a lock on the in-memory engine."""
        return self._lock if self.serialized else nullcontext()

    def close(self) -> None:
        """Close the client if this backend created it."""
        if self.owns_client:
            self.database.client.close()


def with_now(value: Any, now: datetime) -> Any:
    """``value`` with every :data:`SERVER_NOW` replaced by ``now`` (for the in-memory engine)."""
    if isinstance(value, str):
        return now if value == SERVER_NOW else value
    if isinstance(value, Mapping):
        if "$literal" in value:
            return dict(value)
        return {k: with_now(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [with_now(v, now) for v in value]
    return value
