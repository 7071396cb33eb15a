"""Two ``datacatalog`` command-line processes writing to one embedded catalog at once.

Each of two writers runs 20 ``datacatalog jobs event JOB update`` processes one after
the other, both writers at the same time, on the same job of the same embedded catalog
file. Every event must be in the history exactly once: the embedded catalog's file lock
makes the processes take turns, and each event is one conditional update.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS_PER_WRITER = 20
WRITERS = ("left", "right")


def _command(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "datacatalog.cli", "--data-dir", str(data_dir), *args]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
    env["DATACATALOG_LOCK_TIMEOUT"] = "120"
    env["DATACATALOG_LOCAL_ENGINE"] = "json"  # this file is about the JSON catalog's lock
    return env


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(data_dir, *args),
        capture_output=True,
        text=True,
        env=_environment(),
        cwd=ROOT,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_two_cli_processes_lose_no_event(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for args in (
        ("pipelines", "register", str(ROOT / "examples" / "pipeline.json")),
        ("metadata", "load", str(ROOT / "examples" / "metadata.yaml")),
    ):
        done = _run(data_dir, "--json", *args)
        assert done.returncode == 0, done.stderr
    created = _run(
        data_dir, "--json", "jobs", "create", "--pipeline", "demo-stats",
        "--sample-id", "sample.demo.1",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    job = json.loads(created.stdout)["job"]["uuid"]

    failures: list[str] = []

    def writer(name: str) -> None:
        for i in range(EVENTS_PER_WRITER):
            data = json.dumps({"writer": name, "i": i})
            done = _run(data_dir, "jobs", "event", job, "update", "--data", data)
            if done.returncode != 0:
                failures.append(f"{name} {i}: exit {done.returncode}: {done.stderr.strip()}")

    threads = [threading.Thread(target=writer, args=(name,)) for name in WRITERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    shown = _run(data_dir, "--json", "jobs", "history", job)
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)["history"]
    updates = [(e["data"]["writer"], e["data"]["i"]) for e in history if e["name"] == "update"]
    assert len(history) == 1 + len(WRITERS) * EVENTS_PER_WRITER
    assert sorted(updates) == sorted((w, i) for w in WRITERS for i in range(EVENTS_PER_WRITER))
    for name in WRITERS:  # each writer's own events stay in the order it sent them
        assert [i for w, i in updates if w == name] == list(range(EVENTS_PER_WRITER))
    assert len({e["pid"] for e in history if e["name"] == "update"}) == 40
