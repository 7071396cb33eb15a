"""Benchmark: ``datacatalog run`` as a whole process, against the same steps by hand.

Both lanes start one process per job on the same warm MongoDB server, in interleaved
rounds, and run the same shell command (it writes one small output file):

* **datacatalog run**: ``datacatalog run --pipeline P --sample-id S --data {"n": i}
  -- sh -c '...'``: create, lease + run, the command, the file record, finish + index +
  indexed + lease release;
* **by hand**: ``python -c`` with the public API in one process: create the job, send
  ``run``, run the command with ``subprocess``, send ``finish``, then
  ``indexing.index(fixity=True, transition=True)`` — what a script would do without the
  driver (no lease).

The figure is seconds per process (median of the rounds). Run it alone:
``python bench/bench_run.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_driver import server_uri

HERE = Path(__file__).resolve().parent
COMMAND = 'echo "gene,count" > "$DATACATALOG_ARCHIVE_PATH/counts.csv"'
BY_HAND = """
import subprocess, sys
from datacatalog.catalog import Catalog
catalog = Catalog.open()
n = int(sys.argv[1])
plan = catalog.jobs.plan(pipeline="bench.run", metadata={"sample_id": "bench.sample"},
                         data={"lane": "hand", "n": n})
job, _ = catalog.jobs.create(plan)
catalog.jobs.send(job.uuid, "run")
out = catalog.jobs.archive_dir(job)
subprocess.run(["sh", "-c", 'echo "gene,count" > "%s/counts.csv"' % out], check=True)
catalog.jobs.send(job.uuid, "finish")
catalog.indexing.index(job.uuid, fixity=True, transition=True)
catalog.close()
"""


def measure(uri: str, rounds: int, data_dir: Path) -> dict[str, list[float]]:
    """Seconds per process of each lane, one per round."""
    env = {
        **os.environ,
        "DATACATALOG_MONGODB_URI": uri,
        "DATACATALOG_MONGODB_DATABASE": f"bench_run_{os.getpid()}",
        "DATACATALOG_DATA_DIR": str(data_dir),
        "DATACATALOG_SECRET": "bench-secret-" + "0" * 32,
    }
    # Byte-compiled as an installed wheel is.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(HERE.parent / "datacatalog")],
        capture_output=True,
        check=True,
    )
    setup = (
        "from datacatalog.catalog import Catalog\n"
        "c = Catalog.open()\n"
        "c.pipelines.register({'id': 'bench.run', 'components': [{'image': 'bench:1'}]})\n"
        "c.metadata.load([{'experiment_design_id': 'bench.design'},"
        " {'experiment_id': 'bench.experiment', 'experiment_design_id': 'bench.design'},"
        " {'sample_id': 'bench.sample', 'experiment_id': 'bench.experiment'}])\n"
        "c.close()\n"
    )
    subprocess.run([sys.executable, "-c", setup], env=env, check=True)
    lanes: dict[str, Any] = {
        "datacatalog run": lambda n: [
            sys.executable,
            "-m",
            "datacatalog.cli",
            "run",
            "--pipeline",
            "bench.run",
            "--sample-id",
            "bench.sample",
            "--data",
            json.dumps({"lane": "run", "n": n}),
            "--",
            "sh",
            "-c",
            COMMAND,
        ],
        "by hand (one process)": lambda n: [sys.executable, "-c", BY_HAND, str(n)],
    }
    timings: dict[str, list[float]] = {name: [] for name in lanes}
    for n in range(-1, rounds):  # round -1 warms the server and the file cache
        for name, argv in lanes.items():
            started = time.perf_counter()
            subprocess.run(argv(n), env=env, capture_output=True, check=True)
            if n >= 0:
                timings[name].append(time.perf_counter() - started)
    return timings


def table(timings: dict[str, list[float]], where: str) -> str:
    base = statistics.median(timings["by hand (one process)"])
    lines = [f"one job per process on {where}, {len(next(iter(timings.values())))} rounds", ""]
    for name, seconds in timings.items():
        med = statistics.median(seconds)
        lines.append(
            f"{name:<24} {med:.3f} s (min {min(seconds):.3f}, max {max(seconds):.3f})"
            f"  {med / base:.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, server_uri() as (uri, where):
        timings = measure(uri, args.rounds, Path(tmp))
    print(table(timings, where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
