"""Faults on real processes: a paused and a killed mongod, a paused service, no server.

Each test breaks a real ``mongod`` (and, where named, a real service process) while work
is under way, then checks what the catalog holds: no event lost or duplicated, indexing
converging to the records an undisturbed run makes, and every call failing within the
configured database timeout with the project's ``unavailable`` error (exit code 8, HTTP
503 with the error body) instead of hanging. Calls that could hang run under a watchdog
that is many times the configured timeout: it detects a hang, it does not time anything.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from datacatalog import provenance
from datacatalog.catalog import Catalog
from datacatalog.errors import DataCatalogError, UnavailableError
from datacatalog.jobs import Job
from datacatalog.settings import Settings
from datacatalog.store import connect
from tests.faults.harness import (
    SECRET,
    ControlledMongod,
    ServiceProcess,
    free_port,
    paused,
    wait_until,
)

pytestmark = [pytest.mark.mongod, pytest.mark.slow, pytest.mark.faults]

WRITERS = 4
WATCHDOG = 60.0  # seconds: far beyond any configured timeout; only a hang reaches it


def settings_for(data_dir: Path, timeout: float, **extra: Any) -> Settings:
    # A short failover budget: a single server that is down has no election to wait for.
    extra.setdefault("mongodb_failover", 2.0)
    return Settings.load(env={}, data_dir=data_dir, secret=SECRET, mongodb_timeout=timeout, **extra)


@contextmanager
def opened(uri: str, data_dir: Path, timeout: float, database: str = "faults") -> Iterator[Catalog]:
    catalog = Catalog.open(uri, settings=settings_for(data_dir, timeout), database=database)
    try:
        yield catalog
    finally:
        catalog.close()


def prepare(catalog: Catalog, data: dict[str, Any] | None = None) -> Job:
    pipeline, _ = catalog.pipelines.register(
        {"id": "tests.faults", "components": [{"image": "faults:1.0"}]}
    )
    catalog.metadata.load(
        [
            {"experiment_id": "experiment.faults"},
            {"sample_id": "s.faults", "experiment_id": "experiment.faults"},
        ]
    )
    plan = catalog.jobs.plan(
        pipeline=pipeline.uuid, metadata={"sample_id": "s.faults"}, data=data or {}
    )
    job, _ = catalog.jobs.create(plan)
    catalog.jobs.send(job.uuid, "run")
    return job


def within_watchdog(call: Callable[[], object]) -> BaseException | None:
    """Run ``call`` in a thread; return what it raised (None if it returned)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed back to the test, which judges it
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(WATCHDOG)
    assert outcome, f"the call hung for {WATCHDOG:g} s instead of failing"
    return outcome[0]


# -- four writers, a paused service, a paused database -------------------------------------


class Writer(threading.Thread):
    """Streams ``update`` events with idempotency keys, retrying every failure."""

    def __init__(self, number: int, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.number = number
        self.url = url
        self.stop = stop
        self.accepted: list[str] = []
        self.problems: Counter[str] = Counter()
        self.refused: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=3.0) as client:
            sent = 0
            while not self.stop.is_set() or sent < 10:
                key = f"writer-{self.number}-{sent}"
                self._deliver(client, key, sent)
                sent += 1

    def _deliver(self, client: httpx.Client, key: str, n: int) -> None:
        body = {"name": "update", "data": {"writer": self.number, "n": n}, "event_id": key}
        while True:
            try:
                response = client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                self.problems[type(exc).__name__] += 1
                time.sleep(0.05)
                continue
            if response.status_code == 200:
                self.accepted.append(key)
                return
            if response.status_code == 503:
                assert response.json()["error"]["code"] == "unavailable"
                self.problems["503"] += 1
                time.sleep(0.05)
                continue
            self.refused.append(f"{response.status_code} {response.text[:200]}")
            return


def test_writers_lose_and_repeat_nothing_through_pauses(
    mongod: ControlledMongod, service: ServiceProcess, tmp_path: Path, fast_timeout: float
) -> None:
    with opened(mongod.uri, tmp_path, fast_timeout) as catalog:
        job = prepare(catalog)
        token = catalog.jobs.job_token(job.uuid)
        url = f"{service.url}/jobs/{job.uuid}/events?token={token}"
        stop = threading.Event()
        writers = [Writer(n, url, stop) for n in range(WRITERS)]
        for writer in writers:
            writer.start()
        wait_until(lambda: all(w.accepted for w in writers), timeout=60, what="first events")
        with paused(service):
            time.sleep(4.0)  # longer than the clients' 3 s timeout: they time out and retry
        wait_until(lambda: all(len(w.accepted) > 15 for w in writers), timeout=60, what="more")
        with paused(mongod):
            time.sleep(4.0)  # longer than the service's database timeout: it answers 503
        wait_until(lambda: all(len(w.accepted) > 30 for w in writers), timeout=60, what="more")
        stop.set()
        for writer in writers:
            writer.join(WATCHDOG)
            assert not writer.is_alive()

        problems = sum((w.problems for w in writers), Counter())
        assert problems["ReadTimeout"] > 0, problems  # the service pause was felt
        assert problems["503"] > 0, problems  # so was the database pause
        assert not [r for w in writers for r in w.refused]

        sent = [key for w in writers for key in w.accepted]
        history = catalog.jobs.history(job.uuid)
        keys = Counter(e.event_id for e in history if e.name == "update")
        assert sorted(keys) == sorted(sent)  # nothing lost, nothing invented
        assert set(keys.values()) == {1}  # nothing applied twice
        by_key = {e.event_id: e.data for e in history if e.name == "update"}
        for writer in writers:
            for n, key in enumerate(writer.accepted):
                assert by_key[key] == {"writer": writer.number, "n": n}


# -- a database killed in the middle of indexing -------------------------------------------


def _write_outputs(catalog: Catalog, job: Job, count: int) -> Path:
    root = Path(catalog.storage.get(job.archive_system).resolve(job.archive_path))
    for n in range(count):
        target = root / f"part-{n // 100}" / f"out-{n:05d}.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"output {n}\n")
    return root


def _records(catalog: Catalog, job: Job) -> list[tuple[Any, ...]]:
    return sorted(
        (f.uuid, f.name, f.size, f.sha256, f.level, tuple(f.generated_by))
        for f in catalog.indexing.files(job.uuid)
    )


def test_indexing_converges_after_the_database_is_killed(
    mongod: ControlledMongod, tmp_path: Path, fast_timeout: float
) -> None:
    files = 1200
    with opened(mongod.uri, tmp_path, fast_timeout) as catalog:
        job = prepare(catalog)
        root = _write_outputs(catalog, job, files)
        catalog.jobs.send(job.uuid, "finish")
        killed = []

        def kill_after_first_batch(progress: Any) -> None:
            if progress.written and not killed:
                killed.append(progress.written)
                mongod.kill()

        problem = within_watchdog(
            lambda: catalog.indexing.index(
                job.uuid,
                fixity=True,
                transition=True,
                batch_size=200,
                progress=kill_after_first_batch,
            )
        )
        assert killed and killed[0] < files
        assert isinstance(problem, UnavailableError), repr(problem)

        mongod.restart()
        interrupted = catalog.jobs.get(job.uuid)
        assert interrupted.state == "INDEXING"  # the run stopped half way, visibly
        report = catalog.indexing.index(job.uuid, fixity=True, transition=True)
        assert report.written == files
        assert catalog.jobs.get(job.uuid).state == "FINISHED"
        converged = _records(catalog, job)

    # An undisturbed run over the same archive, in a database of its own.
    with opened(mongod.uri, tmp_path, fast_timeout, database="reference") as reference:
        same = prepare(reference)
        assert same.uuid == job.uuid and same.archive_path == job.archive_path
        reference.jobs.send(same.uuid, "finish")
        reference.indexing.index(same.uuid, fixity=True, transition=True)
        assert converged == _records(reference, same)
    assert len(converged) == files
    for _uuid, name, size, sha256, _level, generated_by in converged:
        content = (root / Path(name).relative_to(job.archive_path)).read_bytes()
        assert (size, sha256) == (len(content), hashlib.sha256(content).hexdigest())
        assert generated_by == (job.uuid,)


# -- no server, or one that does not answer --------------------------------------------------


def _public_calls(catalog: Catalog, job: Job) -> dict[str, Callable[[], object]]:
    """One call of every public area of the Python API on ``job``."""
    jobs = catalog.jobs
    return {
        "jobs.get": lambda: jobs.get(job.uuid),
        "jobs.history": lambda: jobs.history(job.uuid),
        "jobs.find": lambda: jobs.find(state="RUNNING"),
        "jobs.send": lambda: jobs.send(job.uuid, "update", data={"x": 1}, event_id="k"),
        "jobs.plan": lambda: jobs.plan(
            pipeline="tests.faults", metadata={"sample_id": "s.faults"}, data={"other": 1}
        ),
        "jobs.purge(dry_run)": lambda: jobs.purge(job.uuid, token=jobs.admin_token(), dry_run=True),
        "pipelines.register": lambda: catalog.pipelines.register(
            {"id": "tests.faults.2", "components": [{"image": "x:1"}]}
        ),
        "metadata.load": lambda: catalog.metadata.load([{"experiment_id": "experiment.2"}]),
        "indexing.index": lambda: catalog.indexing.index(job.uuid),
        "indexing.files": lambda: catalog.indexing.files(job.uuid),
        "provenance.lineage": lambda: provenance.lineage(catalog.store, "/products/none"),
    }


def test_a_server_that_does_not_answer_fails_every_call(
    mongod: ControlledMongod, tmp_path: Path, fast_timeout: float
) -> None:
    with opened(mongod.uri, tmp_path, fast_timeout) as catalog:
        job = prepare(catalog)
        calls = _public_calls(catalog, job)
        with paused(mongod):
            for name, call in calls.items():
                problem = within_watchdog(call)
                assert isinstance(problem, UnavailableError), (name, repr(problem))
                assert "DATACATALOG_MONGODB_TIMEOUT" in str(problem), name
        # Once the server answers again, so does the same catalog.
        assert catalog.jobs.get(job.uuid).uuid == job.uuid


@pytest.mark.parametrize("where", ["closed port", "paused server"])
def test_opening_an_unreachable_server_fails_in_python_and_cli(
    mongod: ControlledMongod, tmp_path: Path, where: str
) -> None:
    uri = f"mongodb://127.0.0.1:{free_port()}/" if where == "closed port" else mongod.uri
    context = paused(mongod) if where == "paused server" else _nothing()
    with context:
        problem = within_watchdog(
            lambda: Catalog.open(uri, settings=settings_for(tmp_path, 1.0), database="other")
        )
        assert isinstance(problem, UnavailableError), repr(problem)
        assert "within 1 s" in str(problem)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "datacatalog.cli",
                "--json",
                "--mongodb-uri",
                uri,
                "jobs",
                "list",
            ],
            env={
                "DATACATALOG_MONGODB_TIMEOUT": "1",
                "DATACATALOG_DATA_DIR": str(tmp_path),
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            timeout=WATCHDOG,
            check=False,
        )
    assert result.returncode == 8, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach MongoDB"), result.stderr


def test_the_service_answers_503_while_the_database_does_not(
    mongod: ControlledMongod, service: ServiceProcess, tmp_path: Path, fast_timeout: float
) -> None:
    with opened(mongod.uri, tmp_path, fast_timeout) as catalog:
        job = prepare(catalog)
        token = catalog.jobs.job_token(job.uuid)
    requests = [
        ("GET", "/healthz", None),
        ("GET", "/jobs", None),
        ("GET", f"/jobs/{job.uuid}", None),
        ("GET", f"/jobs/{job.uuid}/history", None),
        ("POST", f"/jobs/{job.uuid}/events?token={token}", {"name": "update"}),
        ("POST", f"/jobs/{job.uuid}/status?status=HEARTBEAT&token={token}", None),
    ]
    with paused(mongod), httpx.Client(base_url=service.url, timeout=WATCHDOG) as client:
        for method, path, body in requests:
            response = client.request(method, path, json=body)
            assert response.status_code == 503, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == "unavailable" and error["message"], (path, error)
    with httpx.Client(base_url=service.url, timeout=WATCHDOG) as client:
        assert client.get("/healthz").json() == {"status": "ok"}


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def test_no_call_escapes_with_a_foreign_error(
    mongod: ControlledMongod, tmp_path: Path, fast_timeout: float
) -> None:
    """A server killed (not paused) under an open catalog: still only the project's errors."""
    with opened(mongod.uri, tmp_path, fast_timeout) as catalog:
        job = prepare(catalog)
        calls = _public_calls(catalog, job)
        mongod.kill()
        for name, call in calls.items():
            problem = within_watchdog(call)
            assert isinstance(problem, DataCatalogError), (name, repr(problem))
            assert isinstance(problem, UnavailableError), (name, repr(problem))
        mongod.restart()
        store = connect(mongod.uri, database="faults")
        try:
            assert store.count("job", {"uuid": job.uuid}) == 1
        finally:
            store.close()
