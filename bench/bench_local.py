"""Benchmark: the zero-configuration catalog on the managed local MongoDB server.

Two measurements, each against a baseline taken in the same run:

* **job cycle**: one job's create + ``run`` + ``finish`` through the public API on the
  managed server with 100, 1,000 and 10,000 jobs already in the catalog. The baseline is
  the same cycle at the smallest size (goal: the largest size within 1.5x of it), and the
  JSON engine (the earlier default) at small sizes, for comparison.
* **CLI**: ``datacatalog jobs show UUID`` as a new process, with the server warm (running)
  and cold (stopped first, so the command starts it), against the same executable's bare
  start-up (``datacatalog --version``) and the same command on the JSON file (no server
  at all). Goal: warm within 0.1 s of bare start-up. The in-process cost of attaching to
  the warm server and connecting is printed too: it is what the managed server adds.

Run it with ``make bench`` or ``python bench/bench_local.py [--sizes 100,1000] [--cycles N]``.
Everything happens in a temporary data dir whose server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from datacatalog.catalog import Catalog
from datacatalog.local import LocalServer
from datacatalog.settings import Settings
from datacatalog.store import connect
from datacatalog.store.local import local_uri

SECRET = "bench-secret-" + "0" * 32
DATACATALOG = str(Path(sys.executable).with_name("datacatalog"))


class Filler:
    """A catalog that can be grown to a number of jobs and timed on job cycles."""

    def __init__(self, data_dir: Path, engine: str) -> None:
        settings = Settings.load(
            env={"DATACATALOG_DATA_DIR": str(data_dir), "DATACATALOG_LOCAL_ENGINE": engine},
            secret=SECRET,
        )
        self.catalog = Catalog.open(settings=settings)
        self.pipeline, _ = self.catalog.pipelines.register(
            {"id": "bench.local", "components": [{"image": "bench:1"}]}
        )
        self.catalog.metadata.load([{"experiment_design_id": "bench.design"}])
        self.jobs = 0

    def _create(self, number: int) -> str:
        plan = self.catalog.jobs.plan(
            pipeline=self.pipeline.uuid,
            metadata={"experiment_design_id": "bench.design"},
            data={"n": number},
        )
        job, _ = self.catalog.jobs.create(plan, setup_archive_path=False)
        self.jobs += 1
        return job.uuid

    def grow_to(self, size: int) -> None:
        while self.jobs < size:
            self._create(self.jobs)

    def cycle_ms(self, cycles: int) -> float:
        """Median milliseconds of one create + run + finish (adds ``cycles`` jobs)."""
        times = []
        for _ in range(cycles):
            began = time.perf_counter()
            uuid = self._create(self.jobs)
            self.catalog.jobs.send(uuid, "run")
            self.catalog.jobs.send(uuid, "finish")
            times.append((time.perf_counter() - began) * 1000)
        return statistics.median(times)

    def any_job(self) -> str:
        return self._create(self.jobs)

    def close(self) -> None:
        self.catalog.close()


def attach_seconds(data_dir: Path) -> float:
    """Seconds to attach to the warm server and connect (what a command adds)."""
    began = time.perf_counter()
    store = connect(local_uri(data_dir.resolve()))
    store.count("job", {})
    elapsed = time.perf_counter() - began
    store.close()
    return elapsed


def timed_command(args: Sequence[str], env: dict[str, str], repeats: int) -> float:
    """Median seconds of running ``args`` as a new process."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run(args, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="catalog sizes (jobs)")
    parser.add_argument("--json-sizes", default="100,300", help="JSON engine sizes")
    parser.add_argument("--cycles", type=int, default=30, help="cycles timed per size")
    parser.add_argument("--repeats", type=int, default=5, help="runs per CLI command")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    json_sizes = [int(s) for s in args.json_sizes.split(",") if s]

    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        managed_dir = Path(tmp) / "managed"
        try:
            filler = Filler(managed_dir, "mongod")
            for size in sizes:
                filler.grow_to(size)
                rows.append(("managed mongod", size, filler.cycle_ms(args.cycles)))
            job = filler.any_job()
            filler.close()
            attach = statistics.median(attach_seconds(managed_dir) for _ in range(args.repeats))

            env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
            env.update(DATACATALOG_DATA_DIR=str(managed_dir), DATACATALOG_SECRET=SECRET)
            bare = timed_command([DATACATALOG, "--version"], env, args.repeats)
            show = [DATACATALOG, "jobs", "show", job]
            warm = timed_command(show, env, args.repeats)
            cold_times = []
            for _ in range(max(1, args.repeats // 2)):
                LocalServer(managed_dir).stop()
                cold_times.append(timed_command(show, env, 1))
            cold = statistics.median(cold_times)
        finally:
            LocalServer(managed_dir).stop()

        json_dir = Path(tmp) / "json"
        json_filler = Filler(json_dir, "json")
        for size in json_sizes:
            json_filler.grow_to(size)
            rows.append(("JSON file (earlier default)", size, json_filler.cycle_ms(args.cycles)))
        json_job = json_filler.any_job()
        json_filler.close()
        json_env = {
            **env,
            "DATACATALOG_DATA_DIR": str(json_dir),
            "DATACATALOG_LOCAL_ENGINE": "json",
        }
        json_show = timed_command([DATACATALOG, "jobs", "show", json_job], json_env, args.repeats)

    base = rows[0][2]
    print("job create + run + finish (median of", args.cycles, "cycles)")
    print(f"{'engine':<28} {'jobs in it':>10} {'ms/cycle':>10} {'vs managed@' + str(sizes[0]):>16}")
    for engine, size, ms in rows:
        print(f"{engine:<28} {size:>10,} {ms:>10.1f} {ms / base:>15.2f}x")
    largest = [ms for engine, size, ms in rows if engine == "managed mongod"][-1]
    verdict = "met" if largest <= 1.5 * base else "NOT met"
    print(
        f"goal: {sizes[-1]:,} jobs within 1.5x of {sizes[0]:,}: {largest / base:.2f}x ({verdict})"
    )
    print()
    print(f"CLI: `datacatalog jobs show` (median of {args.repeats} runs)")
    print(f"{'command':<36} {'seconds':>8} {'over bare':>10}")
    for name, seconds in (
        ("datacatalog --version (bare)", bare),
        ("jobs show, server warm", warm),
        ("jobs show, server cold (starts it)", cold),
        ("jobs show, JSON file (no server)", json_show),
    ):
        print(f"{name:<36} {seconds:>8.3f} {seconds - bare:>+10.3f}")
    print(f"in-process attach + connect to the warm server: {attach * 1000:.1f} ms")
    verdict = "met" if warm - bare <= 0.1 else "NOT met"
    print(f"goal: warm within 0.1 s of bare start-up: {warm - bare:+.3f} s ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
