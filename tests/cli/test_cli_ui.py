"""``datacatalog ui``: the dashboard on the zero-configuration catalog, opened in a browser.

The end-to-end test runs the real command in its own process on a fresh data dir (no
MongoDB URI: the zero-configuration catalog) with ``BROWSER`` naming a small script
that records the URL it was asked to open, then reads the dashboard at that URL. Every
wait is bounded and the process is always stopped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from datacatalog.cli.ui import dashboard_url, open_when_ready
from datacatalog.settings import Settings
from tests.support.clocks import FakeMonotonic
from tests.support.service import free_port

START_TIMEOUT = 60.0


def test_dashboard_urls() -> None:
    assert dashboard_url("127.0.0.1", 8750) == "http://127.0.0.1:8750/ui/"
    assert dashboard_url("0.0.0.0", 9000) == "http://127.0.0.1:9000/ui/"
    assert dashboard_url("::", 9000) == "http://[::1]:9000/ui/"
    assert dashboard_url("::1", 9000) == "http://[::1]:9000/ui/"


def test_the_browser_opens_once_the_service_answers() -> None:
    clock, probes, opened = FakeMonotonic(), iter([False, False, True]), []
    assert open_when_ready(
        "http://x/ui/",
        ready=lambda: next(probes),
        open_browser=lambda url: opened.append(url) or True,
        sleep=clock.sleep,
        clock=clock,
    )
    assert opened == ["http://x/ui/"] and clock.now == pytest.approx(0.2)


def test_no_browser_opens_when_the_service_never_answers() -> None:
    clock, opened = FakeMonotonic(), []
    assert not open_when_ready(
        "http://x/ui/",
        ready=lambda: False,
        open_browser=lambda url: opened.append(url) or True,
        timeout=5,
        sleep=clock.sleep,
        clock=clock,
    )
    assert opened == [] and clock.now >= 5


@pytest.mark.slow
def test_datacatalog_ui_serves_the_zero_configuration_catalog_and_opens_it(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    settings = Settings.load(env={}, data_dir=data_dir, secret="u" * 32)
    from datacatalog.catalog import Catalog

    with Catalog.open(settings=settings) as catalog:
        pipeline, _ = catalog.pipelines.register(
            {"id": "tests.ui", "components": [{"image": "ui:1"}]}
        )
        catalog.metadata.load([{"experiment_id": "experiment.cli.ui"}])
        plan = catalog.jobs.plan(
            pipeline=pipeline.uuid, metadata={"experiment_id": "experiment.cli.ui"}
        )
        job, _ = catalog.jobs.create(plan)
    opened = tmp_path / "opened.txt"
    recorder = tmp_path / "browser.py"
    recorder.write_text(
        f"import pathlib, sys\npathlib.Path({str(opened)!r}).write_text(sys.argv[1])\n",
        encoding="utf-8",
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
    # The zero-configuration engine the test session chose (tests/conftest.py) stays.
    env["DATACATALOG_LOCAL_ENGINE"] = os.environ.get("DATACATALOG_LOCAL_ENGINE", "json")
    env.update(
        DATACATALOG_DATA_DIR=str(data_dir),
        DATACATALOG_SECRET="u" * 32,
        BROWSER=f"{sys.executable} {recorder} %s",
    )
    log = tmp_path / "ui.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "datacatalog.cli", "ui", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not opened.exists() or not opened.read_text():  # a real process: poll it
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no browser was opened:\n{log.read_text()}"
            time.sleep(0.1)
        url = opened.read_text().strip()
        assert url == f"http://127.0.0.1:{port}/ui/"
        page = httpx.get(url, timeout=10, trust_env=False)
        assert page.status_code == 200 and job.uuid in page.text
        assert f"the dashboard is at {url}" in log.read_text()
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def test_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
    # The zero-configuration engine the test session chose (tests/conftest.py) stays.
    env["DATACATALOG_LOCAL_ENGINE"] = os.environ.get("DATACATALOG_LOCAL_ENGINE", "json")
    env["DATACATALOG_DATA_DIR"] = str(tmp_path / "data")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "datacatalog.cli", "ui", "--no-browser", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
