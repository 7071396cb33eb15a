"""Benchmark: the workflow runner's overhead per task, against calling the functions and
against submitting them to Dask by hand.

``--tasks`` independent no-op operations (1,000 by default) run four ways:

* **direct**: the functions called one after the other in this process (the floor);
* **bare dask**: ``client.submit(func, pure=False)`` once per task on a local cluster,
  then ``client.gather`` (what Dask costs without any bookkeeping);
* **runner thread**: ``WorkflowRunner`` on a ``ThreadExecutor``;
* **runner dask**: ``WorkflowRunner`` on a ``DaskExecutor`` using the same cluster.

The runner lanes run on a MongoDB server; every command sent to it is counted with a
pymongo ``CommandListener``, so the table shows database round trips per task (the design
goal: at most 2 of bookkeeping per task — a task's start and its end — plus a few per
execution). The goal for time is that the runner on Dask stays within 1.5x of bare Dask.

Run it with ``make bench`` or ``python bench/bench_workflows.py [--tasks N] [--workers N]``.
A throw-away ``mongod`` is started unless ``DATACATALOG_TEST_MONGODB_URI`` names a server;
the benchmark's database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import dask
from command_counter import CommandCounter
from distributed import Client, LocalCluster
from pymongo import MongoClient

from datacatalog.catalog import Catalog
from datacatalog.orchestrator.decorators import operation, workflow
from datacatalog.orchestrator.executors import DaskExecutor, ThreadExecutor
from datacatalog.orchestrator.workflow_runner import WorkflowRunner
from datacatalog.settings import Settings
from datacatalog.store import connect
from datacatalog.testing.mongod import URI_ENV, MongodServer

DEFAULT_TASKS = 1000
SECRET = "bench-secret-" + "0" * 32


def nothing(ctx: Any) -> None:
    """The work of one task: none."""


noop = operation(nothing)


@workflow
def fan_out(ctx: Any, graph: Any, count: int) -> None:
    for number in range(count):
        graph.add(noop, name=f"noop{number}")


@contextmanager
def server_uri() -> Iterator[tuple[str, str]]:
    """The server to measure: the one in the environment, or a throw-away mongod."""
    given = os.environ.get(URI_ENV)
    if given:
        yield given, URI_ENV
        return
    with MongodServer() as server:
        yield server.uri, "throw-away mongod"


def new_job(catalog: Catalog) -> str:
    pipeline, _ = catalog.pipelines.register(
        {"id": "bench.workflows", "components": [{"image": "noop:1"}]}
    )
    catalog.metadata.load([{"experiment_design_id": "bench.design"}])
    plan = catalog.jobs.plan(
        pipeline=pipeline.uuid,
        metadata={"experiment_design_id": "bench.design"},
        data={"run": uuid.uuid4().hex},
    )
    return catalog.jobs.create(plan)[0].uuid


def run_lane(
    catalog: Catalog, listener: CommandCounter, executor: Any, tasks: int
) -> tuple[float, int]:
    """Seconds and round trips of one execution of ``tasks`` no-ops (construction included)."""
    job = new_job(catalog)
    before = listener.total
    start = time.perf_counter()
    runner = WorkflowRunner(
        catalog, None, None, service_id=job, workflow_name=fan_out, inputs={"count": tasks},
        executor=executor, task_retry_interval=0,
    )  # fmt: skip
    execution = runner.execute()
    elapsed = time.perf_counter() - start
    assert execution.status == "succeeded", execution
    return elapsed, listener.total - before


@dataclass
class Lanes:
    """Seconds per round of each lane, and the runner lanes' round trips per task."""

    tasks: int
    workers: int
    direct: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    thread: list[float] = field(default_factory=list)
    dask: list[float] = field(default_factory=list)
    thread_trips: list[float] = field(default_factory=list)
    dask_trips: list[float] = field(default_factory=list)

    def dask_ratios(self) -> list[float]:
        """Per-round time of the runner on Dask over bare Dask."""
        return [d / b for d, b in zip(self.dask, self.bare, strict=True)]


def measure(uri: str, tasks: int, *, workers: int = 2, repeats: int = 1) -> Lanes:
    """The four lanes, ``repeats`` interleaved rounds, on one local cluster."""
    lanes = Lanes(tasks, workers)
    listener = CommandCounter()
    with tempfile.TemporaryDirectory() as data_dir:
        mongo: MongoClient[dict[str, Any]] = MongoClient(uri, event_listeners=[listener])
        store = connect(mongo[f"bench_workflows_{uuid.uuid4().hex[:8]}"])
        catalog = Catalog(
            store, settings=Settings.load(env={}, data_dir=Path(data_dir), secret=SECRET)
        )
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None,
            )  # fmt: skip
        client = Client(cluster, set_as_default=False)
        try:
            client.gather([client.submit(nothing, None, pure=False) for _ in range(10)])  # warm
            for _round in range(repeats):
                start = time.perf_counter()
                for _ in range(tasks):
                    nothing(None)
                lanes.direct.append(time.perf_counter() - start)
                start = time.perf_counter()
                client.gather([client.submit(nothing, None, pure=False) for _ in range(tasks)])
                lanes.bare.append(time.perf_counter() - start)
                seconds, trips = run_lane(catalog, listener, ThreadExecutor(workers), tasks)
                lanes.thread.append(seconds)
                lanes.thread_trips.append(trips / tasks)
                seconds, trips = run_lane(catalog, listener, DaskExecutor(client=client), tasks)
                lanes.dask.append(seconds)
                lanes.dask_trips.append(trips / tasks)
        finally:
            client.close()
            cluster.close()
            store.drop_database()
            mongo.close()
    return lanes


def table(lanes: Lanes, where: str) -> str:
    """The printed result (medians over the rounds)."""
    tasks = lanes.tasks
    rows = [
        ("direct call", median(lanes.direct), None),
        ("bare dask submit", median(lanes.bare), None),
        ("runner thread", median(lanes.thread), median(lanes.thread_trips)),
        ("runner dask", median(lanes.dask), median(lanes.dask_trips)),
    ]
    direct, bare = median(lanes.direct), median(lanes.bare)
    header = ("lane", "total s", "ms/task", "vs direct", "vs dask", "trips/task")
    lines = [
        f"{tasks} no-op tasks, {lanes.workers} workers, {len(lanes.bare)} round(s), "
        f"MongoDB: {where}",
        f"{header[0]:<18} "
        + " ".join(f"{h:>{w}}" for h, w in zip(header[1:], (9, 9, 10, 8, 11), strict=True)),
    ]
    for name, seconds, trips in rows:
        per_task = seconds / tasks * 1000
        lines.append(
            f"{name:<18} {seconds:>9.3f} {per_task:>9.3f} {seconds / direct:>9.0f}x "
            f"{seconds / bare:>7.2f}x {(f'{trips:.3f}' if trips is not None else '-'):>11}"
        )
    lines.append(
        f"runner dask / bare dask = {median(lanes.dask_ratios()):.2f}x (goal <= 1.5x); "
        f"round trips per task: thread {median(lanes.thread_trips):.3f}, "
        f"dask {median(lanes.dask_trips):.3f} (goal <= 2, plus a few per execution)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS)
    parser.add_argument("--workers", type=int, default=2, help="Dask workers and threads")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds")
    args = parser.parse_args()
    with server_uri() as (uri, where):
        lanes = measure(uri, args.tasks, workers=args.workers, repeats=args.repeats)
    print(table(lanes, where))


if __name__ == "__main__":
    main()
