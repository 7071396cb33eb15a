#!/usr/bin/env python3
# fmt: off
#SBATCH --job-name=populate-demo-stats
#SBATCH --time=12:00:00
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --signal=B:TERM@300
# fmt: on
"""Run demo-stats on every measurement of an experiment, on a dask-jobqueue SLURM cluster.

    sbatch --export=ALL,EXPERIMENT=experiment.demo.1 examples/slurm-populate.py

This batch job is small: it plans the jobs (one per measurement; missing ones are created
in batches), skips those that are up to date, and keeps each job's bookkeeping (lease,
events, output indexing) while the analyses run on SLURM jobs that dask-jobqueue submits
and scales. Submit it again after some analyses failed, after a fix, or after the time
limit: only what is missing or failed runs. A second copy submitted by mistake finds every
job held by the first or done. SLURM sends SIGTERM before the time limit (--signal above)
or on scancel: running analyses are stopped, their jobs fail with reason "cancelled" and
are run again by the next submission.

Needs ``pip install 'datacatalog[hpc]'`` (dask-jobqueue), the shared catalog's settings
in the environment (``DATACATALOG_MONGODB_URI``, ``DATACATALOG_SECRET``), an archive on a
filesystem the compute nodes share, and ``analyze.py`` there.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from dask_jobqueue import SLURMCluster

from datacatalog.catalog import Catalog
from datacatalog.populate import PopulateRun
from datacatalog.populate.executors import DaskBackend

EXPERIMENT = os.environ.get("EXPERIMENT", "experiment.demo.1")
MAX_NODES = int(os.environ.get("MAX_NODES", "20"))


def main() -> int:
    # One single-core worker per SLURM job, scaled between 0 and MAX_NODES with the load.
    cluster = SLURMCluster(
        cores=1,
        processes=1,
        memory="4GB",
        walltime="02:00:00",
        queue=os.environ.get("QUEUE", "normal"),
        job_extra_directives=["--signal=B:TERM@120"],
    )
    cluster.adapt(minimum_jobs=0, maximum_jobs=MAX_NODES)
    runs: list[PopulateRun] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        for run in runs:
            run.stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # As many jobs at once as the cluster may have workers (it has none yet: it adapts).
    backend = DaskBackend(cluster.scheduler_address, workers=MAX_NODES)
    try:
        with Catalog.open() as catalog:
            report = catalog.jobs.populate(
                pipeline="demo-stats",
                metadata={"experiment_id": EXPERIMENT},
                level="measurement",
                parameters={"bins": 8},
                command=["python3", "analyze.py", "{entity_id}", "--out", "{archive_path}"],
                executor=backend,
                retries=1,
                timeout=3300,
                max_failures=50,
                on_start=runs.append,
            )
    finally:
        backend.close()
        cluster.close()
    print(report.counts)
    for outcome in report.outcomes:
        if outcome.outcome in ("failed", "cancelled", "stale", "refused"):
            print(f"{outcome.entity.id}\t{outcome.job}\t{outcome.outcome}\t{outcome.message}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
