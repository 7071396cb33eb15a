"""Document kinds: the collection each kind is stored in, and that collection's indexes.

The store is addressed by kind (``"job"``, ``"file"``, ...), never by raw collection.
Each collection's indexes are created once per client and process, the first time a kind
is used (idempotently: creating an index that exists is a no-op on the server).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from pymongo import IndexModel

from datacatalog.errors import InvalidRequestError

COLLECTIONS: dict[str, str] = {
    "pipeline": "pipelines",
    "job": "jobs",
    "file": "files",
    "reference": "references",
    "experiment_design": "experiment_designs",
    "experiment": "experiments",
    "sample": "samples",
    "measurement": "measurements",
    "audit": "audit",
    "workflow_execution": "workflow_executions",
    "workflow_task": "workflow_tasks",
    "workflow_log": "workflow_logs",
    "plugin": "plugins",
}

# (keys, options) per kind; every kind also gets a unique index on ``uuid``. The link
# fields (child_of, generated_by, acted_on, acted_using, derived_from, derived_using) are
# arrays, so their indexes are multikey: they answer the lineage graph's reverse lookups
# ("what links to these UUIDs?") without a collection scan.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "pipeline": [([("id", 1)], {})],
    "job": [
        ([("state", 1)], {}),
        ([("pipeline_uuid", 1)], {}),
        ([("child_of", 1)], {}),
        ([("generated_by", 1)], {}),
        ([("acted_on", 1)], {}),
        ([("acted_using", 1)], {}),
        ([("agent", 1)], {}),
        ([("_properties.created_date", -1)], {}),
        # The dashboard's keyset paging: each sort order (and the common filters with
        # it) read from one index, ending in uuid, the tie-breaker of every order.
        ([("_properties.created_date", -1), ("uuid", 1)], {}),
        ([("_properties.modified_date", -1), ("uuid", 1)], {}),
        ([("state", 1), ("_properties.created_date", -1), ("uuid", 1)], {}),
        ([("pipeline_uuid", 1), ("_properties.created_date", -1), ("uuid", 1)], {}),
        ([("agent", 1), ("_properties.created_date", -1), ("uuid", 1)], {}),
        ([("archive_system", 1), ("archive_path", 1)], {"unique": True}),
    ],
    "file": [
        ([("generated_by", 1)], {}),
        ([("derived_from", 1)], {}),
        ([("derived_using", 1)], {}),
        ([("storage_system", 1), ("name", 1)], {}),
    ],
    "reference": [([("uri", 1)], {}), ([("name", 1)], {})],
    "experiment_design": [
        ([("experiment_design_id", 1)], {"unique": True}),
        ([("child_of", 1)], {}),
    ],
    "experiment": [([("experiment_id", 1)], {"unique": True}), ([("child_of", 1)], {})],
    "sample": [([("sample_id", 1)], {"unique": True}), ([("child_of", 1)], {})],
    "measurement": [([("measurement_id", 1)], {"unique": True}), ([("child_of", 1)], {})],
    "audit": [([("job_uuid", 1), ("seq", -1)], {}), ([("seq", -1)], {})],
    "workflow_execution": [([("job_uuid", 1), ("status", 1)], {}), ([("created_at", -1)], {})],
    "workflow_task": [([("execution_id", 1), ("name", 1)], {"unique": True})],
    "workflow_log": [([("execution_id", 1), ("seq", 1)], {})],
    "plugin": [([("package_name", 1), ("package_version", 1)], {"unique": True})],
}

# The store's own collection of named counters (see Store.next_sequence); not a kind.
SEQUENCES_COLLECTION = "sequences"


def collection_name(kind: str) -> str:
    """The collection ``kind`` is stored in; an unknown kind is an InvalidRequestError."""
    try:
        return COLLECTIONS[kind]
    except KeyError:
        raise InvalidRequestError(
            f"unknown document kind {kind!r}; known kinds: {', '.join(COLLECTIONS)}"
        ) from None


@dataclass
class _IndexRegistry:
    """Which (database, collection) pairs had their indexes created, per client.

    Clients are told apart by identity, not equality: clients compare equal by
    address, and every in-memory client claims the same one while holding its own
    data and indexes.
    """

    done: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def created(self, client: Any) -> set[tuple[str, str]]:
        """The pairs done on ``client`` (call with :attr:`lock` held)."""
        key = id(client)
        found = self.done.get(key)
        if found is None:
            found = self.done[key] = set()
            # Forget the client when it goes, before its id can be reused.
            weakref.finalize(client, self.done.pop, key, None)
        return found


_INDEXES_CREATED = _IndexRegistry()


def ensure_indexes(database: Any, kind: str, coll: Any) -> None:
    """Create the indexes of ``kind`` on its collection ``coll`` of ``database``, once per
    client."""
    marker = (str(database.name), str(coll.name))
    with _INDEXES_CREATED.lock:
        done = _INDEXES_CREATED.created(database.client)
        if marker in done:
            return
        # One round trip for all of the collection's indexes.
        coll.create_indexes(
            [
                IndexModel([("uuid", 1)], unique=True, name="uuid_unique"),
                *(IndexModel(keys, **options) for keys, options in INDEXES.get(kind, [])),
            ]
        )
        done.add(marker)


def forget_indexes(client: Any, database: str) -> None:
    """Forget the indexes created in ``database`` (dropped): they are created again."""
    with _INDEXES_CREATED.lock:
        done = _INDEXES_CREATED.created(client)
        done.difference_update({d for d in done if d[0] == database})
