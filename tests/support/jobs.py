"""A catalog for job tests: two pipelines and a small metadata chain on one store.

:func:`make_world` builds it (the ``world`` fixture of ``tests/conftest.py`` calls it);
:func:`nothing_written` checks a refusal left the jobs alone; :func:`lapse` leaves the
lease a dead holder leaves; :func:`spy` counts a store's calls by method.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from datacatalog.catalog import Catalog
from datacatalog.clock import utc_now
from datacatalog.identifiers import typed_uuid
from datacatalog.jobs import Job, JobPlan, JobService
from datacatalog.pipelines import Pipeline
from datacatalog.settings import Settings
from datacatalog.store import Store

SECRET = "test-secret-" + "x" * 32
METADATA: list[dict[str, Any]] = [
    {"experiment_design_id": "design.jobs"},
    {"experiment_id": "experiment.jobs.1", "experiment_design_id": "design.jobs"},
    {"experiment_id": "experiment.jobs.2", "experiment_design_id": "design.jobs"},
    {"sample_id": "sample.jobs.1", "experiment_id": "experiment.jobs.1"},
    {"sample_id": "sample.jobs.2", "experiment_id": "experiment.jobs.2"},
    {"measurement_id": "measurement.jobs.1", "sample_id": "sample.jobs.1"},
    {"measurement_id": "measurement.jobs.2", "sample_id": "sample.jobs.2"},
]
M1 = typed_uuid("measurement.jobs.1", "measurement")
M2 = typed_uuid("measurement.jobs.2", "measurement")


@dataclass
class World:
    """A catalog with registered pipelines and metadata, archiving under ``data_dir``."""

    catalog: Catalog
    store: Store
    data_dir: Path
    pipeline: Pipeline
    other_pipeline: Pipeline

    @property
    def jobs(self) -> JobService:
        return self.catalog.jobs

    def admin(self) -> str:
        return self.jobs.admin_token()

    def plan(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        pipeline: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> JobPlan:
        return self.jobs.plan(
            pipeline=pipeline or self.pipeline.uuid,
            metadata={"measurement_id": "measurement.jobs.1"} if metadata is None else metadata,
            data=data,
            **options,
        )

    def new_job(self, data: Mapping[str, Any] | None = None, **options: Any) -> Job:
        setup = options.pop("setup_archive_path", True)
        job, created = self.jobs.create(self.plan(data, **options), setup_archive_path=setup)
        assert created
        return job

    def job_count(self) -> int:
        return self.store.count("job", {})

    def archive_dir(self, job: Job) -> Path:
        """Where the job's archive path is on the local disk."""
        return Path(self.catalog.storage.get(job.archive_system).resolve(job.archive_path))


def make_world(store: Store, data_dir: Path) -> World:
    """Register two pipelines and a metadata chain on ``store``."""
    settings = Settings.load(env={}, data_dir=data_dir, secret=SECRET)
    catalog = Catalog(store, settings=settings)
    pipeline, _ = catalog.pipelines.register(
        {"id": "tests.align", "components": [{"image": "align:1.0"}]}
    )
    other, _ = catalog.pipelines.register(
        {"id": "tests.count", "components": [{"image": "count:2.1"}]}
    )
    catalog.metadata.load(METADATA)
    return World(catalog, store, data_dir, pipeline, other)


@contextmanager
def nothing_written(world: World, job: Job | None = None) -> Iterator[None]:
    """Check that the block leaves the job count (and ``job``, when given) unchanged."""
    count = world.job_count()
    before = world.store.get("job", {"uuid": job.uuid}) if job is not None else None
    yield
    assert world.job_count() == count
    if job is not None:
        assert world.store.get("job", {"uuid": job.uuid}) == before


def lapse(world: World, job: Job, *, holder: str = "driver-dead", ago: float = 60.0) -> None:
    """Leave the lease a holder that died ``ago`` seconds past its expiry would leave."""
    expired = utc_now() - timedelta(seconds=ago)
    world.store.update(
        "job",
        {"uuid": job.uuid},
        {
            "$set": {
                "lease": {
                    "holder": holder,
                    "kind": "driver",
                    "host": "node-gone",
                    "pid": 4242,
                    "since": expired - timedelta(seconds=30),
                    "renewed": expired - timedelta(seconds=30),
                    "expires": expired,
                    "ttl": 30.0,
                    "taken_over": None,
                }
            }
        },
    )


_CALLS = ("find", "get", "count", "insert_if_absent", "update", "bulk_upsert")


def spy(
    store: Store, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...] = _CALLS
) -> Counter[str]:
    """Count the store's calls to ``names`` by method name."""
    calls: Counter[str] = Counter()
    for name in names:
        method = getattr(store, name)

        def counted(*args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _method(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return calls
