"""Benchmark: ``populate`` of N no-op jobs, against the same jobs made and run one by one.

Lanes, on one MongoDB server, each making and running N fresh jobs (one per sample of
one experiment; new parameters each round, so every job is new):

* **one by one**: per sample, ``jobs.plan`` + ``jobs.create``, then a stage driver
  (``Driver(job, execute=no-op)``, ``start()``, ``wait_for_completion()``): what a loop
  over the samples in a script does;
* **populate, threads**: ``catalog.jobs.populate(execute=no-op, executor="thread")``;
* **populate, Dask**: the same on a local Dask cluster (started once, outside the timing):
  the no-op runs on the workers, the bookkeeping stays in this process.

Outputs are not indexed in these lanes (``index=False``, ``index_outputs=False``): a
no-op writes nothing. Then, on N finished jobs with one indexed file each, the cost of
the up-to-date check (:func:`datacatalog.jobs.reruns.decide`: the job read, its file
records read, each file hashed again) against the bare read of the job's file records.
With ``--coverage SAMPLES``, the time of ``catalog.jobs.coverage`` over SAMPLES samples
and 5 parameter sets (5 x SAMPLES jobs).

Every command each lane's client sends is counted (``CommandCounter``), so the table
shows database round trips per job next to the times. Run it alone with
``python bench/bench_populate.py [--jobs N] [--workers W] [--repeats R]``; ``report.py``
runs it too. A throw-away ``mongod`` is started unless ``DATACATALOG_TEST_MONGODB_URI``
names a server; the benchmark's database is dropped at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cloudpickle
from command_counter import CommandCounter
from pymongo import MongoClient

from datacatalog.catalog import Catalog
from datacatalog.driver import Driver, Payload
from datacatalog.jobs.reruns import decide
from datacatalog.populate import Task
from datacatalog.populate.executors import DaskBackend
from datacatalog.settings import Settings
from datacatalog.store import connect
from datacatalog.testing.mongod import URI_ENV, MongodServer

SECRET = "bench-secret-" + "p" * 32
PIPELINE = {"id": "bench.populate", "components": [{"image": "bench:1"}]}


def noop(task: Task) -> None:
    """The work of a populate lane: nothing."""
    return None


def noop_step(driver: Driver, payload: Payload) -> None:
    """The execute step of the one-by-one lane: nothing."""
    return None


@dataclass
class Result:
    """Seconds and round trips per job of each lane, per round."""

    jobs: int
    workers: int
    seconds: dict[str, list[float]] = field(default_factory=dict)
    trips: dict[str, list[float]] = field(default_factory=dict)
    planning: dict[int, list[int]] = field(default_factory=dict)
    """Round trips of a dry run (planning alone) per number of jobs planned, per round."""
    inserts: list[int] = field(default_factory=list)
    """Insert commands of each round of the ``populate, threads`` lane (all its jobs)."""

    def add(self, lane: str, seconds: float, trips: float) -> None:
        self.seconds.setdefault(lane, []).append(seconds)
        self.trips.setdefault(lane, []).append(trips)

    def ratio(self, lane: str, baseline: str) -> float:
        """Median of the per-round ratios of ``baseline``'s time to ``lane``'s (speed-up)."""
        pairs = zip(self.seconds[baseline], self.seconds[lane], strict=True)
        return median(b / x for b, x in pairs)


def measure(uri: str, jobs: int, *, workers: int = 2, repeats: int = 1) -> Result:
    """Every lane, ``repeats`` interleaved rounds."""
    result = Result(jobs, workers)
    counter = CommandCounter(active=False)
    client: MongoClient[dict[str, Any]] = MongoClient(uri, event_listeners=[counter])
    database = f"bench_populate_{uuid.uuid4().hex[:8]}"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need no bench/
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings.load(env={}, data_dir=Path(data_dir), secret=SECRET)
        catalog = Catalog(connect(client[database]), settings=settings)
        dask = DaskBackend(workers=workers)
        try:
            catalog.pipelines.register(PIPELINE)
            catalog.metadata.load(_metadata(jobs))
            catalog.jobs.find(limit=1)  # indexes made before any timing
            for round_ in range(repeats):
                lanes = {
                    "one by one": lambda r: _one_by_one(catalog, jobs, r),
                    "populate, threads": lambda r: _populate(catalog, r, "thread", workers),
                    "populate, Dask": lambda r: _populate(catalog, r, dask, workers),
                }
                for lane, run in lanes.items():
                    counter.counts.clear()
                    counter.active = True
                    start = time.perf_counter()
                    done = run(f"{lane}-{round_}")
                    seconds = time.perf_counter() - start
                    counter.active = False
                    assert done == jobs, f"{lane}: {done} of {jobs} jobs finished"
                    result.add(lane, seconds, counter.total / jobs)
                    if lane == "populate, threads":
                        result.inserts.append(counter.counts.get("insert", 0))
                _planning(catalog, result, counter, round_)
                _up_to_date(catalog, result, counter, round_)
        finally:
            dask.close()
            client.drop_database(database)
            client.close()
    return result


def _planning(catalog: Catalog, result: Result, counter: CommandCounter, round_: int) -> None:
    """Round trips of planning alone (a dry run) for a tenth of the jobs and for all."""
    for size in sorted({max(1, result.jobs // 10), result.jobs}):
        samples = [f"bench.s{i:06d}" for i in range(size)]
        counter.counts.clear()
        counter.active = True
        report = catalog.jobs.populate(
            pipeline=PIPELINE["id"],
            metadata={"sample_id": samples},
            level="sample",
            parameters={"r": f"planned-{round_}"},
            execute=noop,
            dry_run=True,
        )
        counter.active = False
        assert len(report.outcomes) == size, f"planned {len(report.outcomes)} of {size} jobs"
        result.planning.setdefault(size, []).append(counter.total)


def _metadata(jobs: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {"experiment_design_id": "bench.design"},
        {"experiment_id": "bench.E", "experiment_design_id": "bench.design"},
    ]
    docs += [{"sample_id": f"bench.s{i:06d}", "experiment_id": "bench.E"} for i in range(jobs)]
    return docs


def _one_by_one(catalog: Catalog, jobs: int, tag: str) -> int:
    finished = 0
    for i in range(jobs):
        plan = catalog.jobs.plan(
            pipeline=PIPELINE["id"], metadata={"sample_id": f"bench.s{i:06d}"}, data={"r": tag}
        )
        job, _ = catalog.jobs.create(plan, setup_archive_path=False)
        driver = Driver(job.uuid, catalog=catalog, execute=noop_step)
        driver.start()
        finished += driver.wait_for_completion().state == "FINISHED"
    return finished


def _populate(catalog: Catalog, tag: str, executor: Any, workers: int) -> int:
    report = catalog.jobs.populate(
        pipeline=PIPELINE["id"],
        metadata={"experiment_id": "bench.E"},
        level="sample",
        parameters={"r": tag},
        execute=noop,
        executor=executor,
        workers=workers,
        index=False,
    )
    for outcome in report.outcomes:
        if outcome.outcome != "ran":
            print(
                f"{tag}: {outcome.entity.id} {outcome.outcome} {outcome.reason}: {outcome.message}"
            )
    return report.counts.get("ran", 0)


def _write_file(task: Task) -> None:
    (Path(task.archive_dir) / "out.txt").write_text(task.entity_id * 64)


def _up_to_date(catalog: Catalog, result: Result, counter: CommandCounter, round_: int) -> None:
    """The up-to-date check of N finished jobs with one file each, against the bare read."""
    report = catalog.jobs.populate(
        pipeline=PIPELINE["id"],
        metadata={"experiment_id": "bench.E"},
        level="sample",
        parameters={"r": f"indexed-{round_}"},
        execute=_write_file,
        executor="thread",
        workers=result.workers,
    )
    uuids = [o.job for o in report.outcomes]
    checks: dict[str, Any] = {
        "bare read of the file records": lambda u: catalog.store.find("file", {"generated_by": u}),
        "up-to-date check (sha256)": lambda u: decide(catalog, u),
    }
    for lane, check in checks.items():
        counter.counts.clear()
        counter.active = True
        start = time.perf_counter()
        for job_uuid in uuids:
            check(job_uuid)
        seconds = time.perf_counter() - start
        counter.active = False
        result.add(lane, seconds, counter.total / len(uuids))


@dataclass
class CoverageResult:
    """Seconds per coverage call (counts and the first page of rows), and its round trips."""

    samples: int
    sets: int
    seconds: list[float] = field(default_factory=list)
    trips: int = 0


def measure_coverage(uri: str, samples: int, sets: int, *, repeats: int = 3) -> CoverageResult:
    """Coverage of ``samples`` samples against ``sets`` parameter sets of one pipeline."""
    from datacatalog.populate.planning import plan
    from datacatalog.selection import select

    result = CoverageResult(samples, sets)
    counter = CommandCounter(active=False)
    client: MongoClient[dict[str, Any]] = MongoClient(uri, event_listeners=[counter])
    database = f"bench_coverage_{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings.load(env={}, data_dir=Path(data_dir), secret=SECRET)
            catalog = Catalog(connect(client[database]), settings=settings)
            catalog.pipelines.register(PIPELINE)
            catalog.metadata.load(_metadata(samples))
            selection = select(catalog.store, level="sample", experiment_id="bench.E")
            for k in range(sets):
                plan(
                    catalog.jobs, pipeline=PIPELINE["id"], selection=selection, parameters={"k": k}
                )
            for _ in range(repeats):
                counter.counts.clear()
                counter.active = True
                start = time.perf_counter()
                found = catalog.jobs.coverage(
                    pipelines=PIPELINE["id"], metadata={"experiment_id": "bench.E"}, level="sample"
                )
                result.seconds.append(time.perf_counter() - start)
                counter.active = False
                result.trips = counter.total
                assert sum(found.totals.values()) == samples * sets
    finally:
        client.drop_database(database)
        client.close()
    return result


def table(result: Result, where: str) -> str:
    """The printed result (medians over the rounds)."""
    lines = [
        f"populate of {result.jobs} no-op jobs on {where}, {result.workers} workers, "
        f"{len(result.seconds['one by one'])} round(s)",
        "",
        f"{'lane':<32} {'total s':>8} {'ms/job':>8} {'speed-up':>9} {'trips/job':>10}",
    ]
    lines.append("-" * len(lines[-1]))
    baselines = {"up-to-date check (sha256)": "bare read of the file records"}
    for lane, seconds in result.seconds.items():
        total = median(seconds)
        base = baselines.get(lane, "one by one")
        ratio = result.ratio(lane, base) if base in result.seconds else 1.0
        shown = "" if lane in (base, "bare read of the file records") else f"{ratio:.2f}x"
        lines.append(
            f"{lane:<32} {total:>8.2f} {total / result.jobs * 1000:>8.2f} {shown:>9} "
            f"{median(result.trips[lane]):>10.2f}"
        )
    lines.append("")
    lines.append(
        "speed-up: the one-by-one lane's time over the lane's; the up-to-date check's "
        "is against the bare read (below 1: slower)"
    )
    planned = ", ".join(
        f"{size:,} jobs: {median(trips):.0f}" for size, trips in sorted(result.planning.items())
    )
    lines.append(f"planning alone (dry run), round trips: {planned}")
    lines.append(f"insert commands of a whole populate, threads lane: {median(result.inserts):.0f}")
    return "\n".join(lines)


@contextmanager
def server_uri() -> Iterator[tuple[str, str]]:
    """The server to measure: the one in the environment, or a throw-away mongod."""
    import os

    given = os.environ.get(URI_ENV)
    if given:
        yield given, URI_ENV
        return
    with MongodServer() as server:
        yield server.uri, "throw-away mongod"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--coverage", type=int, default=0, metavar="SAMPLES",
        help="also time coverage of SAMPLES samples against 5 parameter sets",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if min(args.jobs, args.workers, args.repeats) < 1:
        parser.error("--jobs, --workers and --repeats must be positive")
    with server_uri() as (uri, where):
        result = measure(uri, args.jobs, workers=args.workers, repeats=args.repeats)
        covered = measure_coverage(uri, args.coverage, 5) if args.coverage else None
    print(table(result, where))
    if covered is not None:
        print(
            f"\ncoverage of {covered.samples:,} samples x {covered.sets} parameter sets "
            f"({covered.samples * covered.sets:,} jobs): median "
            f"{median(covered.seconds):.2f} s, {covered.trips} round trips"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
