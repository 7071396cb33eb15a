"""Benchmark: the stage driver's overhead around a no-op execute, against events by hand.

Two lanes on the same MongoDB server drive the same number of fresh jobs from CREATED
to FINISHED:

* **by hand**: ``catalog.jobs.send(job, "run")`` then ``send(job, "finish")``, the least
  a pipeline can do (no lease, no protection against a second runner);
* **driver**: ``Driver(job, catalog=..., execute=no-op)``, ``start()``,
  ``wait_for_completion()``: it reads the job (the pipeline comes from the registry's
  cache), takes the lease and posts run in one write, runs the callback on a worker
  thread, and posts finish and releases the lease in one write.

The lanes run in interleaved blocks so both see the same server conditions. Every
command each lane's client sends is counted by a pymongo ``CommandListener``, so the
table shows database round trips per life-cycle next to the milliseconds.

Run it with ``make bench`` or ``python bench/bench_driver.py [--lifecycles N]``. A
throw-away ``mongod`` is started unless ``DATACATALOG_TEST_MONGODB_URI`` names a server;
the benchmark's database is dropped at the end either way.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from command_counter import CommandCounter
from pymongo import MongoClient

from datacatalog.catalog import Catalog
from datacatalog.driver import Driver, Payload
from datacatalog.jobs import Job
from datacatalog.settings import Settings
from datacatalog.store import connect
from datacatalog.testing.mongod import URI_ENV, MongodServer

DEFAULT_LIFECYCLES = 300
DEFAULT_BLOCK = 25
SECRET = "bench-secret-" + "0" * 32


@dataclass
class Lane:
    """One lane: its catalog (on a counted client) and its measurements."""

    name: str
    catalog: Catalog
    listener: CommandCounter
    drive: Callable[[Catalog, Job], str]
    jobs: list[Job] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    commands: Counter[str] = field(default_factory=Counter)
    finished: int = 0

    def run_block(self, block: list[Job]) -> None:
        before = Counter(self.listener.counts)
        for job in block:
            start = time.perf_counter()
            state = self.drive(self.catalog, job)
            self.durations.append(time.perf_counter() - start)
            self.finished += state == "FINISHED"
        self.commands += self.listener.counts - before


def by_hand(catalog: Catalog, job: Job) -> str:
    catalog.jobs.send(job.uuid, "run")
    return catalog.jobs.send(job.uuid, "finish").job.state


def noop(driver: Driver, payload: Payload) -> None:
    return None


def with_driver(catalog: Catalog, job: Job) -> str:
    driver = Driver(job.uuid, catalog=catalog, execute=noop)
    driver.start()
    return driver.wait_for_completion().state


@contextmanager
def server_uri() -> Iterator[tuple[str, str]]:
    """The server to measure: the one in the environment, or a throw-away mongod."""
    given = os.environ.get(URI_ENV)
    if given:
        yield given, URI_ENV
        return
    with MongodServer() as server:
        yield server.uri, "throw-away mongod"


def run(uri: str, lifecycles: int, block: int, data_dir: Path) -> list[Lane]:
    """Measure both lanes; return them."""
    database = f"bench_driver_{uuid.uuid4().hex[:10]}"
    settings = Settings.load(env={}, data_dir=data_dir, secret=SECRET)
    clients: list[MongoClient[dict[str, Any]]] = []
    lanes: list[Lane] = []
    try:
        for name, drive in (("events by hand", by_hand), ("Driver", with_driver)):
            listener = CommandCounter()
            client: MongoClient[dict[str, Any]] = MongoClient(
                uri, tz_aware=True, event_listeners=[listener]
            )
            clients.append(client)
            catalog = Catalog(connect(client[database]), settings=settings)
            lanes.append(Lane(name, catalog, listener, drive))
        setup = lanes[0].catalog
        pipeline, _ = setup.pipelines.register(
            {"id": "bench.driver", "components": [{"image": "bench:1"}]}
        )
        setup.metadata.load([{"experiment_design_id": "bench.design"}])
        for lane_number, lane in enumerate(lanes):
            for n in range(lifecycles):
                plan = setup.jobs.plan(
                    pipeline=pipeline.uuid,
                    metadata={"experiment_design_id": "bench.design"},
                    data={"lane": lane_number, "n": n},
                )
                lane.jobs.append(setup.jobs.create(plan, setup_archive_path=False)[0])
            # Every collection's indexes are created before timing starts.
            lane.catalog.jobs.get(lane.jobs[0].uuid)
            lane.catalog.pipelines.get(pipeline.uuid)
        for start in range(0, lifecycles, block):
            for lane in lanes:
                lane.run_block(lane.jobs[start : start + block])
        return lanes
    finally:
        if clients:
            clients[0].drop_database(database)
        for client in clients:
            client.close()


def report(lanes: list[Lane], where: str, lifecycles: int) -> None:
    baseline = lanes[0]
    print(f"stage driver overhead on {where}: {lifecycles} life-cycles per lane, no-op execute")
    print()
    header = (
        f"{'lane':<16} {'ms/life-cycle':>14} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'round trips':>12} {'vs by hand':>11}"
    )
    print(header)
    print("-" * len(header))
    base_ms = statistics.fmean(baseline.durations) * 1000
    for lane in lanes:
        ms = [d * 1000 for d in lane.durations]
        mean = statistics.fmean(ms)
        p95 = statistics.quantiles(ms, n=20)[-1] if len(ms) >= 20 else max(ms)
        trips = sum(lane.commands.values()) / len(ms)
        print(
            f"{lane.name:<16} {mean:>14.2f} {statistics.median(ms):>8.2f} {p95:>8.2f} "
            f"{trips:>12.1f} {mean / base_ms:>10.2f}x"
        )
    print()
    for lane in lanes:
        per = {k: round(v / len(lane.durations), 2) for k, v in sorted(lane.commands.items())}
        print(f"{lane.name}: commands per life-cycle {per}; FINISHED {lane.finished}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifecycles", type=int, default=DEFAULT_LIFECYCLES)
    parser.add_argument("--block", type=int, default=DEFAULT_BLOCK)
    args = parser.parse_args(argv)
    if args.lifecycles < 1 or args.block < 1:
        parser.error("--lifecycles and --block must be positive")
    with tempfile.TemporaryDirectory() as tmp, server_uri() as (uri, where):
        lanes = run(uri, args.lifecycles, args.block, Path(tmp))
    report(lanes, where, args.lifecycles)
    return 0 if all(lane.finished == args.lifecycles for lane in lanes) else 1


if __name__ == "__main__":
    sys.exit(main())
