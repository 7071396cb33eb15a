"""Jobs in the states a re-run starts from: finished with indexed outputs, or failed
with leftovers in the archive directory."""

from __future__ import annotations

import uuid

from datacatalog.jobs import Job
from tests.support.jobs import World

FILES = {"counts.csv": b"gene,count\nrpoB,1523\n", "plots/counts.png": b"\x89PNG\r\n"}


def new_job(world: World) -> Job:
    return world.new_job({"rerun": uuid.uuid4().hex})


def write(world: World, job: Job, files: dict[str, bytes]) -> None:
    root = world.archive_dir(job)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def finished_job(world: World, files: dict[str, bytes] | None = None) -> Job:
    """A job that ran, wrote ``files`` and had them indexed with sha256 fixity."""
    job = new_job(world)
    world.jobs.send(job.uuid, "run")
    write(world, job, FILES if files is None else files)
    world.jobs.send(job.uuid, "finish")
    world.catalog.indexing.index(job.uuid, fixity=True, transition=True)
    return world.jobs.get(job.uuid)


def failed_job(world: World, leftovers: dict[str, bytes] | None = None) -> Job:
    job = new_job(world)
    world.jobs.send(job.uuid, "run")
    write(world, job, leftovers or {"partial.csv": b"gene,count\nrpoB,"})
    return world.jobs.send(job.uuid, "fail", data={"reason": "callback_raised"}).job
