"""A small analysis of one measurement, for trying `datacatalog populate` and `run`.

    python3 examples/analyze.py MEASUREMENT_ID --out DIRECTORY

Writes ``DIRECTORY/summary.json``: the measurement, the job's parameters (from
``DATACATALOG_PARAMETERS``, which populate and run set) and a histogram of made-up
readings with ``bins`` bins (default 8). The readings are drawn from a generator seeded
by the measurement id, so the same measurement always gives the same file. Stands in for
your own script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measurement", help="the measurement id")
    parser.add_argument("--out", required=True, type=Path, help="the directory to write to")
    args = parser.parse_args(argv)
    parameters = json.loads(os.environ.get("DATACATALOG_PARAMETERS") or "{}")
    bins = int(parameters.get("bins", 8))
    if not args.out.is_dir():
        print(f"analyze.py: {args.out} is not a directory", file=sys.stderr)
        return 2
    seed = int.from_bytes(hashlib.sha256(args.measurement.encode()).digest()[:8], "big")
    readings = [random.Random(seed + i).gauss(0.5, 0.15) for i in range(96)]
    counts = [0] * bins
    for value in readings:
        counts[min(bins - 1, max(0, int(value * bins)))] += 1
    summary = {"measurement": args.measurement, "parameters": parameters, "histogram": counts}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"{args.measurement}: {len(readings)} readings in {bins} bins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
