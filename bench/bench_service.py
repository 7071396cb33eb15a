"""Benchmark: events through the real HTTP service against the same events in process.

Starts ``datacatalog serve --workers N`` on a real MongoDB, then, for each number of
concurrent clients (1, 8 and 32 by default), in ``--repeats`` interleaved rounds:

* **in process**: that many threads call ``JobService.send`` on one shared catalog;
* **service**: that many threads post to their job's webhook URL, each with its own
  ``httpx.Client`` (a kept-alive connection).

Each client drives its own job with ``update`` events. It prints events/s, p50 and p99
latency of both paths and the ratio service/in-process (median over rounds).

The server is the one named by ``DATACATALOG_TEST_MONGODB_URI``; otherwise a throw-away
``mongod`` is started. Usage::

    python bench/bench_service.py [--events 1000] [--clients 1 8 32] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median, quantiles
from typing import Any

import httpx

from datacatalog.catalog import Catalog
from datacatalog.service.server import settings_environment
from datacatalog.settings import Settings
from datacatalog.testing.mongod import URI_ENV, MongodServer

SECRET = "bench-service-" + "s" * 32
START_TIMEOUT = 60.0


@dataclass
class Lane:
    """One path at one concurrency: per-round rates and every latency."""

    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def percentile(self, q: int) -> float:
        """The ``q``-th percentile latency, in milliseconds."""
        return quantiles(self.latencies, n=100)[q - 1] * 1000


@dataclass
class Level:
    """Both paths at one number of clients."""

    clients: int
    local: Lane = field(default_factory=Lane)
    service: Lane = field(default_factory=Lane)

    def ratios(self) -> list[float]:
        """Per-round events/s of the service over in process."""
        return [s / p for s, p in zip(self.service.rates, self.local.rates, strict=True)]

    def summary(self) -> dict[str, Any]:
        """JSON-ready medians."""
        return {
            "clients": self.clients,
            "local_events_per_s": median(self.local.rates),
            "service_events_per_s": median(self.service.rates),
            "service_spread": (min(self.service.rates), max(self.service.rates)),
            "local_spread": (min(self.local.rates), max(self.local.rates)),
            "local_p50_ms": self.local.percentile(50),
            "local_p99_ms": self.local.percentile(99),
            "service_p50_ms": self.service.percentile(50),
            "service_p99_ms": self.service.percentile(99),
            "ratio": median(self.ratios()),
        }


def free_port() -> int:
    """A free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def service(settings: Settings, workers: int, log: Path) -> Iterator[str]:
    """``datacatalog serve --workers N`` on ``settings``; yields its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
    env.update(settings_environment(settings, secret=SECRET))
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "datacatalog.cli",
                *("serve", "--port", str(port), "--workers", str(workers)),
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start:\n{log.read_text()}")
                try:
                    if client.get(f"{base_url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def timed_clients(
    clients: int, per_client: int, send: Callable[[int, int], None]
) -> tuple[float, list[float]]:
    """Run ``clients`` threads each calling ``send(client, i)``; events/s and latencies."""
    latencies: list[list[float]] = [[] for _ in range(clients)]

    def client(number: int) -> None:
        mine = latencies[number]
        for i in range(per_client):
            started = time.perf_counter()
            send(number, i)
            mine.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    seconds = time.perf_counter() - started
    return clients * per_client / seconds, [x for lane in latencies for x in lane]


def measure(
    uri: str,
    levels: Sequence[int],
    *,
    events: int,
    repeats: int,
    workers: int,
) -> list[Level]:
    """Both paths at every concurrency level, ``repeats`` interleaved rounds each."""
    with tempfile.TemporaryDirectory(prefix="dc-bench-service-") as work:
        settings = Settings.load(
            env={},
            data_dir=Path(work),
            mongodb_uri=uri,
            mongodb_database=f"bench_service_{uuid.uuid4().hex[:10]}",
            secret=SECRET,
        )
        catalog = Catalog.open(settings=settings)
        try:
            pipeline, _ = catalog.pipelines.register(
                {"id": "bench.service", "components": [{"image": "bench:1"}]}
            )
            catalog.metadata.load([{"experiment_design_id": "bench.service"}])

            def new_jobs(count: int) -> list[str]:
                made = []
                for _ in range(count):
                    plan = catalog.jobs.plan(
                        pipeline=pipeline.uuid,
                        metadata={"experiment_design_id": "bench.service"},
                        data={"bench": uuid.uuid4().hex},
                    )
                    job, _ = catalog.jobs.create(plan, setup_archive_path=False)
                    catalog.jobs.send(job.uuid, "run")
                    made.append(job.uuid)
                return made

            results = []
            with service(settings, workers, Path(work) / "service.log") as base_url:
                for clients in levels:
                    level = Level(clients)
                    per_client = max(1, events // clients)
                    for _round in range(repeats):
                        local_jobs = new_jobs(clients)
                        rate, lat = timed_clients(
                            clients,
                            per_client,
                            lambda c, i, jobs=local_jobs: (
                                catalog.jobs.send(jobs[c], "update", data={"i": i}).job and None
                            ),
                        )
                        level.local.rates.append(rate)
                        level.local.latencies += lat

                        hooks = [
                            catalog.jobs.webhook_url(j, base_url=base_url)
                            for j in new_jobs(clients)
                        ]
                        http = [httpx.Client(timeout=30.0, trust_env=False) for _ in range(clients)]
                        try:

                            def post(
                                c: int,
                                i: int,
                                hooks: list[str] = hooks,
                                http: list[httpx.Client] = http,
                            ) -> None:
                                response = http[c].post(
                                    hooks[c], json={"name": "update", "data": {"i": i}}
                                )
                                response.raise_for_status()

                            rate, lat = timed_clients(clients, per_client, post)
                        finally:
                            for one in http:
                                one.close()
                        level.service.rates.append(rate)
                        level.service.latencies += lat
                    results.append(level)
            return results
        finally:
            catalog.store.drop_database()
            catalog.close()


def table(levels: Sequence[Level], workers: int) -> str:
    """The printed result."""
    lines = [
        f"service: datacatalog serve --workers {workers}",
        f"{'clients':>7} {'in-process ev/s':>16} {'p50/p99 ms':>13} {'service ev/s':>13} "
        f"{'p50/p99 ms':>13} {'service/in-process':>19}",
    ]
    for level in levels:
        s = level.summary()
        lines.append(
            f"{level.clients:>7} {s['local_events_per_s']:>16.0f} "
            f"{s['local_p50_ms']:>6.1f}/{s['local_p99_ms']:<6.1f} "
            f"{s['service_events_per_s']:>13.0f} "
            f"{s['service_p50_ms']:>6.1f}/{s['service_p99_ms']:<6.1f} {s['ratio']:>19.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1000, help="events per path and round")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.events < 1 or args.repeats < 1 or min(args.clients) < 1:
        parser.error("--events, --repeats and --clients must be positive")
    given = os.environ.get(URI_ENV)
    if given:
        levels = measure(
            given, args.clients, events=args.events, repeats=args.repeats, workers=args.workers
        )
    else:
        with MongodServer() as server:
            levels = measure(
                server.uri,
                args.clients,
                events=args.events,
                repeats=args.repeats,
                workers=args.workers,
            )
    print(table(levels, args.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
