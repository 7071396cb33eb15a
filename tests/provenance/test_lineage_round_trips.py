"""The lineage graph's database round trips depend on the depth, not on the catalog's size.

On the real server every command the store sends is counted by a pymongo command
listener on the client handed to the store; on the in-memory engine the walk's own
count is used. Two synthetic catalogs of different sizes must give equal counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymongo import MongoClient, monitoring

from datacatalog import provenance
from datacatalog.store import Store, connect
from datacatalog.testing.lineage import CHAIN, generate

SIZES = (2 * CHAIN, 10 * CHAIN)
DEPTHS = (1, 5, 10)
QUERIES = ("find", "aggregate", "getMore")


class Counter(monitoring.CommandListener):
    """Counts the read commands a client sends."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in QUERIES:
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


def _walks(store: Store, jobs: int) -> list[tuple[str, int, int, int]]:
    """(direction, depth, nodes, round trips) of walks from a chain's middle file."""
    meta = generate(store, jobs=jobs, files_per_job=3)
    middle = meta.file(meta.chains // 2, CHAIN // 2)
    found = []
    for direction in ("up", "down", "both"):
        for depth in DEPTHS:
            result = provenance.graph(store, middle, direction=direction, depth=depth)
            found.append((direction, depth, len(result.nodes), result.round_trips))
    return found


def test_round_trips_do_not_grow_with_the_catalog_memory(database_name: str) -> None:
    counts = []
    for number, jobs in enumerate(SIZES):
        store = connect("mongomock://", database=f"{database_name}_{number}")
        try:
            counts.append(_walks(store, jobs))
        finally:
            store.close()
    assert counts[0] == counts[1]
    # Bounded by the depth: at most one query per collection and level.
    for _direction, depth, _nodes, trips in counts[0]:
        assert trips <= 1 + 2 * 8 * depth


@pytest.fixture
def counted(mongo_uri: str, database_name: str) -> Iterator[tuple[MongoClient[dict], Counter]]:
    counter = Counter()
    client: MongoClient[dict] = MongoClient(mongo_uri, event_listeners=[counter])
    try:
        yield client, counter
    finally:
        for number in range(len(SIZES)):
            client.drop_database(f"{database_name}_{number}")
        client.close()


def test_round_trips_do_not_grow_with_the_catalog_mongod(
    counted: tuple[MongoClient[dict], Counter], database_name: str
) -> None:
    client, counter = counted
    per_size = []
    for number, jobs in enumerate(SIZES):
        store = connect(client[f"{database_name}_{number}"])
        meta = generate(store, jobs=jobs, files_per_job=3)
        middle = meta.file(meta.chains // 2, CHAIN // 2)
        provenance.graph(store, middle, direction="both", depth=1)  # indexes are made once
        seen = []
        for direction in ("up", "down", "both"):
            for depth in DEPTHS:
                before = counter.count
                result = provenance.graph(store, middle, direction=direction, depth=depth)
                sent = counter.count - before
                assert sent == result.round_trips  # the walk's own count is the truth
                seen.append((direction, depth, len(result.nodes), sent))
        per_size.append(seen)
    assert per_size[0] == per_size[1]
    by_depth = {(d, n): trips for d, n, _nodes, trips in per_size[0]}
    assert by_depth[("up", 1)] < by_depth[("up", 5)] <= by_depth[("up", 10)]
