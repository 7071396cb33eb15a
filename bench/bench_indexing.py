"""Benchmark: indexing a job's outputs, against two hashing limits, on a real MongoDB.

Generates N small files (1-64 KiB of random bytes) once, then for each of ``--repeats``
rounds, interleaved so every path sees the same machine conditions:

(a) the single-thread limit: walk the directory and SHA-256 every file, writing nothing;
(b) the parallel limit: the same walk, hashing on one thread per core;
(c) ``IndexingService.index(fixity=True)``: listing, matching, hashing (on the indexer's
    default hashing threads) while the previous batch is written, one bulk write per batch;
(d) the records (c) wrote, bulk-inserted again by hand (same batches, same indexes): what
    the database server alone needs per record, on the same cores.

Each round indexes a new job (the files are moved into its archive path), so every
record is an insert. It prints the median files/s of each path with its spread
(min-max), the ratios c/a and c/b (medians of the per-round ratios), and the database
commands sent during (c), counted by a pymongo ``CommandListener``.

The server is the one named by ``DATACATALOG_TEST_MONGODB_URI``; otherwise a throw-away
``mongod`` is started (``datacatalog.testing.mongod``). Usage::

    python bench/bench_indexing.py [--files 20000] [--repeats 3] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from command_counter import CommandCounter
from pymongo import MongoClient

from datacatalog.catalog import Catalog
from datacatalog.indexing.fixity import DEFAULT_HASH_WORKERS
from datacatalog.jobs import Job
from datacatalog.settings import Settings
from datacatalog.store import connect

URI_ENV = "DATACATALOG_TEST_MONGODB_URI"
CHUNK = 1024 * 1024
FILES_PER_DIRECTORY = 500


def generate(root: Path, count: int, seed: int) -> int:
    """Write ``count`` files of 1-64 KiB random bytes under ``root``; return total bytes."""
    rng = random.Random(seed)
    total = 0
    for i in range(count):
        directory = root / f"part{i // FILES_PER_DIRECTORY:03d}"
        if i % FILES_PER_DIRECTORY == 0:
            directory.mkdir(parents=True, exist_ok=True)
        size = rng.randint(1024, 64 * 1024)
        (directory / f"sample{i:06d}.fastq").write_bytes(rng.randbytes(size))
        total += size
    return total


def walk(root: Path) -> Iterator[Path]:
    """Every regular file under ``root``."""
    for directory, _dirs, names in os.walk(root):
        for name in names:
            yield Path(directory, name)


def sha256(path: Path) -> str:
    """Streamed SHA-256 of one file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def limit_run(root: Path) -> dict[str, str]:
    """(a) walk + hash on one thread, nothing written."""
    return {str(path): sha256(path) for path in walk(root)}


def parallel_limit_run(root: Path, workers: int) -> dict[str, str]:
    """(b) walk + hash on ``workers`` threads, nothing written."""
    paths = list(walk(root))
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(map(str, paths), pool.map(sha256, paths), strict=True))


def make_job(catalog: Catalog) -> Job:
    """A FINISHED job on the local storage system."""
    catalog.pipelines.register({"id": "bench.indexing", "components": [{"image": "bench:1"}]})
    catalog.metadata.load(
        [
            {"experiment_design_id": "bench-design"},
            {"experiment_id": "bench-experiment", "experiment_design_id": "bench-design"},
            {"sample_id": "bench-sample", "experiment_id": "bench-experiment"},
            {"measurement_id": "bench-measurement", "sample_id": "bench-sample"},
        ]
    )
    plan = catalog.jobs.plan(
        pipeline="bench.indexing",
        metadata={"measurement_id": "bench-measurement"},
        data={"bench": uuid.uuid4().hex},
    )
    job, _created = catalog.jobs.create(plan)
    catalog.jobs.send(job.uuid, "run")
    return catalog.jobs.send(job.uuid, "finish").job


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": median(values), "min": min(values), "max": max(values)}


@dataclass
class Result:
    """Seconds per round of each path, and what (c) sent to the server."""

    files: int
    workers: int
    batch_size: int
    limit: list[float] = field(default_factory=list)
    parallel: list[float] = field(default_factory=list)
    product: list[float] = field(default_factory=list)
    write_only: list[float] = field(default_factory=list)
    commands: Counter[str] = field(default_factory=Counter)
    batches: int = 0

    def rates(self, seconds: list[float]) -> list[float]:
        """Files/s of each round."""
        return [self.files / s for s in seconds]

    def ratios(self, baseline: list[float]) -> list[float]:
        """Per-round throughput of (c) over ``baseline``'s."""
        return [b / c for b, c in zip(baseline, self.product, strict=True)]

    def serial(self) -> list[float]:
        """Seconds per round of hashing alone then storing alone (a + d)."""
        return [a + d for a, d in zip(self.limit, self.write_only, strict=True)]

    def summary(self) -> dict[str, Any]:
        """Medians and spreads, JSON-ready."""
        rounds = len(self.product)
        return {
            "files": self.files,
            "workers": self.workers,
            "batch_size": self.batch_size,
            "rounds": rounds,
            "limit_files_per_s": spread(self.rates(self.limit)),
            "parallel_files_per_s": spread(self.rates(self.parallel)),
            "product_files_per_s": spread(self.rates(self.product)),
            "write_only_files_per_s": spread(self.rates(self.write_only)),
            "ratio_single": spread(self.ratios(self.limit)),
            "ratio_parallel": spread(self.ratios(self.parallel)),
            # Hashing alone (a), then storing alone (d), one after the other: the serial limit.
            "ratio_serial": spread(self.ratios(self.serial())),
            "commands_per_round": {k: v / rounds for k, v in sorted(self.commands.items())},
            "bulk_writes_per_round": self.batches / rounds,
        }


def measure(uri: str, files: int, *, repeats: int, batch_size: int, seed: int) -> Result:
    """Generate ``files`` files once and time the three paths ``repeats`` times."""
    workers = os.cpu_count() or 1
    result = Result(files=files, workers=workers, batch_size=batch_size)
    with ExitStack() as stack:
        counter = CommandCounter(active=False)
        client: MongoClient[dict[str, Any]] = MongoClient(uri, event_listeners=[counter])
        stack.callback(client.close)
        database = client[f"bench_indexing_{uuid.uuid4().hex[:10]}"]
        stack.callback(client.drop_database, database.name)
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dc-bench-")))
        settings = Settings.load(env={}, data_dir=work, secret="b" * 64)
        catalog = Catalog(connect(database), settings=settings)
        archive_root = work / "archive"
        source = work / "source"
        generate(source, files, seed)
        for _round in range(repeats):
            job = make_job(catalog)
            job_dir = archive_root / job.archive_path.lstrip("/")
            job_dir.parent.mkdir(parents=True, exist_ok=True)
            if job_dir.exists():
                job_dir.rmdir()  # the empty directory the job was set up with
            source.rename(job_dir)

            started = time.perf_counter()
            hashes = limit_run(job_dir)
            result.limit.append(time.perf_counter() - started)

            started = time.perf_counter()
            parallel_limit_run(job_dir, workers)
            result.parallel.append(time.perf_counter() - started)

            counter.active = True
            started = time.perf_counter()
            report = catalog.indexing.index(
                job.uuid, fixity=True, transition=True, batch_size=batch_size
            )
            result.product.append(time.perf_counter() - started)
            counter.active = False
            result.commands.update(counter.counts)
            counter.counts.clear()
            result.batches += report.batches

            # (d) The records (c) wrote, inserted again by hand into a collection with the
            # same indexes, batch by batch: what the server alone costs per record.
            written = list(database["files"].find({"generated_by": job.uuid}, {"_id": 0}))
            scratch = database[f"write_only_{_round}"]
            for index in database["files"].list_indexes():
                if index["name"] != "_id_":
                    scratch.create_index(
                        list(index["key"].items()), unique=bool(index.get("unique"))
                    )
            started = time.perf_counter()
            for start in range(0, len(written), batch_size):
                scratch.insert_many(written[start : start + batch_size], ordered=False)
            result.write_only.append(time.perf_counter() - started)
            scratch.drop()

            # The product's records must agree with the limit run's hashes.
            assert report.written == files, report.errors[:3]
            sample = catalog.indexing.files(job.uuid)[:: max(1, files // 50)]
            for record in sample:
                assert record.sha256 == hashes[str(archive_root) + record.name], record.name
            job_dir.rename(source)
    return result


def table(result: Result) -> str:
    """The printed result."""
    summary = result.summary()
    lines = [
        f"{result.files} files, {summary['rounds']} rounds, {DEFAULT_HASH_WORKERS} hashing "
        f"thread(s) in the indexer, {result.workers} in the parallel limit, "
        f"batches of {result.batch_size}",
        f"{'path':<48} {'files/s (median)':>17} {'min-max':>15}",
    ]
    for label, key in (
        ("(a) walk + sha256 on one thread (limit)", "limit_files_per_s"),
        (f"(b) walk + sha256 on {result.workers} threads (limit)", "parallel_files_per_s"),
        ("(c) IndexingService.index(fixity=True)", "product_files_per_s"),
        ("(d) the same records, bulk inserts only", "write_only_files_per_s"),
    ):
        figure = summary[key]
        lines.append(
            f"{label:<48} {figure['median']:>17.0f} {figure['min']:>7.0f}-{figure['max']:<7.0f}"
        )
    for label, key in (
        ("c/a", "ratio_single"),
        ("c/b", "ratio_parallel"),
        ("c/(a then d), the serial limit", "ratio_serial"),
    ):
        figure = summary[key]
        lines.append(
            f"{label}: {figure['median']:.2f} (rounds {figure['min']:.2f}-{figure['max']:.2f})"
        )
    commands = summary["commands_per_round"]
    detail = ", ".join(f"{name} {n:g}" for name, n in commands.items())
    lines.append(
        f"database commands per round of (c): {sum(commands.values()):g} ({detail}); "
        f"{summary['bulk_writes_per_round']:g} bulk writes"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=20_000, help="files to generate")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per bulk write")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed for the files")
    args = parser.parse_args(argv)
    if args.files < 1 or args.repeats < 1:
        parser.error("--files and --repeats must be at least 1")
    with ExitStack() as stack:
        uri = os.environ.get(URI_ENV)
        if not uri:
            from datacatalog.testing.mongod import MongodServer

            server = MongodServer()
            server.start()
            stack.callback(server.stop)
            uri = server.uri
        result = measure(
            uri, args.files, repeats=args.repeats, batch_size=args.batch_size, seed=args.seed
        )
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
