"""End to end: the real service in its own process, driven over loopback HTTP.

The job is made through the Python API in a data dir (the embedded catalog), then
``python -m datacatalog.service`` serves that same data dir while the test drives the job
run → finish → index with ``httpx`` through the job's webhook URL, exactly as a remote job
would. The service process is always stopped, and every wait is bounded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from datacatalog.catalog import Catalog
from datacatalog.jobs import Job
from datacatalog.settings import Settings
from tests.support.service import REQUEST_TIMEOUT, START_TIMEOUT, free_port, wait_until_ready

pytestmark = pytest.mark.slow

SECRET = "e2e-secret-" + "k" * 32
MAX_BODY = 2048
METADATA = [
    {"experiment_design_id": "design.e2e"},
    {"experiment_id": "experiment.e2e", "experiment_design_id": "design.e2e"},
    {"sample_id": "sample.e2e", "experiment_id": "experiment.e2e"},
]
OUTPUTS = {"counts.csv": b"gene,count\nlacZ,12\n", "plots/summary.png": b"\x89PNG fake"}


@dataclass
class Running:
    """A service process serving ``settings.data_dir``, and the job made before it started."""

    settings: Settings
    process: subprocess.Popen[bytes]
    log: Path
    base_url: str
    job: Job
    webhook: str
    token: str


def prepare(data_dir: Path, base_url: str) -> tuple[Settings, Job, str, str]:
    """Register a pipeline, metadata and a job in ``data_dir``; write its outputs."""
    settings = Settings.load(
        env={}, data_dir=data_dir, secret=SECRET, service_url=base_url, max_body_bytes=MAX_BODY
    )
    with Catalog.open(settings=settings) as catalog:
        pipeline, _ = catalog.pipelines.register(
            {"id": "tests.e2e", "components": [{"image": "e2e:1.0"}]}
        )
        catalog.metadata.load(METADATA)
        plan = catalog.jobs.plan(
            pipeline=pipeline.uuid, metadata={"sample_id": "sample.e2e"}, data={"k": 3}
        )
        job, _ = catalog.jobs.create(plan)
        root = Path(catalog.storage.get(job.archive_system).resolve(job.archive_path))
        for name, content in OUTPUTS.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content)
        return settings, job, catalog.jobs.webhook_url(job.uuid), catalog.jobs.job_token(job.uuid)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    settings, job, webhook, token = prepare(data_dir, base_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
    env.update(
        DATACATALOG_DATA_DIR=str(data_dir),
        DATACATALOG_SECRET=SECRET,
        DATACATALOG_SERVICE_URL=base_url,
        DATACATALOG_MAX_BODY_BYTES=str(MAX_BODY),
        DATACATALOG_LOCAL_ENGINE="json",  # prepare() made the job in the JSON catalog
    )
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "datacatalog.service",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(process, base_url, log)
        yield Running(settings, process, log, base_url, job, webhook, token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def test_a_remote_job_runs_finishes_and_is_indexed(running: Running) -> None:
    job = running.job
    with httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False) as client:
        run = client.post(running.webhook, json={"name": "run", "data": {"node": "n1"}})
        assert run.status_code == 200, run.text
        assert run.json()["job"]["state"] == "RUNNING"

        finish = client.post(running.webhook, json={"name": "finish", "event_id": "finish-1"})
        assert finish.status_code == 200, finish.text
        again = client.post(running.webhook, json={"name": "finish", "event_id": "finish-1"})
        assert again.json()["applied"] is False

        index = client.post(
            f"{running.base_url}/jobs/{job.uuid}/index",
            json={"fixity": True},
            headers={"Authorization": f"Bearer {running.token}"},
        )
        assert index.status_code == 200, index.text

        state = client.get(f"{running.base_url}/jobs/{job.uuid}").json()["state"]
        assert state == "FINISHED"
        history = client.get(f"{running.base_url}/jobs/{job.uuid}/history").json()["history"]
        assert [e["name"] for e in history] == ["create", "run", "finish", "index", "indexed"]
        files = client.get(f"{running.base_url}/jobs/{job.uuid}/files").json()["files"]
        assert sorted(f["name"].rsplit("/", 1)[-1] for f in files) == ["counts.csv", "summary.png"]

        refused = client.post(f"{running.base_url}/jobs/{job.uuid}/events", json={"name": "retire"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"

    # The service wrote to the shared embedded catalog; this process sees it.
    with Catalog.open(settings=running.settings) as catalog:
        assert catalog.jobs.get(job.uuid).state == "FINISHED"
        assert len(catalog.jobs.history(job.uuid)) == 5


def test_an_oversized_chunked_body_is_refused_by_the_real_server(running: Running) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "run", "data": {"blob": "'
        for _ in range(4):
            yield b"x" * (MAX_BODY // 2)
        yield b'"}}'

    with httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False) as client:
        response = client.post(
            running.webhook, content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        history = client.get(f"{running.base_url}/jobs/{running.job.uuid}/history").json()
    assert [e["name"] for e in history["history"]] == ["create"]


def test_the_access_log_never_holds_a_token(running: Running) -> None:
    with httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False) as client:
        assert client.post(running.webhook, json={"name": "run"}).status_code == 200
    # The access line is written right after the response; allow it a moment.
    deadline = time.monotonic() + 5
    while "token=***" not in running.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = running.log.read_text()
    assert "token=***" in text
    assert running.token not in text


def test_a_port_in_use_is_one_error_line_with_the_table_exit_code(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
        env.update(
            DATACATALOG_DATA_DIR=str(tmp_path / "data"),
            DATACATALOG_SECRET=SECRET,
            DATACATALOG_LOCAL_ENGINE="json",
        )
        for command in (
            [sys.executable, "-m", "datacatalog.cli", "serve", "--port", str(port)],
            [sys.executable, "-m", "datacatalog.service", "--port", str(port)],
            [sys.executable, "-m", "datacatalog.service", "--port", "99999"],
        ):
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=START_TIMEOUT
            )
            assert done.returncode == 2, (command, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "cannot listen on 127.0.0.1:" in lines[0], done.stderr


def test_a_data_dir_that_cannot_be_made_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
    env.update(DATACATALOG_DATA_DIR=str(blocker / "data"))
    done = subprocess.run(
        [sys.executable, "-m", "datacatalog.service", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    # The zero-configuration catalog's server folder is the first thing made: a storage
    # failure (exit 7) naming it.
    assert done.returncode == 7
    assert done.stderr == (
        "datacatalog service: cannot create the local server folder "
        f"{blocker / 'data' / 'mongo'}: Not a directory\n"
    )
