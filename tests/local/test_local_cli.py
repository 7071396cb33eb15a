"""The command line and the demo on the managed local server (zero configuration).

The module shares one managed server (``shared_local_dir``); the demo test starts its own
in a fresh data dir, as ``make demo`` does on a fresh machine. Every server is stopped at
the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from datacatalog.cli import cli
from datacatalog.local.layout import Layout, lock_is_held

pytestmark = pytest.mark.local_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def _no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DATACATALOG_") and not name.startswith("DATACATALOG_TEST_"):
            monkeypatch.delenv(name)


def run(data_dir: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result


def run_json(data_dir: Path, *args: str, code: int = 0) -> Any:
    return json.loads(run(data_dir, "--json", *args, code=code).stdout)


def test_status_reports_the_running_server(shared_local_dir: Path) -> None:
    report = run_json(shared_local_dir, "local", "status")
    assert report["running"] is True
    assert report["address"].startswith("mongodb://%2F") and report["pid"] > 0
    assert report["version"].startswith("6.") and report["uptime_seconds"] >= 0
    assert report["size_bytes"] > 0 and 0 <= report["idle_left_seconds"] <= 900
    human = run(shared_local_dir, "local", "status").stdout
    for label in ("address", "pid", "version", "uptime", "size on disk", "idle time left"):
        assert label in human


def test_a_job_through_the_command_line_on_the_managed_server(shared_local_dir: Path) -> None:
    data = ("--database", "cli_job_flow")
    run_json(shared_local_dir, *data, "pipelines", "register", str(EXAMPLES / "pipeline.json"))
    run_json(shared_local_dir, *data, "metadata", "load", str(EXAMPLES / "metadata.yaml"))
    created = run_json(
        shared_local_dir, *data, "jobs", "create", "--pipeline", "demo-stats",
        "--sample-id", "sample.demo.1",
    )  # fmt: skip
    uuid = created["job"]["uuid"]
    ran = run_json(shared_local_dir, *data, "jobs", "event", uuid, "run")
    assert ran["applied"] is True and ran["job"]["state"] == "RUNNING"
    run_json(shared_local_dir, *data, "jobs", "event", uuid, "finish")
    shown = run_json(shared_local_dir, *data, "jobs", "show", uuid)
    assert shown["job"]["state"] == "FINISHED"
    assert not (shared_local_dir / "catalog.json").exists()  # not the JSON engine


def test_stop_then_any_command_starts_it_again(shared_local_dir: Path) -> None:
    layout = Layout.for_data_dir(shared_local_dir)
    stopped = run_json(shared_local_dir, "local", "stop")
    assert stopped["stopped"] is True and not lock_is_held(layout.mongod_lock)
    assert run_json(shared_local_dir, "local", "stop")["stopped"] is False
    assert run_json(shared_local_dir, "local", "status")["running"] is False
    run_json(shared_local_dir, "--database", "cli_restart", "pipelines", "list")
    assert lock_is_held(layout.mongod_lock)
    started = run_json(shared_local_dir, "local", "start")
    assert started["pid"] != stopped["pid"] and started["address"].startswith("mongodb://")


def test_local_start_with_a_broken_binary_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "mongod"
    broken.write_text(
        "#!/bin/sh\necho 'error while loading shared libraries: libssl.so.3' >&2\nexit 127\n"
    )
    broken.chmod(0o755)
    monkeypatch.setenv("DATACATALOG_MONGOD", str(broken))
    result = run(tmp_path / "data", "local", "start", code=8)
    assert "shared libraries it needs are missing" in result.stderr
    assert f"command: {broken} --version" in result.stderr


def test_the_demo_runs_twice_on_a_fresh_managed_server(local_data_dir: Path) -> None:
    first = run(local_data_dir, "demo")
    assert "created job" in first.stdout and "finish -> FINISHED" in first.stdout
    second = run(local_data_dir, "demo")
    assert "found the existing job" in second.stdout
    assert Layout.for_data_dir(local_data_dir).has_data()
    assert not (local_data_dir / "catalog.json").exists()
