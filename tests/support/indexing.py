"""Jobs for the indexing tests: a pipeline, a metadata chain and the files a job writes."""

from __future__ import annotations

import posixpath
import uuid
from typing import Any

from datacatalog.catalog import Catalog
from datacatalog.jobs import Job

PIPELINE_ID = "tests.indexing"
PIPELINE: dict[str, Any] = {"id": PIPELINE_ID, "components": [{"image": "example/indexing:1"}]}
METADATA = [
    {"experiment_design_id": "design-idx"},
    {"experiment_id": "experiment-idx", "experiment_design_id": "design-idx"},
    {"sample_id": "sample-idx", "experiment_id": "experiment-idx"},
    {"measurement_id": "measurement-idx", "sample_id": "sample-idx"},
]
OUTPUTS = {
    "out/a.png": b"\x89PNG fake image",
    "out/b.csv": b"x,y\n1,2\n",
    "out/nested/c.fastq.gz": b"@read\nACGT\n+\nIIII\n",
    "logs/run.log": b"started\nfinished\n",
    "result.json": b'{"ok": true}',
}


def make_job(
    catalog: Catalog,
    system: str,
    *,
    state: str = "FINISHED",
    archive_patterns: list[Any] | None = None,
    product_patterns: list[Any] | None = None,
    data: dict[str, Any] | None = None,
) -> Job:
    """Create a job archiving to ``system`` and drive it to ``state``."""
    plan = catalog.jobs.plan(
        pipeline=PIPELINE_ID,
        metadata={"measurement_id": "measurement-idx"},
        data=data if data is not None else {"run": uuid.uuid4().hex},
        archive_system=system,
        archive_patterns=archive_patterns,
        product_patterns=product_patterns,
    )
    job, _created = catalog.jobs.create(plan)
    if state in ("RUNNING", "FINISHED"):
        job = catalog.jobs.send(job.uuid, "run").job
    if state == "FINISHED":
        job = catalog.jobs.send(job.uuid, "finish").job
    return job


def put(catalog: Catalog, job: Job, relative: str, data: bytes) -> str:
    """Write ``data`` under the job's archive path; return the catalog path."""
    system = catalog.storage.get(job.archive_system)
    path = f"{job.archive_path}/{relative}"
    system.makedirs(posixpath.dirname(path))
    with system.fs.open(system.resolve(path), "wb") as stream:
        stream.write(data)
    return path


def put_outputs(catalog: Catalog, job: Job, outputs: dict[str, bytes] | None = None) -> None:
    """Write the standard outputs (or ``outputs``) into the job's archive path."""
    for relative, data in (OUTPUTS if outputs is None else outputs).items():
        put(catalog, job, relative, data)
