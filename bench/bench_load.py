"""Benchmark: 32 concurrent HTTP clients against the real service and a real MongoDB.

A ``datacatalog.service`` process runs over a MongoDB server (a throw-away ``mongod``
unless ``DATACATALOG_TEST_MONGODB_URI`` names one). Clients, each with a job of its own
to send events to and a finished job of its own to index, run a mix for ``--duration``
seconds:

* **event** (70 %): ``POST /jobs/{uuid}/events`` with an idempotency key;
* **read** (25 %): ``GET /jobs/{uuid}``, ``/jobs/{uuid}/history`` or ``/jobs?limit=20``;
* **index** (5 %): ``POST /jobs/{uuid}/index`` with fixity over the job's 20 files.

The baseline is the same mix from one client, measured in the same run on the same
service. The table gives requests/s and latency percentiles per kind for both runs; then
the checks: every request answered 2xx (an error that is not the client's fault fails the
run), and every accepted event is in its job's history exactly once.

    python bench/bench_load.py                    # 60 s with 32 clients
    python bench/bench_load.py --duration 8       # the short profile CI runs

The exit status is non-zero when a check fails; times are reported, never judged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from datacatalog.catalog import Catalog
from datacatalog.settings import Settings
from datacatalog.testing.mongod import URI_ENV, MongodServer

SECRET = "bench-load-secret-" + "0" * 32
DATABASE = "bench_load"
FILES_PER_INDEX_JOB = 20
MIX = (("event", 70), ("read", 25), ("index", 5))


@contextmanager
def server_uri() -> Iterator[str]:
    given = os.environ.get(URI_ENV)
    if given:
        yield given
        return
    with MongodServer() as server:
        yield server.uri


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ClientJobs:
    """The jobs one client works on, and the tokens for them."""

    events: str
    events_token: str
    index: str
    index_token: str


@dataclass
class Results:
    """What one run saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    accepted: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    elapsed: float = 0.0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())


def prepare(catalog: Catalog, clients: int, tag: str) -> list[ClientJobs]:
    pipeline, _ = catalog.pipelines.register(
        {"id": "bench.load", "components": [{"image": "bench:1.0"}]}
    )
    catalog.metadata.load(
        [
            {"experiment_id": "bench.experiment"},
            {"sample_id": "bench.sample", "experiment_id": "bench.experiment"},
        ]
    )
    jobs = catalog.jobs
    made: list[ClientJobs] = []
    for n in range(clients):

        def job(kind: str, n: int = n) -> str:
            plan = jobs.plan(
                pipeline=pipeline.uuid,
                metadata={"sample_id": "bench.sample"},
                data={"run": tag, "client": n, "kind": kind},
            )
            created, _ = jobs.create(plan)
            jobs.send(created.uuid, "run")
            return created.uuid

        events, index = job("events"), job("index")
        stored = jobs.get(index)
        root = Path(catalog.storage.get(stored.archive_system).resolve(stored.archive_path))
        for f in range(FILES_PER_INDEX_JOB):
            (root / f"out-{f:02d}.txt").write_text(f"client {n} file {f}\n" * 50)
        jobs.send(index, "finish")
        made.append(ClientJobs(events, jobs.job_token(events), index, jobs.job_token(index)))
    return made


async def client_loop(
    number: int,
    base: str,
    mine: ClientJobs,
    everyone: list[ClientJobs],
    until: float,
    results: Results,
    rng: random.Random,
) -> None:
    kinds = [k for k, weight in MIX for _ in range(weight)]
    sent = 0
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        while time.monotonic() < until:
            kind = rng.choice(kinds)
            started = time.perf_counter()
            if kind == "event":
                key = f"c{number}-e{sent}"
                sent += 1
                response = await client.post(
                    f"/jobs/{mine.events}/events",
                    params={"token": mine.events_token},
                    json={"name": "update", "data": {"n": sent}, "event_id": key},
                )
                if response.status_code == 200:
                    results.accepted[mine.events].append(key)
            elif kind == "read":
                target = rng.choice(everyone).events
                path = rng.choice([f"/jobs/{target}", f"/jobs/{target}/history", "/jobs?limit=20"])
                response = await client.get(path)
            else:
                response = await client.post(
                    f"/jobs/{mine.index}/index",
                    params={"token": mine.index_token},
                    json={"fixity": True, "transition": True},
                )
            results.latencies[kind].append(time.perf_counter() - started)
            if response.status_code >= 300:
                results.errors[f"{kind} {response.status_code}"] += 1


async def run_load(
    base: str, jobs: list[ClientJobs], duration: float, clients: int, seed: int
) -> Results:
    results = Results()
    until = time.monotonic() + duration
    started = time.perf_counter()
    await asyncio.gather(
        *(
            client_loop(n, base, jobs[n], jobs, until, results, random.Random(seed + n))
            for n in range(clients)
        )
    )
    results.elapsed = time.perf_counter() - started
    return results


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def table(rows: list[tuple[str, Results]]) -> str:
    lines = [
        "| run | kind | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, results in rows:
        for kind in ("event", "read", "index", "all"):
            values = (
                [v for vs in results.latencies.values() for v in vs]
                if kind == "all"
                else results.latencies.get(kind, [])
            )
            errors = (
                sum(results.errors.values())
                if kind == "all"
                else sum(c for k, c in results.errors.items() if k.startswith(kind))
            )
            rate = len(values) / results.elapsed if results.elapsed else 0.0
            lines.append(
                f"| {label} | {kind} | {len(values)} | {rate:.1f} | "
                f"{percentile(values, 0.5) * 1000:.1f} | {percentile(values, 0.95) * 1000:.1f} | "
                f"{percentile(values, 0.99) * 1000:.1f} | {errors} |"
            )
    return "\n".join(lines)


def check_histories(catalog: Catalog, results: Results) -> list[str]:
    """Every accepted event is in its job's history exactly once."""
    problems = []
    for job, keys in results.accepted.items():
        seen = Counter(e.event_id for e in catalog.jobs.history(job) if e.name == "update")
        missing = [k for k in keys if seen[k] == 0]
        doubled = [k for k, c in seen.items() if c > 1]
        if missing or doubled:
            problems.append(f"job {job}: {len(missing)} missing, {len(doubled)} duplicated")
    return problems


@contextmanager
def service(uri: str, data_dir: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATACATALOG_MONGODB_URI": uri,
        "DATACATALOG_MONGODB_DATABASE": DATABASE,
        "DATACATALOG_DATA_DIR": data_dir,
        "DATACATALOG_SECRET": SECRET,
    }
    log = open(Path(data_dir) / "service.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "datacatalog.service", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "the service did not start: " + (Path(data_dir) / "service.log").read_text()
                )
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--baseline", type=float, default=None, help="seconds of the 1-client run")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    baseline_duration = args.baseline or max(3.0, args.duration / 4)

    with server_uri() as uri, tempfile.TemporaryDirectory() as data_dir:
        settings = Settings.load(
            env={}, data_dir=data_dir, secret=SECRET, mongodb_uri=uri, mongodb_database=DATABASE
        )
        catalog = Catalog.open(settings=settings)
        try:
            baseline_jobs = prepare(catalog, 1, "baseline")
            load_jobs = prepare(catalog, args.clients, "load")
            with service(uri, data_dir) as base:
                baseline = asyncio.run(
                    run_load(base, baseline_jobs, baseline_duration, 1, args.seed)
                )
                load = asyncio.run(
                    run_load(base, load_jobs, args.duration, args.clients, args.seed)
                )
            print(
                f"{args.clients} clients for {args.duration:g} s, baseline 1 client for "
                f"{baseline_duration:g} s; service and MongoDB on this machine\n"
            )
            print(table([("1 client", baseline), (f"{args.clients} clients", load)]))
            problems = [f"{kind}: {n}" for kind, n in (baseline.errors + load.errors).items()]
            problems += check_histories(catalog, baseline) + check_histories(catalog, load)
            accepted = sum(len(v) for v in load.accepted.values())
            print(
                f"\naccepted events ({args.clients} clients): {accepted}, each in its job's "
                f"history exactly once: {'yes' if not problems else 'NO'}"
            )
            print(
                f"throughput with {args.clients} clients / 1 client: "
                f"{(load.requests / load.elapsed) / (baseline.requests / baseline.elapsed):.2f}x"
            )
        finally:
            catalog.store.drop_database()
            catalog.close()
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
