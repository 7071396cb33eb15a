"""Shared helpers for the hostile-input, security and fault suites.

``World`` is a catalog on the ``store`` fixture with one pipeline, a metadata chain, a job
and a client of the HTTP service over it. ``snapshot`` reads every document of every
collection, so a test can assert that a refused call wrote nothing at all (not only that
one document is unchanged). New surfaces (lineage queries, runners, the dashboard) add
their calls to the suites that use these helpers; the helpers need no change.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datacatalog.catalog import Catalog
from datacatalog.jobs import Job
from datacatalog.service import create_app
from datacatalog.settings import Settings
from datacatalog.store import COLLECTIONS, Store

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

SECRET = "hostile-secret-" + "h" * 32
PIPELINE = {"id": "tests.hostile", "components": [{"image": "hostile:1.0"}]}
METADATA: list[dict[str, Any]] = [
    {"experiment_design_id": "design.hostile"},
    {"experiment_id": "experiment.hostile", "experiment_design_id": "design.hostile"},
    {"sample_id": "sample.hostile", "experiment_id": "experiment.hostile"},
]


def snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection, in a stable order."""
    return {
        kind: sorted(store.find(kind, {}), key=lambda d: str(d.get("uuid"))) for kind in COLLECTIONS
    }


@contextmanager
def writes_nothing(store: Store) -> Iterator[None]:
    """Assert that the block leaves the whole database as it was."""
    before = snapshot(store)
    yield
    after = snapshot(store)
    for kind in COLLECTIONS:
        assert after[kind] == before[kind], f"the {kind} collection changed"


@dataclass
class World:
    """A catalog with a pipeline, metadata and one RUNNING job, and a service client."""

    catalog: Catalog
    store: Store
    job: Job
    pipeline_uuid: str
    client: TestClient

    @property
    def token(self) -> str:
        return self.catalog.jobs.job_token(self.job.uuid)

    def new_job(self, data: dict[str, Any]) -> Job:
        plan = self.catalog.jobs.plan(
            pipeline=self.pipeline_uuid, metadata={"sample_id": "sample.hostile"}, data=data
        )
        job, _ = self.catalog.jobs.create(plan)
        return job


@contextmanager
def world(store: Store, data_dir: Path, **settings: Any) -> Iterator[World]:
    """Build a :class:`World` on ``store``, its local archive under ``data_dir``."""
    resolved = Settings.load(env={}, data_dir=data_dir, secret=SECRET, **settings)
    catalog = Catalog(store, settings=resolved)
    pipeline, _ = catalog.pipelines.register(PIPELINE)
    catalog.metadata.load(METADATA)
    plan = catalog.jobs.plan(
        pipeline=pipeline.uuid, metadata={"sample_id": "sample.hostile"}, data={"n": 0}
    )
    job, _ = catalog.jobs.create(plan)
    catalog.jobs.send(job.uuid, "run")
    with TestClient(create_app(catalog), raise_server_exceptions=False) as client:
        yield World(catalog, store, catalog.jobs.get(job.uuid), pipeline.uuid, client)


def nested(depth: int, *, kind: str = "dict") -> Any:
    """A value nested ``depth`` levels deep, built without recursion."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value} if kind == "dict" else [value]
    return value


def nested_text(depth: int, *, kind: str = "dict") -> str:
    """The JSON text of :func:`nested`, built as text (no encoder is asked to recurse)."""
    if kind == "dict":
        return '{"k":' * depth + "1" + "}" * depth
    return "[" * depth + "1" + "]" * depth
