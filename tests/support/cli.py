"""The command line in tests: in process through click's CliRunner (:class:`CLI`), or as
a real subprocess on a prepared catalog (:class:`Runner`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from datacatalog.catalog import Catalog
from datacatalog.cli import cli
from datacatalog.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SAMPLE = "sample.demo.1"
PROCESS_WAIT = 60.0  # generous: the machine may be busy; a passing run takes seconds


@dataclass
class CLI:
    """Runs ``datacatalog`` with the global options of one engine."""

    base: list[str]
    data_dir: Path

    def __call__(self, *args: str, input: str | None = None) -> Result:
        """Run a command; never raises on a non-zero exit."""
        return CliRunner().invoke(cli, [*self.base, *args], input=input, catch_exceptions=False)

    def json(self, *args: str, input: str | None = None, code: int = 0) -> Any:
        """Run a command with ``--json``, check its exit code and parse its stdout."""
        result = self("--json", *args, input=input)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return json.loads(result.stdout)

    def fails(self, code: int, *args: str, input: str | None = None) -> dict[str, Any]:
        """Run with ``--json``; expect ``code``, one stderr line and an error body."""
        result = self("--json", *args, input=input)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        body = json.loads(result.stdout)["error"]
        assert set(body) == {"code", "message", "details"}
        one_line = " ".join(part.strip() for part in body["message"].splitlines())
        assert lines[0] == f"error: {one_line}"
        return dict(body)


def create_job(dc: CLI, *extra: str) -> dict[str, Any]:
    """Create the example job for SAMPLE; return the ``jobs create`` JSON."""
    out: dict[str, Any] = dc.json(
        "jobs", "create", "--pipeline", "demo-stats", "--sample-id", SAMPLE, *extra
    )
    return out


@dataclass
class Runner:
    """Runs ``datacatalog`` in a subprocess on one catalog."""

    data_dir: Path
    base: list[str]
    env: dict[str, str]

    def catalog(self) -> Catalog:
        uri = self.env.get("DATACATALOG_MONGODB_URI")
        overrides: dict[str, Any] = {"data_dir": self.data_dir}
        if uri:
            overrides.update(
                mongodb_uri=uri, mongodb_database=self.env["DATACATALOG_MONGODB_DATABASE"]
            )
        return Catalog.open(settings=Settings.load(env={}, **overrides))

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "datacatalog.cli", *self.base, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        process = self.start(*args)
        stdout, stderr = process.communicate(timeout=PROCESS_WAIT)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def job_count(self) -> int:
        with self.catalog() as catalog:
            return catalog.store.count("job", {})


def make_runner(tmp_path: Path, extra_env: dict[str, str] | None = None) -> Runner:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
    # The zero-configuration engine the test session chose (tests/conftest.py) stays.
    env["DATACATALOG_LOCAL_ENGINE"] = os.environ.get("DATACATALOG_LOCAL_ENGINE", "json")
    data_dir = tmp_path / "data"
    env["DATACATALOG_DATA_DIR"] = str(data_dir)
    env.update(extra_env or {})
    runner = Runner(data_dir, [], env)
    with runner.catalog() as catalog:
        catalog.pipelines.register(json.loads((EXAMPLES / "pipeline.json").read_text()))
        import yaml

        catalog.metadata.load(yaml.safe_load((EXAMPLES / "metadata.yaml").read_text()))
    return runner


def only_job(runner: Runner) -> Any:
    with runner.catalog() as catalog:
        (job,) = catalog.jobs.find()
        history = catalog.jobs.history(job.uuid)
        files = catalog.indexing.files(job.uuid) if job.state == "FINISHED" else []
        return job, history, files


def wait_for(path: Path) -> str:
    """The text of a file a child process writes once it runs."""
    deadline = time.monotonic() + PROCESS_WAIT
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")
