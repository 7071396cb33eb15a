"""Benchmark: lineage graph latency and round trips against the catalog's size.

For each size (1,000, 10,000 and 100,000 jobs by default, 10 files each) a synthetic
catalog (``datacatalog.testing.lineage``: chains of 12 jobs) is written with the
driver's bulk inserts into a database of its own on a real MongoDB server. Then walks
of depth 10 are timed from a chain in the middle of the catalog: upstream from the
last file of the chain, downstream from its first. The baseline is the smallest
catalog, measured in the same run: the goal is a latency at the largest size within
1.5x of the baseline, and round trips (counted by a pymongo ``CommandListener``) that
do not change with the size.

The server is the one named by ``DATACATALOG_TEST_MONGODB_URI``; otherwise a throw-away
``mongod`` is started (``datacatalog.testing.mongod``). Usage::

    python bench/bench_lineage.py [--sizes 1000,10000,100000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

from command_counter import CommandCounter
from pymongo import MongoClient

from datacatalog import provenance
from datacatalog.store import connect
from datacatalog.store.core import COLLECTIONS
from datacatalog.testing.lineage import CHAIN, documents

URI_ENV = "DATACATALOG_TEST_MONGODB_URI"
QUERIES = ("find", "aggregate", "getMore")


def _batches(docs: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _server(stack: ExitStack) -> str:
    uri = os.environ.get(URI_ENV)
    if uri:
        return uri
    from datacatalog.testing.mongod import MongodServer

    server = MongodServer()
    server.start()
    stack.callback(server.stop)
    return server.uri


def measure(
    client: MongoClient[dict[str, Any]], counter: CommandCounter, jobs: int, repeat: int
) -> dict[str, Any]:
    """Write one catalog, time the walks, drop it."""
    name = f"bench_lineage_{jobs}_{uuid.uuid4().hex[:8]}"
    database = client[name]
    try:
        started = time.perf_counter()
        meta, kinds = documents(jobs, files_per_job=10)
        written = 0
        for kind, docs in kinds:
            for batch in _batches(docs, 10_000):
                database[COLLECTIONS[kind]].insert_many(batch, ordered=False)
                written += len(batch)
        store = connect(database)
        chain = meta.chains // 2
        roots = {"up": meta.file(chain, CHAIN - 1), "down": meta.file(chain, 0)}
        for direction, root in roots.items():  # creates the indexes, warms the cache
            provenance.graph(store, root, direction=direction, depth=10)
        load = time.perf_counter() - started
        row: dict[str, Any] = {"jobs": meta.jobs, "documents": written, "load_s": load}
        for direction, root in roots.items():
            times = []
            before = counter.total
            for _ in range(repeat):
                tick = time.perf_counter()
                result = provenance.graph(store, root, direction=direction, depth=10)
                times.append(time.perf_counter() - tick)
            row[f"{direction}_ms"] = statistics.median(times) * 1000
            row[f"{direction}_trips"] = (counter.total - before) / repeat
            row[f"{direction}_nodes"] = len(result.nodes)
        return row
    finally:
        client.drop_database(name)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="job counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=30, help="walks timed per direction")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows = []
    with ExitStack() as stack:
        counter = CommandCounter(QUERIES)
        client: MongoClient[dict[str, Any]] = MongoClient(_server(stack), event_listeners=[counter])
        stack.callback(client.close)
        for jobs in sizes:
            rows.append(measure(client, counter, jobs, args.repeat))
            print(f"measured {rows[-1]['jobs']} jobs", file=sys.stderr)
    base = rows[0]
    header = (
        f"{'jobs':>8} {'documents':>10} {'load s':>7} | {'up ms':>7} {'x base':>6} "
        f"{'trips':>5} {'nodes':>5} | {'down ms':>7} {'x base':>6} {'trips':>5} {'nodes':>5}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['jobs']:>8} {row['documents']:>10} {row['load_s']:>7.1f} | "
            f"{row['up_ms']:>7.2f} {row['up_ms'] / base['up_ms']:>6.2f} "
            f"{row['up_trips']:>5.0f} {row['up_nodes']:>5} | "
            f"{row['down_ms']:>7.2f} {row['down_ms'] / base['down_ms']:>6.2f} "
            f"{row['down_trips']:>5.0f} {row['down_nodes']:>5}"
        )
    last = rows[-1]
    ok = (
        last["up_ms"] <= 1.5 * base["up_ms"]
        and last["down_ms"] <= 1.5 * base["down_ms"]
        and len({(r["up_trips"], r["down_trips"]) for r in rows}) == 1
    )
    verdict = "met" if ok else "MISSED"
    print(f"goal (largest within 1.5x of the baseline, equal round trips): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
