"""Failovers of a real three-member replica set under keyed writers, a stage driver and
an indexing run.

One replica set (three mongods from the same binary on loopback ports, test commands on,
a 2 s election timeout) serves the module. Each test leaves it with three healthy
members. What is checked afterwards is what a user relies on: every accepted event is in
its job's history exactly once, nothing acknowledged was rolled back, no job was created
twice, a driver whose primary died just before ``finish`` still ends FINISHED with its
lease released, and an indexing run across a crash ends with every record.

The figures these tests measure (the stall each writer saw per failover, the events
accepted, present, lost and duplicated) are printed; ``bench/README.md`` quotes them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from datacatalog.catalog import Catalog
from datacatalog.driver import Driver, Payload
from datacatalog.errors import UnavailableError
from datacatalog.jobs import Job
from datacatalog.settings import Settings
from datacatalog.testing.mongod import MongodError, MongodNotInstalled, ReplicaSet
from tests.faults.harness import SECRET, ServiceProcess, wait_until

pytestmark = [pytest.mark.mongod, pytest.mark.slow, pytest.mark.faults]

DATABASE = "failover"
TIMEOUT = 2.0  # seconds each MongoDB call may take (DATACATALOG_MONGODB_TIMEOUT)
BUDGET = 20.0  # seconds a keyed call keeps trying (DATACATALOG_MONGODB_FAILOVER)
WRITERS = 4


@pytest.fixture(scope="module")
def replica_set() -> Iterator[ReplicaSet]:
    try:
        rs = ReplicaSet(3, election_timeout_ms=2000, heartbeat_interval_ms=500).start()
    except MongodNotInstalled as exc:
        pytest.skip(str(exc))
    try:
        yield rs
    finally:
        rs.stop()


@pytest.fixture
def healthy(replica_set: ReplicaSet) -> Iterator[ReplicaSet]:
    """The set with three members up; brought back to that after the test."""
    replica_set.wait_healthy()
    yield replica_set
    for index, member in enumerate(replica_set.members):
        if not member.running:
            replica_set.restart(index)
    replica_set.reconnect()
    replica_set.wait_healthy()


def open_catalog(uri: str, data_dir: Path, *, timeout: float, budget: float) -> Catalog:
    settings = Settings.load(
        env={},
        data_dir=data_dir,
        secret=SECRET,
        mongodb_timeout=timeout,
        mongodb_failover=budget,
    )
    return Catalog.open(uri, settings=settings, database=DATABASE)


def new_job(catalog: Catalog, label: str) -> Job:
    pipeline, _ = catalog.pipelines.register(
        {"id": "tests.failover", "components": [{"image": "failover:1.0"}]}
    )
    catalog.metadata.load([{"experiment_id": "experiment.failover"}])
    plan = catalog.jobs.plan(
        pipeline=pipeline.uuid,
        metadata={"experiment_id": "experiment.failover"},
        data={"label": label},
    )
    job, _ = catalog.jobs.create(plan)
    return job


# -- writers ------------------------------------------------------------------------------


@dataclass
class Calls:
    """What one writer sent: accepted keys, and when each call started and how long it took."""

    accepted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    timings: list[tuple[float, float]] = field(default_factory=list)

    def stall(self, since: float, until: float) -> float:
        """The longest call that was in flight during [since, until]."""
        return max(
            (took for began, took in self.timings if began <= until and began + took >= since),
            default=0.0,
        )


class ApiWriter(threading.Thread):
    """Sends keyed ``update`` events through the Python API; never resends by itself."""

    def __init__(self, number: int, catalog: Catalog, job: Job, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"api-writer-{number}")
        self.number, self.catalog, self.job, self.stop = number, catalog, job, stop
        self.calls = Calls()

    def run(self) -> None:
        sent = 0
        while not self.stop.is_set():
            key = f"api-{self.number}-{sent}"
            began = time.monotonic()
            try:
                self.catalog.jobs.send(self.job.uuid, "update", data={"n": sent}, event_id=key)
            except UnavailableError:
                self.calls.failed.append(key)
            else:
                self.calls.accepted.append(key)
            self.calls.timings.append((began, time.monotonic() - began))
            sent += 1
            time.sleep(0.01)


class HttpWriter(threading.Thread):
    """Sends keyed ``update`` events to the service; resends the same key on a 503."""

    def __init__(self, number: int, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"http-writer-{number}")
        self.number, self.url, self.stop = number, url, stop
        self.calls = Calls()
        self.unavailable = 0
        self.refused: list[str] = []

    def run(self) -> None:
        sent = 0
        with httpx.Client(timeout=60.0) as client:
            while not self.stop.is_set():
                key = f"http-{self.number}-{sent}"
                began = time.monotonic()
                self._deliver(client, key, sent)
                self.calls.timings.append((began, time.monotonic() - began))
                sent += 1
                time.sleep(0.01)

    def _deliver(self, client: httpx.Client, key: str, n: int) -> None:
        body = {"name": "update", "data": {"n": n}, "event_id": key}
        for _attempt in range(20):  # bounded: a service that stays down fails the test
            response = client.post(self.url, json=body)
            if response.status_code == 200:
                self.calls.accepted.append(key)
                return
            if response.status_code == 503:
                self.unavailable += 1
                time.sleep(0.2)
                continue
            self.refused.append(f"{response.status_code} {response.text[:200]}")
            return
        self.calls.failed.append(key)


def _progress(writers: list[Any], more: int) -> None:
    """Wait until every writer had ``more`` more events accepted."""
    marks = [len(w.calls.accepted) + more for w in writers]
    wait_until(
        lambda: all(len(w.calls.accepted) >= m for w, m in zip(writers, marks, strict=True)),
        timeout=90,
        what=f"{more} more accepted events per writer",
    )


def test_keyed_writers_lose_and_repeat_nothing_through_failovers(
    healthy: ReplicaSet, tmp_path: Path
) -> None:
    rs = healthy
    catalog = open_catalog(rs.uri, tmp_path, timeout=TIMEOUT, budget=BUDGET)
    service_dir = tmp_path / "service"
    service_dir.mkdir()
    service = ServiceProcess(rs.uri, service_dir, mongodb_timeout=TIMEOUT, mongodb_failover=BUDGET)
    service.env = {**service.env, "DATACATALOG_MONGODB_DATABASE": DATABASE}
    service.start()
    try:
        jobs = [new_job(catalog, f"writer-{n}") for n in range(2 * WRITERS)]
        for job in jobs:
            catalog.jobs.send(job.uuid, "run", event_id=f"run-{job.uuid}")
        stop = threading.Event()
        api = [ApiWriter(n, catalog, jobs[n], stop) for n in range(WRITERS)]
        http = [
            HttpWriter(
                n,
                f"{service.url}/jobs/{jobs[WRITERS + n].uuid}/events"
                f"?token={catalog.jobs.job_token(jobs[WRITERS + n].uuid)}",
                stop,
            )
            for n in range(WRITERS)
        ]
        writers: list[Any] = [*api, *http]
        for writer in writers:
            writer.start()
        _progress(writers, 5)
        faults: list[tuple[str, float, float]] = []

        # 1. kill -9 the primary; a new one is elected; the old one comes back later.
        began = time.monotonic()
        old = rs.wait_for_primary()
        rs.kill(old)
        rs.wait_for_primary(besides=old)
        _progress(writers, 5)
        faults.append(("kill -9 the primary", began, time.monotonic()))
        rs.restart(old)
        rs.wait_healthy()
        _progress(writers, 5)

        # 2. cut the primary off (its writes are no longer replicated), then kill it:
        # what only it had is rolled back when it returns.
        began = time.monotonic()
        old = rs.wait_for_primary()
        rs.isolate(old)
        time.sleep(1.0)  # writes reach it and wait in vain for a majority
        rs.kill(old)
        rs.wait_for_primary(besides=old)
        rs.reconnect()
        _progress(writers, 5)
        faults.append(("cut off, then kill the primary", began, time.monotonic()))
        rs.restart(old)
        rs.wait_healthy()
        # It had writes no other member had (each waiting in vain for a majority, then
        # sent again to the new primary): it rolls them back to rejoin.
        wait_until(lambda: rs.rolled_back(old), timeout=30, what="the old primary's rollback")
        _progress(writers, 5)

        # 3. a clean step-down.
        began = time.monotonic()
        old = rs.wait_for_primary()
        rs.step_down(old, seconds=2)
        rs.wait_for_primary(besides=old)
        _progress(writers, 5)
        faults.append(("step the primary down", began, time.monotonic()))

        stop.set()
        for writer in writers:
            writer.join(120)
            assert not writer.is_alive()
        rs.wait_healthy()
    finally:
        service.stop()

    # Read back through a fresh client, every member up and the old primaries rolled back.
    check = open_catalog(rs.uri, tmp_path, timeout=10.0, budget=BUDGET)
    try:
        figures = []
        totals: Counter[str] = Counter()
        for writer, job in zip(writers, jobs, strict=True):
            history = check.jobs.history(job.uuid)
            names = Counter(e.name for e in history)
            assert (names["create"], names["run"]) == (1, 1)  # created once, run once
            present = Counter(e.event_id for e in history if e.name == "update")
            accepted = writer.calls.accepted
            lost = [k for k in accepted if present[k] == 0]
            duplicated = [k for k, count in present.items() if count > 1]
            invented = set(present) - set(accepted) - set(writer.calls.failed)
            assert not lost and not duplicated and not invented, (lost, duplicated, invented)
            assert not writer.calls.failed  # the budget outlasted every election
            totals.update(
                accepted=len(accepted),
                present=sum(present.values()),
                lost=len(lost),
                duplicated=len(duplicated),
            )
            figures.append(
                f"{writer.name}: "
                + ", ".join(f"{name} {writer.calls.stall(a, b):.1f} s" for name, a, b in faults)
            )
        assert totals["accepted"] == totals["present"]
        assert not [r for w in http for r in w.refused]
        jobs_stored = check.store.count("job", {"uuid": {"$in": [j.uuid for j in jobs]}})
        assert jobs_stored == len(jobs)
        print("\nlongest stall per writer and failover:\n  " + "\n  ".join(figures))
        print(
            f"events: {dict(totals)}; 503s seen by HTTP writers: {sum(w.unavailable for w in http)}"
        )
    finally:
        check.close()
        catalog.close()


# -- a stage driver whose primary dies just before finish ---------------------------------


def test_a_driver_whose_primary_dies_before_finish_still_finishes(
    healthy: ReplicaSet, tmp_path: Path
) -> None:
    """The election (2 s of silence, then a vote) outlasts both the call timeout (1 s)
    and the failover budget (0.5 s): only the driver's own resending, until its lease
    would run out, lands ``finish``."""
    rs = healthy
    catalog = open_catalog(rs.uri, tmp_path, timeout=1.0, budget=0.5)
    try:
        job = new_job(catalog, "driver")
        killed: list[int] = []

        def execute(driver: Driver, payload: Payload) -> bool:
            out = Path(payload.output_entries[0].path or "")
            for n in range(3):
                (out / f"result-{n}.txt").write_text(f"{n}\n")
            killed.append(rs.wait_for_primary())
            rs.kill(killed[0])
            return True

        driver = Driver(
            job.uuid, catalog=catalog, execute=execute, index_outputs=True, lease_ttl=20
        )
        driver.start()
        result = driver.wait_for_completion(timeout=120)
        assert killed
        assert result.succeeded, (result.reason, result.event_error)
        assert (result.state, result.lease_released) == ("FINISHED", True)
        assert result.index_report is not None and result.index_report.written == 3
        history = [e.name for e in catalog.jobs.history(job.uuid) if e.name != "update"]
        assert history == ["create", "run", "finish", "index", "indexed"]
        assert catalog.leases.get(job.uuid) is None
        assert catalog.store.count("file", {"generated_by": job.uuid}) == 3
    finally:
        catalog.close()


# -- indexing 2,000 files across a crash ----------------------------------------------------


def test_indexing_rides_through_a_crash_of_the_primary(healthy: ReplicaSet, tmp_path: Path) -> None:
    rs = healthy
    files = 2000
    catalog = open_catalog(rs.uri, tmp_path, timeout=TIMEOUT, budget=BUDGET)
    try:
        job = new_job(catalog, "indexing")
        catalog.jobs.send(job.uuid, "run")
        catalog.jobs.send(job.uuid, "finish")
        root = Path(catalog.storage.get(job.archive_system).resolve(job.archive_path))
        for n in range(files):
            target = root / f"part-{n // 200}" / f"out-{n:05d}.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"output {n}\n")
        killed: list[int] = []

        def kill_after_first_batch(progress: Any) -> None:
            if progress.written and not killed:
                killed.append(progress.written)
                rs.kill(rs.wait_for_primary())

        report = catalog.indexing.index(
            job.uuid, fixity=True, transition=True, batch_size=200, progress=kill_after_first_batch
        )
        assert killed and killed[0] < files
        assert (report.written, report.state) == (files, "FINISHED")
        assert catalog.store.count("file", {"generated_by": job.uuid}) == files
        assert catalog.jobs.get(job.uuid).state == "FINISHED"
        names = [e.name for e in catalog.jobs.history(job.uuid)]
        assert names.count("index") == 1 and names.count("indexed") == 1
    finally:
        catalog.close()


def test_the_replica_set_launcher_refuses_nonsense() -> None:
    with pytest.raises(MongodError, match="at least one member"):
        ReplicaSet(0)
