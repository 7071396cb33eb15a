"""``datacatalog serve --workers N``: several uvicorn worker processes serve one catalog.

The service runs in its own process on a real MongoDB (workers need a shared server);
the test makes jobs through the Python API, then sends events to them over HTTP and
checks every event landed once. Every wait is bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from datacatalog.catalog import Catalog
from datacatalog.errors import InvalidRequestError
from datacatalog.service.server import serve, settings_environment
from datacatalog.settings import Settings
from tests.support.service import REQUEST_TIMEOUT, free_port, wait_until_ready

pytestmark = pytest.mark.slow

SECRET = "workers-secret-" + "w" * 32


@pytest.fixture
def served(tmp_path: Path, mongo_uri: str, database_name: str) -> Iterator[tuple[Settings, str]]:
    """A two-worker service on the test server, and its settings."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = Settings.load(
        env={},
        data_dir=tmp_path / "data",
        mongodb_uri=mongo_uri,
        mongodb_database=database_name,
        secret=SECRET,
        service_url=base_url,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
    env.update(settings_environment(settings, secret=SECRET))
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "datacatalog.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(process, base_url, log)
        yield settings, base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        with Catalog.open(settings=settings) as catalog:
            catalog.store.drop_database()


def test_events_sent_to_several_workers_all_land_once(served: tuple[Settings, str]) -> None:
    settings, _base_url = served
    with Catalog.open(settings=settings) as catalog:
        pipeline, _ = catalog.pipelines.register(
            {"id": "tests.workers", "components": [{"image": "w:1"}]}
        )
        catalog.metadata.load([{"experiment_design_id": "design.workers"}])
        hooks = []
        for n in range(4):
            plan = catalog.jobs.plan(
                pipeline=pipeline.uuid,
                metadata={"experiment_design_id": "design.workers"},
                data={"n": n},
            )
            job, _ = catalog.jobs.create(plan, setup_archive_path=False)
            hooks.append((job.uuid, catalog.jobs.webhook_url(job.uuid)))

        def drive(hook: tuple[str, str]) -> list[int]:
            _uuid, url = hook
            with httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False) as client:
                codes = [client.post(url, json={"name": "run"}).status_code]
                codes += [
                    client.post(url, json={"name": "update", "data": {"i": i}}).status_code
                    for i in range(10)
                ]
            return codes

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(drive, hooks))

        assert all(code == 200 for codes in results for code in codes), results
        for job_uuid, _url in hooks:
            names = [entry.name for entry in catalog.jobs.history(job_uuid)]
            assert names == ["create", "run", *["update"] * 10]


@pytest.mark.parametrize("workers", [0, 65, True, 1.5])
def test_a_bad_number_of_workers_is_refused_before_listening(workers: object) -> None:
    settings = Settings.load(env={}, data_dir=Path("/nonexistent-never-made"), secret=SECRET)
    with pytest.raises(InvalidRequestError, match="workers must be an integer from 1 to 64"):
        serve(settings, host="127.0.0.1", port=free_port(), workers=workers)  # type: ignore[arg-type]


def test_the_workers_environment_reads_back_as_the_same_settings(tmp_path: Path) -> None:
    settings = Settings.load(
        env={},
        data_dir=tmp_path,
        mongodb_uri="mongodb://db.example.org/",
        mongodb_database="other",
        storage_systems={"mem": "memory://x"},
        max_body_bytes=4096,
        lock_timeout=2.5,
    )
    environment = settings_environment(settings, secret="s" * 40)
    assert Settings.load(env=environment) == Settings.load(
        env={}, **{**settings.__dict__, "secret": "s" * 40}
    )
