"""``datacatalog populate`` as real processes: two at once, failures, SIGTERM, dry runs.

The command each job runs is a small shell script (``tests/support/populate_work.py``) that
appends its entity's id to a file outside the archive, so the test counts executions:
every job must run exactly once between two populates started at the same moment on the
real server. Each test waits for real processes, a few seconds at most.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datacatalog.catalog import Catalog
from datacatalog.settings import Settings
from tests.support.hostile import snapshot
from tests.support.populate_catalog import PIPELINE, metadata
from tests.support.populate_work import write_script

PROCESS_WAIT = 120.0  # generous: the machine may be busy; a passing run takes seconds
EXIT_FAILED = 1


@dataclass
class Populate:
    """Runs ``datacatalog populate`` in subprocesses on one catalog."""

    root: Path
    env: dict[str, str]
    script: Path

    @property
    def count_file(self) -> Path:
        return self.root / "count"

    def catalog(self) -> Catalog:
        overrides: dict[str, Any] = {"data_dir": self.root / "data"}
        if "DATACATALOG_MONGODB_URI" in self.env:
            overrides.update(
                mongodb_uri=self.env["DATACATALOG_MONGODB_URI"],
                mongodb_database=self.env["DATACATALOG_MONGODB_DATABASE"],
            )
        return Catalog.open(settings=Settings.load(env={}, **overrides))

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "datacatalog.cli", "--json", "populate", *args],
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def default_args(self, *extra: str) -> list[str]:
        return [
            "--pipeline", "tests.populate", "--experiment-id", "E", "--level", "sample",
            "--workers", "2", *extra, "--", str(self.script), "{entity_id}",
        ]  # fmt: skip

    def __call__(self, *extra: str, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
        process = self.start(*self.default_args(*extra), env=env)
        stdout, stderr = process.communicate(timeout=PROCESS_WAIT)
        return process.returncode, json.loads(stdout) if stdout.strip() else None, stderr

    def executions(self) -> Counter[str]:
        if not self.count_file.exists():
            return Counter()
        return Counter(self.count_file.read_text().split())

    def jobs(self) -> list[dict[str, Any]]:
        with self.catalog() as catalog:
            return catalog.store.find("job", {})


def make(root: Path, samples: int, extra_env: dict[str, str] | None = None) -> Populate:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATACATALOG_")}
    env["DATACATALOG_LOCAL_ENGINE"] = os.environ.get("DATACATALOG_LOCAL_ENGINE", "json")
    env["DATACATALOG_DATA_DIR"] = str(root / "data")
    env["COUNT_FILE"] = str(root / "count")
    env.update(extra_env or {})
    runner = Populate(root, env, write_script(root))
    with runner.catalog() as catalog:
        catalog.pipelines.register(PIPELINE)
        catalog.metadata.load(metadata(samples))
    return runner


@pytest.fixture
def on_server(mongo_uri: str, tmp_path: Path) -> Iterator[Any]:
    """Makes populate runners on fresh databases of the real server (dropped after)."""
    made: list[Populate] = []

    def factory(name: str, samples: int) -> Populate:
        root = tmp_path / name
        root.mkdir()
        database = f"t_populate_{name}_{os.getpid()}_{time.monotonic_ns()}"
        runner = make(
            root,
            samples,
            {"DATACATALOG_MONGODB_URI": mongo_uri, "DATACATALOG_MONGODB_DATABASE": database},
        )
        made.append(runner)
        return runner

    yield factory
    for runner in made:
        with runner.catalog() as catalog:
            catalog.store.drop_database()


@pytest.fixture
def any_engine(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Populate]:
    if engine == "memory":
        yield make(tmp_path, 4)
        return
    factory = request.getfixturevalue("on_server")
    yield factory("any", 4)


def _together(runner: Populate, *extra: str, env: dict[str, str] | None = None) -> list[Any]:
    """Two populates started at once; each one's work knows it by ``POPULATE_TAG``."""
    args = runner.default_args(*extra)
    first = runner.start(*args, env={**(env or {}), "POPULATE_TAG": "first"})
    second = runner.start(*args, env={**(env or {}), "POPULATE_TAG": "second"})
    results = []
    for process in (first, second):
        stdout, stderr = process.communicate(timeout=PROCESS_WAIT)
        results.append((process.returncode, json.loads(stdout), stderr))
    return results


@pytest.mark.parametrize("round_", range(5))
def test_two_populates_at_once_run_every_job_exactly_once(on_server: Any, round_: int) -> None:
    runner = on_server(f"twice{round_}", 40)
    results = _together(runner)
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    executions = runner.executions()
    assert sorted(executions) == [f"s{i:04d}" for i in range(40)]
    assert set(executions.values()) == {1}
    jobs = runner.jobs()
    assert len(jobs) == 40 and {j["state"] for j in jobs} == {"FINISHED"}
    assert all(j.get("lease") is None for j in jobs)
    ran = [report["counts"].get("ran", 0) for _, report, _ in results]
    assert sum(ran) == 40


@pytest.mark.parametrize("round_", range(5))
def test_two_populates_with_three_failing_jobs(on_server: Any, round_: int) -> None:
    """Each job runs once between them; each failing job fails in the populate that ran it.

    The failing jobs fail only once both populates have planned: a job that is already
    FAILED when a populate plans runs again there (that case is
    ``test_failing_jobs_fail_alone_and_run_again_next_time`` in tests/populate). The other
    populate finds such a job held (its exit status says nothing failed there) or, when it
    comes to it after the failure, failed elsewhere (exit status 1).
    """
    runner = on_server(f"failing{round_}", 40)
    failing = {"s0003", "s0017", "s0031"}
    env = {"FAIL_IDS": " ".join(sorted(failing)), "WAIT_FOR": "first second"}
    results = _together(runner, env=env)
    executions = runner.executions()
    assert len(executions) == 40 and set(executions.values()) == {1}, executions
    states = {j["child_of"][0]: j["state"] for j in runner.jobs()}
    with runner.catalog() as catalog:
        names = {e.uuid: e.id for e in catalog.metadata.find("sample")}
    failed = {names[uuid] for uuid, state in states.items() if state == "FAILED"}
    assert failed == failing
    assert Counter(states.values()) == Counter({"FINISHED": 37, "FAILED": 3})
    seen: dict[str, list[tuple[str, str | None]]] = {name: [] for name in failing}
    for code, report, stderr in results:
        outcomes = report["outcomes"]
        assert report["failed"] is any(o["outcome"] == "failed" for o in outcomes)
        assert code == (EXIT_FAILED if report["failed"] else 0), stderr
        for o in outcomes:
            if o["entity"]["id"] in failing:
                seen[o["entity"]["id"]].append((o["outcome"], o["reason"]))
    for name, pair in seen.items():
        ran_here = [p for p in pair if p[0] == "failed" and p[1] != "elsewhere"]
        assert len(ran_here) == 1, (name, pair)  # failed where it ran
        (other,) = [p for p in pair if p is not ran_here[0]]
        assert other in {("held", "held"), ("failed", "elsewhere")}, (name, pair)
    assert EXIT_FAILED in [code for code, _, _ in results]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_cleanly_and_a_second_populate_completes_the_rest(
    on_server: Any, signum: signal.Signals
) -> None:
    runner = on_server(f"signal{int(signum)}", 6)
    process = runner.start(*runner.default_args("--workers", "1"), env={"HANG_ID": "s0002"})
    deadline = time.monotonic() + PROCESS_WAIT
    while "s0002" not in runner.executions():
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=PROCESS_WAIT)
    assert process.returncode == 128 + signum, stderr
    report = json.loads(stdout)
    assert report["counts"] == {"ran": 2, "cancelled": 1, "not_started": 3}
    assert report["stopped"] == signum.name
    jobs = runner.jobs()
    assert not [j for j in jobs if j["state"] == "RUNNING" or j.get("lease") is not None]
    assert Counter(j["state"] for j in jobs) == Counter({"FINISHED": 2, "FAILED": 1, "CREATED": 3})
    (cancelled,) = [j for j in jobs if j["state"] == "FAILED"]
    assert cancelled["history"][-1]["data"]["reason"] == "cancelled"

    code, again, stderr = runner()
    assert code == 0, stderr
    assert again["counts"] == {"ran": 4, "up_to_date": 2}
    assert {j["state"] for j in runner.jobs()} == {"FINISHED"}
    executions = runner.executions()
    assert executions["s0002"] == 2 and sum(executions.values()) == 7


def test_a_dry_run_writes_nothing(any_engine: Populate) -> None:
    code, first, stderr = any_engine()
    assert code == 0 and first["counts"] == {"ran": 4}, stderr
    with any_engine.catalog() as catalog:
        before = snapshot(catalog.store)
    code, report, stderr = any_engine("--dry-run")
    assert code == 0, stderr
    assert report["dry_run"] and report["counts"] == {"up_to_date": 4}
    with any_engine.catalog() as catalog:
        assert snapshot(catalog.store) == before
    assert sum(any_engine.executions().values()) == 4


@pytest.mark.parametrize(
    ("args", "code", "named"),
    [
        (["--pipeline", "no.such", "--experiment-id", "E"], 3, "no.such"),
        (["--pipeline", "tests.populate", "--experiment-id", "EMPTY", "--level", "sample"], 2,
         "holds no sample"),
        (["--pipeline", "tests.populate", "--experiment-id", "E", "--level", "plate"], 2, "plate"),
        (["--pipeline", "tests.populate", "--experiment-id", "E", "--executor",
          "dask=tcp://127.0.0.1:1", "--dask-timeout", "1"], 8, "127.0.0.1:1"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_error_and_writes_nothing(
    tmp_path: Path, args: list[str], code: int, named: str
) -> None:
    runner = make(tmp_path, 2)
    with runner.catalog() as catalog:
        before = snapshot(catalog.store)
    process = runner.start(*args, "--", str(runner.script))
    _stdout, stderr = process.communicate(timeout=PROCESS_WAIT)
    assert process.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], stderr
    with runner.catalog() as catalog:
        assert snapshot(catalog.store) == before
    assert not runner.count_file.exists()
