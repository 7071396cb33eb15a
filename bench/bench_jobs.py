"""Benchmark: creating jobs through the API against a bare ``insert_one`` loop.

In ``--repeats`` interleaved rounds of ``--jobs`` each, on a real MongoDB:

* **API**: ``JobService.plan`` + ``JobService.create`` (identity, checks, archive path,
  the compiled schema validation, one atomic insert-if-absent);
* **bare**: ``insert_one`` of a job document of the same shape (a copy of one the API
  made, with a fresh ``uuid`` and archive path) into a collection with the same unique
  indexes.

It prints jobs/s of both, the ratio API/bare and the API's round trips per job.

The server is the one named by ``DATACATALOG_TEST_MONGODB_URI``; otherwise a throw-away
``mongod`` is started. Usage::

    python bench/bench_jobs.py [--jobs 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from command_counter import CommandCounter
from pymongo import MongoClient

from datacatalog.catalog import Catalog
from datacatalog.settings import Settings
from datacatalog.store import connect
from datacatalog.testing.mongod import URI_ENV, MongodServer


@dataclass
class Result:
    """Jobs/s of both paths per round, and the API's commands."""

    jobs: int
    api: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    commands: Counter[str] = field(default_factory=Counter)

    def ratios(self) -> list[float]:
        """Per-round API/bare."""
        return [a / b for a, b in zip(self.api, self.bare, strict=True)]

    def round_trips(self) -> float:
        """Commands the API sent per job."""
        return sum(self.commands.values()) / (self.jobs * len(self.api))


def measure(uri: str, jobs: int, repeats: int) -> Result:
    """Both paths, ``repeats`` interleaved rounds of ``jobs`` jobs."""
    counter = CommandCounter(active=False)
    client: MongoClient[dict[str, Any]] = MongoClient(uri, event_listeners=[counter])
    # The same instrumentation on both clients: a listener costs a little per command.
    bare_client: MongoClient[dict[str, Any]] = MongoClient(
        uri, event_listeners=[CommandCounter(active=False)]
    )
    database = client[f"bench_jobs_{uuid.uuid4().hex[:10]}"]
    result = Result(jobs)
    try:
        with tempfile.TemporaryDirectory() as work:
            settings = Settings.load(env={}, data_dir=Path(work), secret="j" * 40)
            catalog = Catalog(connect(database), settings=settings)
            pipeline, _ = catalog.pipelines.register(
                {"id": "bench.jobs", "components": [{"image": "bench:1"}]}
            )
            catalog.metadata.load([{"experiment_design_id": "bench.jobs"}])

            def plan(tag: str) -> Any:
                return catalog.jobs.plan(
                    pipeline=pipeline.uuid,
                    metadata={"experiment_design_id": "bench.jobs"},
                    data={"bench": tag},
                )

            template, _ = catalog.jobs.create(plan("template"), setup_archive_path=False)
            document = database["jobs"].find_one({"uuid": template.uuid}, {"_id": 0})
            assert document is not None
            bare = bare_client[database.name]["bare_jobs"]
            bare.create_index("uuid", unique=True)
            bare.create_index([("archive_system", 1), ("archive_path", 1)], unique=True)
            for round_number in range(repeats):
                counter.active = True
                started = time.perf_counter()
                for i in range(jobs):
                    catalog.jobs.create(plan(f"{round_number}-{i}"), setup_archive_path=False)
                result.api.append(jobs / (time.perf_counter() - started))
                counter.active = False
                result.commands.update(counter.counts)
                counter.counts.clear()

                started = time.perf_counter()
                for i in range(jobs):
                    tag = f"{round_number}-{i}"
                    bare.insert_one(
                        {**document, "uuid": f"{tag}-{uuid.uuid4()}", "archive_path": f"/b/{tag}"}
                    )
                result.bare.append(jobs / (time.perf_counter() - started))
    finally:
        client.drop_database(database.name)
        client.close()
        bare_client.close()
    return result


def table(result: Result) -> str:
    """The printed result."""
    return "\n".join(
        [
            f"{result.jobs} jobs per round, {len(result.api)} rounds",
            f"API create: {median(result.api):.0f} jobs/s "
            f"({min(result.api):.0f}-{max(result.api):.0f})",
            f"bare insert_one: {median(result.bare):.0f} jobs/s "
            f"({min(result.bare):.0f}-{max(result.bare):.0f})",
            f"ratio API/bare: {median(result.ratios()):.2f}; "
            f"API round trips per job: {result.round_trips():.2f} "
            f"({dict(sorted(result.commands.items()))})",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.repeats < 1:
        parser.error("--jobs and --repeats must be positive")
    given = os.environ.get(URI_ENV)
    if given:
        result = measure(given, args.jobs, args.repeats)
    else:
        with MongodServer() as server:
            result = measure(server.uri, args.jobs, args.repeats)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
