"""Benchmark: the dashboard's jobs page on a large catalog, keyset paging against skip.

A catalog of ``--jobs`` jobs (100,000 by default: 3 pipelines, 200 samples, states
spread over the table) is written straight into a MongoDB database, then each scenario
reads one page of 50 jobs, at the first page and deep in the listing (past
``--depth`` jobs), in three ways measured in the same run:

* **keyset**: the dashboard's query (:func:`datacatalog.service.ui.queries.job_page`):
  the rows after a cursor, through the sort order's index; page extras (labels, file
  counts) included;
* **skip**: the same filter and sort with ``skip`` (the listing of
  :meth:`JobService.find`), which walks every row before the page;
* **count**: counting the filter's matches, which a page showing "page N of M" would
  add to every request (the dashboard never does).

Plus the whole page (query and HTML) through the service's ASGI app. Each timing is the
median of ``--repeat`` interleaved runs. The table also shows how many documents the
server examined for the keyset and skip queries (``explain``), which is what grows.

Run it with ``make bench`` or ``python bench/bench_dashboard.py [--jobs N]``. A throw-away
``mongod`` is started unless ``DATACATALOG_TEST_MONGODB_URI`` names a server; the
benchmark's database is dropped at the end either way.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from datacatalog import states
from datacatalog.catalog import Catalog
from datacatalog.identifiers import typed_uuid
from datacatalog.service import create_app
from datacatalog.service.ui import queries
from datacatalog.service.ui.paging import Cursor
from datacatalog.service.ui.paging import after as after_query
from datacatalog.settings import Settings
from datacatalog.store import connect
from datacatalog.testing.mongod import URI_ENV, MongodServer

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

DEFAULT_JOBS = 100_000
DEFAULT_DEPTH = 50_000
DEFAULT_REPEAT = 5
PAGE = 50
PIPELINES = 3
SAMPLES = 200
SECRET = "bench-secret-" + "0" * 32


@contextmanager
def server_uri() -> Iterator[str]:
    given = os.environ.get(URI_ENV)
    if given:
        yield given
        return
    server = MongodServer()
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


def fill(uri: str, database: str, count: int) -> None:
    """Write ``count`` jobs (and their pipelines and samples) with pymongo, in batches."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    db = client[database]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    pipelines = [typed_uuid(f"bench-{i}:[]", "pipeline") for i in range(PIPELINES)]
    db.pipelines.insert_many(
        {
            "uuid": p,
            "id": f"bench.{i}",
            "name": f"bench.{i}",
            "components": [],
            "processing_levels": ["1"],
            "_visible": True,
            "_properties": {"created_date": start, "modified_date": start, "revision": 0},
        }
        for i, p in enumerate(pipelines)
    )
    samples = [typed_uuid(f"sample.bench.{i}", "sample") for i in range(SAMPLES)]
    db.samples.insert_many(
        {
            "uuid": s,
            "sample_id": f"sample.bench.{i}",
            "child_of": [],
            "_properties": {"created_date": start, "modified_date": start, "revision": 0},
        }
        for i, s in enumerate(samples)
    )
    batch: list[dict[str, Any]] = []
    for i in range(count):
        created = start + timedelta(seconds=i // 3)  # ties on purpose: uuid breaks them
        state = states.STATES[i % 7]
        batch.append(
            {
                "uuid": typed_uuid(f"bench-job-{i}", "pipelinejob"),
                "pipeline_uuid": pipelines[i % PIPELINES],
                "state": state,
                "last_event": "create",
                "data": {"i": i},
                "agent": f"agent.{i % 5}",
                "task": f"task {i}",
                "archive_path": f"/products/v2/bench/{i}",
                "archive_system": "local",
                "child_of": [samples[i % SAMPLES]],
                "generated_by": [pipelines[i % PIPELINES]],
                "acted_on": [],
                "acted_using": [],
                "_visible": True,
                "_properties": {
                    "created_date": created,
                    "modified_date": created + timedelta(seconds=i % 97),
                    "revision": 1,
                    "history_bytes": 600,
                },
            }
        )
        if len(batch) == 10_000:
            db.jobs.insert_many(batch, ordered=False)
            batch = []
    if batch:
        db.jobs.insert_many(batch, ordered=False)
    client.close()


def median_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def examined(db: Any, query: dict[str, Any], sort: list[tuple[str, int]], skip: int) -> int:
    plan = db.command(
        "explain",
        {"find": "jobs", "filter": query, "sort": dict(sort), "skip": skip, "limit": PAGE + 1},
        verbosity="executionStats",
    )
    return int(plan["executionStats"]["totalDocsExamined"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument("--depth", type=int, default=DEFAULT_DEPTH)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    args = parser.parse_args(argv)
    depth = min(args.depth, args.jobs - PAGE - 1)
    database = f"bench_dashboard_{uuid.uuid4().hex[:8]}"
    with server_uri() as uri, tempfile.TemporaryDirectory() as scratch:
        began = time.perf_counter()
        fill(uri, database, args.jobs)
        print(f"wrote {args.jobs} jobs in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        store = connect(uri, database=database)
        settings = Settings.load(env={}, data_dir=Path(scratch), secret=SECRET)
        catalog = Catalog(store, settings=settings)
        raw: MongoClient[dict[str, Any]] = MongoClient(uri)
        try:
            store.find("job", {}, limit=1)  # creates the indexes
            client = TestClient(create_app(catalog))
            scenarios = [
                ("all jobs, newest first", {}),
                ("state RUNNING", {"state": "RUNNING"}),
                ("pipeline bench.1", {"pipeline": "bench.1"}),
                ("sorted by modified", {"sort": "modified"}),
                ("sorted by state", {"sort": "state"}),
            ]
            rows = []
            for name, params in scenarios:
                query = queries.JobQuery.from_params(params)
                keys = list(query.keys())
                condition = queries.job_filter(store, query)
                deep_skip = min(depth, max(0, store.count("job", condition) - PAGE - 1))
                at = store.find(
                    "job", condition, sort=keys, skip=deep_skip - 1, limit=1,
                    projection={"uuid": 1, "state": 1, "_properties": 1},
                )  # fmt: skip
                cursor = Cursor.of(at[0], keys).encode()
                for where, skip, after in (("first", 0, None), ("deep", deep_skip, cursor)):
                    keyset = median_ms(
                        lambda a=after, q=query: queries.job_page(store, q, after_cursor=a),
                        args.repeat,
                    )
                    skipped = median_ms(
                        lambda s=skip, c=condition, k=keys: store.find(
                            "job", c, sort=k, skip=s, limit=PAGE + 1,
                            projection={"history": 0},
                        ),
                        args.repeat,
                    )  # fmt: skip
                    counted = median_ms(lambda c=condition: store.count("job", c), args.repeat)
                    page_params = {**query.params(), **({"after": after} if after else {})}
                    page = median_ms(
                        lambda p=page_params: client.get("/ui/", params=p), args.repeat
                    )
                    keyset_filter = condition
                    if after:
                        position = Cursor.decode(after, keys=keys, where="after")
                        keyset_filter = after_query(position, keys, within=condition)
                    db = raw[database]
                    rows.append(
                        (
                            f"{name} ({where}, past {skip})" if skip else f"{name} ({where})",
                            keyset,
                            skipped,
                            counted,
                            page,
                            examined(db, keyset_filter, keys, 0),
                            examined(db, condition, keys, skip),
                        )
                    )
            print(f"\njobs page of {PAGE} rows, {args.jobs} jobs, median of {args.repeat}:\n")
            header = (
                f"{'scenario':44} {'keyset ms':>10} {'skip ms':>9} {'count ms':>9} "
                f"{'page ms':>8} {'keyset docs':>12} {'skip docs':>10}"
            )
            print(header)
            print("-" * len(header))
            for name, keyset, skipped, counted, page, docs_k, docs_s in rows:
                print(
                    f"{name:44} {keyset:10.1f} {skipped:9.1f} {counted:9.1f} {page:8.1f} "
                    f"{docs_k:12d} {docs_s:10d}"
                )
            print(
                "\nkeyset: the dashboard's query (page extras included); skip: the same page "
                "by skipping;\ncount: counting the matches (never done per page); page: the "
                "whole HTML page; docs: documents the server examined"
            )
        finally:
            raw.drop_database(database)
            raw.close()
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
