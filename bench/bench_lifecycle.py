"""Benchmark: a job's whole life — create, run, one output, finish, index (sha256).

Three lanes on the same MongoDB server, each on its own client with the catalog's
durability (journaled majority writes, majority reads), in interleaved blocks so that
they see the same server conditions:

* **driver**: ``Driver(plan, execute=<write one file>, index_outputs=True)``: the start
  (the job created with its lease and ``run``), the file record, the end (``finish`` +
  ``index`` + ``indexed`` + lease release);
* **bare API**: ``jobs.lifecycle.start(plan.uuid, new=<document>)`` (the job created,
  leased and run in one write), the file written, ``indexing.complete(job, lease)``;
* **by hand**: the driver's writes sent with pymongo and nothing else — one upsert
  creating the job with its lease and ``run``, the file record, one update for the end —
  with the same documents, the sha256 computed in Python: the floor of three durable
  writes.

Every command each client sends is counted by a ``CommandListener``
(``command_counter.py``). Run it alone: ``python bench/bench_lifecycle.py [--jobs N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench_driver import server_uri
from command_counter import CommandCounter
from pymongo import MongoClient, ReturnDocument

from datacatalog.catalog import Catalog
from datacatalog.clock import utc_now
from datacatalog.driver import Driver, Payload
from datacatalog.identifiers import file_uuid
from datacatalog.jobs.events import new_entry
from datacatalog.jobs.model import Actor
from datacatalog.settings import Settings
from datacatalog.store import DURABILITY, connect

DEFAULT_JOBS = 300
DEFAULT_BLOCK = 25
SECRET = "bench-secret-" + "0" * 32
OUTPUT = b"gene,count\nrpoB,1523\n"


@dataclass
class Lane:
    """One lane: its client, catalog, what it does per job, and its measurements."""

    name: str
    client: MongoClient[dict[str, Any]]
    catalog: Catalog
    listener: CommandCounter
    life: Callable[[Lane, int], str]
    durations: list[float] = field(default_factory=list)
    commands: Counter[str] = field(default_factory=Counter)
    command_seconds: float = 0.0
    finished: int = 0
    pipeline: str = ""
    database: str = ""

    def run_block(self, numbers: range) -> None:
        before = Counter(self.listener.counts)
        seconds_before = self.listener.seconds
        for n in numbers:
            start = time.perf_counter()
            state = self.life(self, n)
            self.durations.append(time.perf_counter() - start)
            self.finished += state == "FINISHED"
        self.commands += self.listener.counts - before
        self.command_seconds += self.listener.seconds - seconds_before

    def plan(self, n: int) -> Any:
        return self.catalog.jobs.plan(
            pipeline=self.pipeline,
            metadata={"experiment_design_id": "bench.design"},
            data={"lane": self.name, "n": n},
        )


def write_output(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "counts.csv").write_bytes(OUTPUT)


def with_driver(lane: Lane, n: int) -> str:
    # Given the plan, the driver creates the job in the write that starts it.
    job = lane.plan(n)

    def execute(driver: Driver, payload: Payload) -> None:
        write_output(Path(payload.output_entries[0].path or ""))

    driver = Driver(job, catalog=lane.catalog, execute=execute, index_outputs=True)
    driver.start()
    return driver.wait_for_completion().state


def with_bare_api(lane: Lane, n: int) -> str:
    jobs = lane.catalog.jobs
    plan = lane.plan(n)
    holder = f"bench-{uuid.uuid4().hex}"
    started = jobs.lifecycle.start(
        plan.uuid, holder=holder, event_id=f"{holder}:run", new=jobs.planner.document(plan)
    )
    write_output(Path(jobs.archive_dir(started.job) or ""))
    job, _report = lane.catalog.indexing.complete(started.job, started.lease, key=holder)
    return job.state


def by_hand(lane: Lane, n: int) -> str:
    """The driver's three durable writes, with the documents built as the catalog builds
    them: the job inserted with its lease and ``run`` in one write, the file record, the
    end."""
    jobs = lane.catalog.jobs
    plan = lane.plan(n)
    doc = jobs.planner.document(plan)
    db = lane.client[lane.database]
    who = Actor.current()
    run = new_entry("run", {}, event_id="h:run", to_state="RUNNING", actor=who, job=plan.uuid)
    now = utc_now()
    lease = {
        "holder": "h",
        "kind": "driver",
        "host": "bench",
        "pid": os.getpid(),
        "ttl": 30.0,
        "since": now,
        "renewed": now,
        "expires": now + timedelta(seconds=30),
        "taken_over": None,
    }
    fresh = {k: v for k, v in doc.items() if k not in ("state", "lease", "history")}
    db.job.update_one(
        {"uuid": plan.uuid, "state": "CREATED", "lease": None},
        {
            "$setOnInsert": fresh,
            "$set": {"state": "RUNNING", "lease": lease},
            "$push": {"history": {"$each": [*doc["history"], run]}},
        },
        upsert=True,
    )
    directory = Path(jobs.storage.get(plan.archive_system).resolve(plan.archive_path))
    write_output(directory)
    path = f"{plan.archive_path}/counts.csv"
    data = (directory / "counts.csv").read_bytes()
    db.file.insert_one(
        {
            "uuid": file_uuid(path),
            "name": path,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "generated_by": [plan.uuid],
        }
    )
    ended = [
        new_entry(e, {}, event_id=f"h:{e}", to_state=s, actor=who, job=plan.uuid)
        for e, s in (("finish", "FINISHED"), ("index", "INDEXING"), ("indexed", "FINISHED"))
    ]
    after = db.job.find_one_and_update(
        {"uuid": plan.uuid, "lease.holder": "h", "state": "RUNNING"},
        {"$set": {"state": "FINISHED", "lease": None}, "$push": {"history": {"$each": ended}}},
        projection={"state": 1},
        return_document=ReturnDocument.AFTER,
    )
    return str(after["state"]) if after else "?"


LANES: tuple[tuple[str, Callable[[Lane, int], str]], ...] = (
    ("driver", with_driver),
    ("bare API", with_bare_api),
    ("by hand (pymongo)", by_hand),
)


def run(uri: str, count: int, block: int, data_dir: Path) -> list[Lane]:
    """Measure the three lanes; return them."""
    database = f"bench_lifecycle_{uuid.uuid4().hex[:10]}"
    settings = Settings.load(env={}, data_dir=data_dir, secret=SECRET)
    lanes: list[Lane] = []
    try:
        for name, life in LANES:
            listener = CommandCounter()
            client: MongoClient[dict[str, Any]] = MongoClient(
                uri, tz_aware=True, event_listeners=[listener], **DURABILITY
            )
            catalog = Catalog(connect(client[database]), settings=settings)
            lanes.append(Lane(name, client, catalog, listener, life, database=database))
        setup = lanes[0].catalog
        pipeline, _ = setup.pipelines.register(
            {"id": "bench.lifecycle", "components": [{"image": "bench:1"}]}
        )
        setup.metadata.load([{"experiment_design_id": "bench.design"}])
        for lane in lanes:
            lane.pipeline = pipeline.uuid
            # Registries warm, every collection's indexes created, before timing starts.
            lane.life(lane, -1)
        for start in range(0, count, block):
            for lane in lanes:
                lane.run_block(range(start, min(count, start + block)))
        return lanes
    finally:
        if lanes:
            lanes[0].client.drop_database(database)
        for lane in lanes:
            lane.client.close()


def summary(lanes: list[Lane]) -> list[dict[str, Any]]:
    """Per lane: jobs/s, ms per job (mean, p50, p95), commands per job."""
    rows = []
    for lane in lanes:
        ms = [d * 1000 for d in lane.durations]
        rows.append(
            {
                "lane": lane.name,
                "jobs_per_s": 1000 / statistics.fmean(ms),
                "ms": statistics.fmean(ms),
                "p50": statistics.median(ms),
                "p95": statistics.quantiles(ms, n=20)[-1] if len(ms) >= 20 else max(ms),
                "round_trips": sum(lane.commands.values()) / len(ms),
                # Of each job's time, what its database commands took (send to reply).
                "command_ms": lane.command_seconds * 1000 / len(ms),
                "commands": {k: round(v / len(ms), 2) for k, v in sorted(lane.commands.items())},
                "finished": lane.finished,
            }
        )
    return rows


def table(rows: list[dict[str, Any]], where: str, count: int) -> str:
    floor = rows[-1]["jobs_per_s"]
    lines = [
        f"a job's whole life on {where}: {count} jobs per lane, interleaved blocks",
        "",
        f"{'lane':<18} {'jobs/s':>8} {'ms/job':>8} {'p50':>7} {'p95':>7} "
        f"{'round trips':>12} {'vs by hand':>11}",
    ]
    lines.append("-" * len(lines[-1]))
    for r in rows:
        lines.append(
            f"{r['lane']:<18} {r['jobs_per_s']:>8.1f} {r['ms']:>8.2f} {r['p50']:>7.2f} "
            f"{r['p95']:>7.2f} {r['round_trips']:>12.1f} {r['jobs_per_s'] / floor:>10.2f}x"
        )
    lines.append("")
    for r in rows:
        lines.append(
            f"{r['lane']}: commands per job {r['commands']}, {r['command_ms']:.2f} ms in them; "
            f"FINISHED {r['finished']}"
        )
    return "\n".join(lines)


def measure(uri: str, count: int, block: int = DEFAULT_BLOCK) -> list[dict[str, Any]]:
    """The three lanes' summaries (for bench/report.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        return summary(run(uri, count, block, Path(tmp)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument("--block", type=int, default=DEFAULT_BLOCK)
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.block < 1:
        parser.error("--jobs and --block must be positive")
    with server_uri() as (uri, where):
        rows = measure(uri, args.jobs, args.block)
    print(table(rows, where, args.jobs))
    return 0 if all(r["finished"] == args.jobs for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
