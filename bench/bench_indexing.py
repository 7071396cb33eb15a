"""Benchmark: indexing a job's outputs, against the hashing limit and a naive indexer.

Generates N small files (1-64 KiB of random bytes) in a job's archive path on a local
storage system, then, in one run on a real MongoDB server:

(a) the limit: walk the directory and SHA-256 every file, writing nothing;
(b) a naive indexer: the same walk and hashing, plus one ``update_one(upsert=True)``
    per file (one database round trip per file);
(c) ``IndexingService.index(fixity=True)``: listing, matching, hashing and batched
    bulk upserts.

It prints files/s for each, the ratios c/a and c/b, and the database commands sent
during (c), counted by a pymongo ``CommandListener`` on the client the store uses.

The server is the one named by ``DATACATALOG_TEST_MONGODB_URI``; otherwise a throw-away
``mongod`` is started (``datacatalog.testing.mongod``). Usage::

    python bench/bench_indexing.py [--files 20000] [--batch-size 1000]
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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pymongo import MongoClient, monitoring

from datacatalog.catalog import Catalog
from datacatalog.identifiers import file_uuid
from datacatalog.jobs import Job
from datacatalog.settings import Settings
from datacatalog.store import connect

URI_ENV = "DATACATALOG_TEST_MONGODB_URI"
CHUNK = 1024 * 1024
FILES_PER_DIRECTORY = 500


class CommandCounter(monitoring.CommandListener):
    """Counts the commands a client sends, by name, while ``active``."""

    def __init__(self) -> None:
        self.active = False
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.active:
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


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
    """(a) walk + hash, nothing written."""
    return {str(path): sha256(path) for path in walk(root)}


def naive_run(root: Path, catalog_root: Path, collection: Any, job: Job) -> int:
    """(b) walk + hash + one upsert per file."""
    written = 0
    for path in walk(root):
        name = "/" + path.relative_to(catalog_root).as_posix()
        stat = path.stat()
        collection.update_one(
            {"uuid": file_uuid(name)},
            {
                "$set": {
                    "name": name,
                    "storage_system": "local",
                    "size": stat.st_size,
                    "sha256": sha256(path),
                    "level": "1",
                    "type": "FASTQ",
                },
                "$setOnInsert": {"uuid": file_uuid(name)},
                "$addToSet": {"generated_by": job.uuid, "child_of": {"$each": job.child_of}},
            },
            upsert=True,
        )
        written += 1
    return written


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=20_000, help="files to generate")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per bulk write")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed for the files")
    args = parser.parse_args(argv)
    if args.files < 1:
        parser.error("--files must be at least 1")

    with ExitStack() as stack:
        uri = os.environ.get(URI_ENV)
        if not uri:
            from datacatalog.testing.mongod import MongodServer

            server = MongodServer()
            server.start()
            stack.callback(server.stop)
            uri = server.uri
        counter = CommandCounter()
        client: MongoClient[dict[str, Any]] = MongoClient(uri, event_listeners=[counter])
        stack.callback(client.close)
        database = client[f"bench_indexing_{uuid.uuid4().hex[:10]}"]
        stack.callback(client.drop_database, database.name)
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dc-bench-")))

        settings = Settings.load(env={}, data_dir=work, secret="b" * 64)
        catalog = Catalog(connect(database), settings=settings)
        job = make_job(catalog)
        archive_root = work / "archive"
        job_dir = archive_root / job.archive_path.lstrip("/")
        started = time.perf_counter()
        total_bytes = generate(job_dir, args.files, args.seed)
        print(
            f"generated {args.files} files, {total_bytes / 2**20:.1f} MiB, "
            f"in {time.perf_counter() - started:.1f} s; server {uri}"
        )

        started = time.perf_counter()
        hashes = limit_run(job_dir)
        limit_s = time.perf_counter() - started

        started = time.perf_counter()
        naive_written = naive_run(job_dir, archive_root, database["naive_files"], job)
        naive_s = time.perf_counter() - started

        counter.active = True
        started = time.perf_counter()
        report = catalog.indexing.index(
            job.uuid, fixity=True, transition=True, batch_size=args.batch_size
        )
        index_s = time.perf_counter() - started
        counter.active = False

        # The product's records must agree with the limit run's hashes.
        assert naive_written == args.files
        assert report.written == args.files, report.errors[:3]
        sample = catalog.indexing.files(job.uuid)[:: max(1, args.files // 50)]
        for record in sample:
            assert record.sha256 == hashes[str(archive_root) + record.name], record.name

    rows = [
        ("(a) walk + sha256, nothing written (limit)", limit_s),
        ("(b) naive: sha256 + update_one per file", naive_s),
        ("(c) IndexingService.index(fixity=True)", index_s),
    ]
    print()
    print(f"{'run':<46} {'seconds':>9} {'files/s':>10}")
    for label, seconds in rows:
        print(f"{label:<46} {seconds:>9.2f} {args.files / seconds:>10.0f}")
    print()
    print(f"c/a (throughput of c over the limit): {limit_s / index_s:.2f}")
    print(f"c/b (throughput of c over naive):     {naive_s / index_s:.2f}")
    commands = sum(counter.counts.values())
    detail = ", ".join(f"{name} {n}" for name, n in sorted(counter.counts.items()))
    print(
        f"database round trips during (c): {commands} ({detail}); "
        f"{report.batches} bulk writes of up to {args.batch_size} files; "
        f"{commands / args.files:.4f} per file"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
