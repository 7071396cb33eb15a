"""Tests for datacatalog.jobs.leases: one active execution per job.

The lease tests run on both engines through the ``store`` fixture. The race of two
drivers taking one lease at once is in ``tests/driver/test_driver.py`` (on the real server: the
in-memory engine serializes every operation, so a race there proves nothing). A dead
holder is simulated by writing its lease with an expiry in the past, which is what a
holder that stopped renewing leaves behind.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from datacatalog.clock import utc_now
from datacatalog.errors import (
    ActiveExecutionsError,
    InvalidRequestError,
    LeaseLostError,
    NotFoundError,
    UnavailableError,
)
from datacatalog.identifiers import typed_uuid
from datacatalog.jobs.leases import Heartbeat, HeartbeatScheduler, Lease, LeaseService
from tests.support.jobs import World, lapse, make_world, nothing_written


@pytest.fixture
def leases(world: World) -> LeaseService:
    return world.catalog.leases


def test_acquire_takes_a_free_lease_with_server_times(world: World, leases: LeaseService) -> None:
    job = world.new_job({"lease": 1})
    before = utc_now() - timedelta(seconds=5)
    lease = leases.acquire(uuid.UUID(job.uuid), holder="driver-a", kind="driver", ttl=30)
    assert lease.job_uuid == uuid.UUID(job.uuid)
    assert (lease.holder, lease.kind, lease.ttl) == ("driver-a", "driver", 30.0)
    assert lease.host and lease.pid > 0
    assert lease.since >= before and lease.since.tzinfo is not None
    assert lease.expires - lease.since == timedelta(seconds=30)
    assert lease.taken_over is None
    assert leases.get(job.uuid) == lease
    shown = world.jobs.get(job.uuid)
    assert shown.lease == lease
    assert shown.to_dict()["lease"]["holder"] == "driver-a"
    # Taking a lease is not an event: the history is unchanged.
    assert [e.name for e in world.jobs.history(job.uuid)] == ["create"]


def test_a_held_lease_refuses_another_holder_naming_the_holder(
    world: World, leases: LeaseService
) -> None:
    job = world.new_job({"lease": 2})
    held = leases.acquire(job.uuid, holder="driver-a", kind="driver", host="node1", pid=77)
    with pytest.raises(ActiveExecutionsError) as caught:
        leases.acquire(job.uuid, holder="run-b", kind="workflow")
    message = str(caught.value)
    assert "driver-a" in message and "node1" in message and "77" in message
    assert caught.value.details["holder"] == "driver-a"
    assert caught.value.code == "active_executions"
    assert leases.get(job.uuid) == held


def test_the_same_holder_taking_it_again_renews_it(world: World, leases: LeaseService) -> None:
    job = world.new_job({"lease": 3})
    first = leases.acquire(job.uuid, holder="driver-a", kind="driver")
    again = leases.acquire(job.uuid, holder="driver-a", kind="driver")
    assert again.since == first.since
    assert again.expires >= first.expires


def test_a_lapsed_lease_is_taken_over_and_recorded_in_the_history(
    world: World, leases: LeaseService
) -> None:
    job = world.new_job({"lease": 4})
    world.jobs.send(job.uuid, "run")
    lapse(world, job)
    lease = leases.acquire(job.uuid, holder="driver-new", kind="driver")
    assert lease.holder == "driver-new"
    assert lease.taken_over is not None
    assert lease.taken_over["holder"] == "driver-dead"
    assert lease.taken_over["host"] == "node-gone"
    last = world.jobs.history(job.uuid)[-1]
    assert last.name == "update"
    assert last.data["lease"]["taken_over_from"]["holder"] == "driver-dead"
    assert last.data["lease"]["holder"] == "driver-new"
    # The dead holder, should it wake up, has lost the lease.
    ghost = Lease(
        job_uuid=uuid.UUID(job.uuid),
        holder="driver-dead",
        kind="driver",
        host="node-gone",
        pid=4242,
        since=lease.since,
        expires=lease.expires,
        ttl=30.0,
    )
    with pytest.raises(LeaseLostError, match="driver-new"):
        leases.renew(ghost)
    assert leases.release(ghost) is False
    assert leases.get(job.uuid) == lease


def test_a_takeover_on_an_ended_job_stays_on_the_lease(world: World, leases: LeaseService) -> None:
    job = world.new_job({"lease": 5})
    world.jobs.send(job.uuid, "run")
    world.jobs.send(job.uuid, "finish")
    lapse(world, job)
    lease = leases.acquire(job.uuid, holder="driver-new", kind="driver")
    assert lease.taken_over is not None and lease.taken_over["holder"] == "driver-dead"
    assert [e.name for e in world.jobs.history(job.uuid)] == ["create", "run", "finish"]


def test_renew_extends_and_release_frees(world: World, leases: LeaseService) -> None:
    job = world.new_job({"lease": 6})
    lease = leases.acquire(job.uuid, holder="driver-a", kind="driver", ttl=10)
    renewed = leases.renew(lease)
    assert renewed.holder == "driver-a"
    assert renewed.expires >= lease.expires
    assert renewed.renewed is not None and renewed.expires - renewed.renewed == timedelta(
        seconds=10
    )
    assert leases.release(renewed) is True
    assert leases.get(job.uuid) is None
    assert world.jobs.get(job.uuid).lease is None
    assert leases.release(renewed) is False
    with pytest.raises(LeaseLostError, match="free"):
        leases.renew(renewed)
    # Free again: anyone may take it.
    assert leases.acquire(job.uuid, holder="run-b", kind="workflow").kind == "workflow"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"holder": "", "kind": "driver"}, "holder"),
        ({"holder": 5, "kind": "driver"}, "holder"),
        ({"holder": "a", "kind": "cron"}, "kind"),
        ({"holder": "a", "kind": "driver", "ttl": 0}, "ttl"),
        ({"holder": "a", "kind": "driver", "ttl": -1}, "ttl"),
        ({"holder": "a", "kind": "driver", "ttl": True}, "ttl"),
        ({"holder": "a", "kind": "driver", "ttl": "30"}, "ttl"),
        ({"holder": "a", "kind": "driver", "pid": "1"}, "pid"),
    ],
)
def test_bad_lease_requests_are_refused_and_write_nothing(
    world: World, leases: LeaseService, options: dict[str, object], fragment: str
) -> None:
    job = world.new_job({"lease": 7})
    with nothing_written(world, job), pytest.raises(InvalidRequestError, match=fragment):
        leases.acquire(job.uuid, **options)  # type: ignore[arg-type]


def test_unknown_or_malformed_jobs_are_named(world: World, leases: LeaseService) -> None:
    missing = typed_uuid("no such job", "pipelinejob")
    with pytest.raises(NotFoundError, match=missing):
        leases.acquire(missing, holder="a", kind="driver")
    with pytest.raises(NotFoundError, match=missing):
        leases.get(missing)
    with pytest.raises(InvalidRequestError):
        leases.acquire("not-a-uuid", holder="a", kind="driver")


def test_a_deleted_job_cannot_be_leased(world: World, leases: LeaseService) -> None:
    job = world.new_job({"lease": 8})
    world.jobs.delete(job.uuid, token=world.admin())
    with pytest.raises(NotFoundError):
        leases.acquire(job.uuid, holder="a", kind="driver")


def test_the_in_memory_engine_uses_the_process_clock(
    world: World, leases: LeaseService, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine != "memory":
        pytest.skip("the real server uses its own clock")
    job = world.new_job({"lease": 9})
    instant = datetime(2030, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    monkeypatch.setattr("datacatalog.store.core.utc_now", lambda: instant)
    lease = leases.acquire(job.uuid, holder="a", kind="driver", ttl=5)
    assert (lease.since, lease.expires) == (instant, instant + timedelta(seconds=5))
    # Five seconds on, the lease has lapsed and is taken over.
    later = instant + timedelta(seconds=6)
    monkeypatch.setattr("datacatalog.store.core.utc_now", lambda: later)
    taken = leases.acquire(job.uuid, holder="b", kind="driver")
    assert taken.taken_over is not None and taken.taken_over["holder"] == "a"


# -- the heartbeat -----------------------------------------------------------------------


class Ticks:
    """A heartbeat scheduler without a thread, on a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.scheduler = HeartbeatScheduler(
            clock=lambda: self.now, submit=lambda renewal: renewal(), threaded=False
        )

    def beat(self, leases: LeaseService, lease: Lease, **options: Any) -> Heartbeat:
        return Heartbeat(leases, lease, clock=lambda: self.now, scheduler=self.scheduler, **options)

    def advance(self, seconds: float) -> float | None:
        """Move the clock on and renew what is due; when the next renewal is due."""
        self.now += seconds
        return self.scheduler.tick()


def test_a_heartbeat_renews_the_lease(world: World, leases: LeaseService) -> None:
    job = world.new_job({"beat": 1})
    lease = leases.acquire(job.uuid, holder="driver-a", kind="driver", ttl=30)
    ticks = Ticks()
    with ticks.beat(leases, lease) as beat:
        assert beat.interval == 10.0
        assert ticks.advance(9.9) == 1010.0  # not due yet: nothing renewed
        assert beat.renewals == 0
        for n in range(1, 4):
            assert ticks.advance(10.0) == ticks.now + 10.0  # the next one, from now
            assert beat.renewals == n
            assert beat.renewed_at == ticks.now
        assert beat.lease.holder == "driver-a"
        assert beat.lease.expires >= lease.expires
        assert beat.lost is None
    assert beat.stopped
    assert ticks.advance(100.0) is None  # a stopped heartbeat is renewed no more
    assert beat.renewals == 3


def test_a_heartbeat_reports_a_lost_lease_and_stops(world: World, leases: LeaseService) -> None:
    job = world.new_job({"beat": 2})
    lease = leases.acquire(job.uuid, holder="driver-a", kind="driver")
    leases.release(lease)
    leases.acquire(job.uuid, holder="driver-b", kind="driver")
    lost: list[LeaseLostError] = []
    ticks = Ticks()
    with ticks.beat(leases, lease, on_lost=lost.append) as beat:
        assert ticks.advance(10.0) is None  # the first renewal fails: nothing is due after it
        assert beat.stopped
    assert beat.lost is lost[0]
    assert "driver-b" in str(lost[0])
    assert ticks.advance(100.0) is None and len(lost) == 1


def test_a_heartbeat_rides_out_an_unreachable_database(
    world: World, leases: LeaseService, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = world.new_job({"beat": 3})
    lease = leases.acquire(job.uuid, holder="driver-a", kind="driver")
    real_renew = leases.renew
    failures = iter([True, False, False])

    def flaky(current: Lease) -> Lease:
        if next(failures, False):
            raise UnavailableError("database down for a moment")
        return real_renew(current)

    monkeypatch.setattr(leases, "renew", flaky)
    ticks = Ticks()
    with ticks.beat(leases, lease) as beat:
        started = ticks.now
        for _ in range(3):
            ticks.advance(10.0)
    assert beat.renewals == 2
    assert beat.renewed_at == started + 30.0
    assert isinstance(beat.last_error, UnavailableError)
    assert beat.lost is None


def test_heartbeats_share_one_thread(world: World, leases: LeaseService) -> None:
    jobs = [world.new_job({"shared": n}) for n in range(20)]
    held = [leases.acquire(j.uuid, holder=f"driver-{n}", kind="driver") for n, j in enumerate(jobs)]
    before = threading.active_count()
    beats = [Heartbeat(leases, lease, interval=0.01).start() for lease in held]
    try:
        deadline = threading.Event()
        for _ in range(3000):  # every heartbeat renews, on the shared threads
            if all(beat.renewals >= 2 for beat in beats):
                break
            deadline.wait(0.01)
        assert all(beat.renewals >= 2 for beat in beats)
        names = [t.name for t in threading.enumerate()]
        assert names.count("datacatalog-lease-heartbeats") == 1
        assert threading.active_count() - before <= 5  # the scheduler and at most 4 renewers
    finally:
        for beat in beats:
            beat.stop()
    renewed = [beat.renewals for beat in beats]
    threading.Event().wait(0.05)
    assert [beat.renewals for beat in beats] == renewed  # stopped: no renewal after stop()


def test_a_heartbeat_interval_must_be_positive(world: World, leases: LeaseService) -> None:
    job = world.new_job({"beat": 4})
    lease = leases.acquire(job.uuid, holder="driver-a", kind="driver")
    with pytest.raises(InvalidRequestError, match="interval"):
        Heartbeat(leases, lease, interval=0)


# -- where the lease is shown ----------------------------------------------------------------


def test_the_service_shows_the_lease(world: World, leases: LeaseService) -> None:
    from fastapi.testclient import TestClient

    from datacatalog.service import create_app

    job = world.new_job({"shown": "service"})
    with TestClient(create_app(world.catalog)) as client:
        assert client.get(f"/jobs/{job.uuid}").json()["lease"] is None
        lease = leases.acquire(job.uuid, holder="driver-a", kind="driver", host="node9", pid=12)
        body = client.get(f"/jobs/{job.uuid}").json()
        assert body["lease"] == lease.to_dict()
        assert body["lease"]["host"] == "node9"
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert "LeaseModel" in schema


def test_jobs_show_shows_the_lease(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from datacatalog.catalog import Catalog
    from datacatalog.cli.main import cli
    from datacatalog.settings import Settings

    for name in list(os.environ):
        if name.startswith("DATACATALOG_") and not name.startswith(
            ("DATACATALOG_TEST_", "DATACATALOG_LOCAL_ENGINE")
        ):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    with Catalog.open(settings=Settings.load(env={}, data_dir=data_dir)) as catalog:
        world = make_world(catalog.store, data_dir)
        job = world.new_job({"shown": "cli"})
        world.catalog.leases.acquire(job.uuid, holder="driver-cli", kind="driver", host="n7")

    def show(*args: str) -> str:
        result = CliRunner().invoke(
            cli, ["--data-dir", str(data_dir), *args, "jobs", "show", job.uuid]
        )
        assert result.exit_code == 0, result.stderr
        return result.stdout

    assert json.loads(show("--json"))["job"]["lease"]["holder"] == "driver-cli"
    human = show()
    assert "lease" in human and "driver-cli" in human and "n7" in human
