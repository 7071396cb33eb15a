"""The service in tests: in process over FastAPI's test client, or as a real process.

:func:`serve_in_process` builds what the ``service`` fixture gives (a :class:`Service`);
:func:`free_port` and :func:`wait_until_ready` start and wait for a real one.
"""

from __future__ import annotations

import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from datacatalog.catalog import Catalog
from datacatalog.identifiers import typed_uuid
from datacatalog.jobs import Job
from datacatalog.service import create_app
from datacatalog.settings import Settings
from datacatalog.store import Store

with warnings.catch_warnings():
    # Starlette would rather the test client used a fork of httpx; httpx is what we ship.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0
SECRET = "s" * 32
MAX_BODY = 4096
METADATA: list[dict[str, Any]] = [
    {"experiment_design_id": "design.service"},
    {"experiment_id": "experiment.service", "experiment_design_id": "design.service"},
    {"sample_id": "sample.service", "experiment_id": "experiment.service"},
    {"measurement_id": "measurement.service.1", "sample_id": "sample.service"},
    {"measurement_id": "measurement.service.2", "sample_id": "sample.service"},
]
M1 = typed_uuid("measurement.service.1", "measurement")
M2 = typed_uuid("measurement.service.2", "measurement")


@dataclass
class Service:
    """A catalog, a client of the service over it, and one job."""

    catalog: Catalog
    store: Store
    client: TestClient
    job: Job
    pipeline_uuid: str

    def token(self, job: Job | None = None) -> str:
        return self.catalog.jobs.job_token((job or self.job).uuid)

    def admin(self) -> str:
        return self.catalog.jobs.admin_token()

    def new_job(self, data: dict[str, Any], *, measurement: str = "measurement.service.1") -> Job:
        plan = self.catalog.jobs.plan(
            pipeline=self.pipeline_uuid,
            metadata={"measurement_id": measurement},
            data=data,
            agent="tests.agent",
        )
        job, _ = self.catalog.jobs.create(plan)
        return job

    def send(self, event: str, job: Job | None = None) -> None:
        self.catalog.jobs.send((job or self.job).uuid, event)

    def document(self, job: Job | None = None) -> dict[str, Any] | None:
        return self.store.get("job", {"uuid": (job or self.job).uuid})

    def events(self, job: Job | None = None) -> list[str]:
        return [e.name for e in self.catalog.jobs.history((job or self.job).uuid)]

    def archive_dir(self, job: Job | None = None) -> Path:
        target = job or self.job
        system = self.catalog.storage.get(target.archive_system)
        return Path(system.resolve(target.archive_path))


@contextmanager
def serve_in_process(store: Store, data_dir: Path) -> Iterator[Service]:
    """A catalog on ``store`` with one pipeline, a metadata chain and a job, and a client
    of the service over it (the ``service`` fixture of ``tests/conftest.py``)."""
    settings = Settings.load(env={}, data_dir=data_dir, secret=SECRET, max_body_bytes=MAX_BODY)
    catalog = Catalog(store, settings=settings)
    pipeline, _ = catalog.pipelines.register(
        {"id": "tests.service", "components": [{"image": "service:1.0"}]}
    )
    catalog.metadata.load(METADATA)
    plan = catalog.jobs.plan(
        pipeline=pipeline.uuid,
        metadata={"measurement_id": "measurement.service.1"},
        data={"n": 0},
        agent="tests.agent",
    )
    job, _ = catalog.jobs.create(plan)
    with TestClient(create_app(catalog)) as client:
        yield Service(catalog, store, client, job, pipeline.uuid)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the service exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.get(f"{base_url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"the service was not ready within {START_TIMEOUT}s:\n{log.read_text()}")
