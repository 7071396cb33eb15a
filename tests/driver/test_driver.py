"""Tests for datacatalog.driver: the stage driver's life-cycle on a managed job.

Every test runs on both engines through the ``store`` fixture (via ``world``). Time is
injected: a fake monotonic clock the test moves, and a fake sleep between attempts, so
no test sleeps; a callback that "never returns" blocks on an event the test releases at
the end.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from datacatalog.driver import Driver, DriverError, DriverResult, Notification, Payload
from datacatalog.errors import (
    ActiveExecutionsError,
    ForbiddenError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    UnavailableError,
)
from datacatalog.identifiers import typed_uuid
from datacatalog.jobs import Job
from datacatalog.store import connect
from tests.support.clocks import FakeMonotonic
from tests.support.jobs import World, make_world

WAIT = 10.0  # seconds a test waits for a life-cycle at most (never reached when it works)


class FakeSleep:
    """Records the waits between attempts instead of sleeping; may run a hook."""

    def __init__(self, hook: Callable[[], Any] | None = None) -> None:
        self.calls: list[float] = []
        self.hook = hook

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.hook is not None:
            self.hook()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event that stuck callbacks wait on; set when the test ends so their threads end."""
    event = threading.Event()
    yield event
    event.set()


def new_job(world: World) -> Job:
    return world.new_job({"driver": uuid.uuid4().hex})


def driver_for(world: World, job: Job | None = None, **options: Any) -> Driver:
    options.setdefault("sleep", FakeSleep())
    return Driver(job or new_job(world), catalog=world.catalog, **options)


def run(world: World, job: Job | None = None, **options: Any) -> DriverResult:
    driver = driver_for(world, job, **options)
    driver.start()
    return driver.wait_for_completion(timeout=WAIT)


def events(world: World, job_uuid: str) -> list[str]:
    return [e.name for e in world.jobs.history(job_uuid) if e.name != "update"]


def terminal(world: World, job_uuid: str) -> list[str]:
    return [e for e in events(world, job_uuid) if e in ("finish", "fail")]


def fail_data(world: World, job_uuid: str) -> dict[str, Any]:
    (entry,) = [e for e in world.jobs.history(job_uuid) if e.name == "fail"]
    return entry.data


class Calls:
    """Callbacks that record the order they ran in."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def step(self, name: str, value: Any = True) -> Callable[..., Any]:
        def callback(*args: Any) -> Any:
            self.order.append(name)
            if isinstance(value, BaseException):
                raise value
            return value

        return callback


# -- the happy path ------------------------------------------------------------------------


def test_a_stage_runs_in_order_and_finishes(world: World) -> None:
    calls = Calls()
    job = new_job(world)
    seen: dict[str, Any] = {}

    def execute(driver: Driver, payload: Payload) -> None:
        calls.order.append("execute")
        seen["payload"] = payload
        seen["outputs"] = payload.output_entries
        seen["parameters"] = payload.parameters
        seen["lease"] = world.catalog.leases.get(job.uuid)
        seen["state"] = world.jobs.get(job.uuid).state

    driver = driver_for(
        world,
        job,
        prepare=calls.step("prepare"),
        execute=execute,
        cleanup=calls.step("cleanup"),
        app_data={"k": 1},
    )
    assert driver.app_data == {"k": 1}
    assert driver.job_id == uuid.UUID(job.uuid)
    assert driver.job_name == world.pipeline.name
    assert driver.stage_name == world.pipeline.id
    assert driver.stage_timeout is None
    driver.start()
    result = driver.wait_for_completion(timeout=WAIT)
    assert calls.order == ["prepare", "execute", "cleanup"]
    assert result.succeeded and result.state == "FINISHED"
    assert (result.reason, result.phase, result.attempts, result.error) == (None, None, 1, None)
    assert result.started <= result.ended and result.started.tzinfo is not None
    assert result.events == ("run", "finish")
    assert result.lease_released
    assert events(world, job.uuid) == ["create", "run", "finish"]
    # During execute the job ran under this driver's lease; afterwards the lease is free.
    assert seen["state"] == "RUNNING" and seen["lease"].holder == driver.id
    assert world.catalog.leases.get(job.uuid) is None
    (output,) = seen["outputs"]
    assert output.name == job.archive_path and output.path is not None
    assert Path(output.path).is_dir()
    assert seen["parameters"] == job.data
    with pytest.raises(DriverError, match="only during the execute"):
        _ = seen["payload"].output_entries


def test_start_twice_raises(world: World) -> None:
    driver = driver_for(world)
    driver.start()
    with pytest.raises(DriverError, match="started already"):
        driver.start()
    assert driver.wait_for_completion(timeout=WAIT).succeeded


def test_wait_before_start_raises_without_blocking(world: World) -> None:
    driver = driver_for(world, execute=lambda d, p: True)
    with pytest.raises(DriverError, match="not started"):
        driver.wait_for_completion()  # no timeout: it would hang if it blocked


def test_wait_after_completion_returns_the_same_result_every_time(world: World) -> None:
    driver = driver_for(world, execute=lambda d, p: None)
    driver.start()
    first = driver.wait_for_completion(timeout=WAIT)
    for _ in range(3):
        assert driver.wait_for_completion() is first
        assert driver.wait_for_completion(timeout=0) is first
    assert driver.result is first


# -- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [(False, "callback_returned_false"), (RuntimeError("no inputs"), "callback_raised")],
)
def test_prepare_failing_skips_execute_but_not_cleanup(
    world: World, outcome: Any, reason: str
) -> None:
    calls = Calls()
    job = new_job(world)
    result = run(
        world,
        job,
        prepare=calls.step("prepare", outcome),
        execute=calls.step("execute"),
        cleanup=calls.step("cleanup"),
    )
    assert calls.order == ["prepare", "cleanup"]
    assert not result.succeeded and result.state == "FAILED"
    assert (result.reason, result.phase, result.attempts) == (reason, "prepare", 0)
    assert terminal(world, job.uuid) == ["fail"]
    data = fail_data(world, job.uuid)
    assert (data["reason"], data["phase"], data["attempts"]) == (reason, "prepare", 0)


def test_execute_raising_records_the_root_error(world: World) -> None:
    job = new_job(world)

    def execute(driver: Driver, payload: Payload) -> None:
        raise ValueError("bad threshold " + "x" * 5000)

    result = run(world, job, execute=execute)
    assert (result.reason, result.phase, result.attempts) == ("callback_raised", "execute", 1)
    assert result.error is not None
    assert result.error["type"] == "ValueError"
    assert result.error["message"].startswith("bad threshold")
    assert "characters cut" in result.error["message"]  # bounded, with a marker
    assert "ValueError" in result.error["traceback"]
    stored = fail_data(world, job.uuid)["error"]
    assert stored["type"] == "ValueError" and len(stored["message"]) < 2100
    assert "in execute" in stored["traceback"]


def test_execute_returning_false_fails(world: World) -> None:
    result = run(world, execute=lambda d, p: False)
    assert (result.reason, result.phase, result.state) == (
        "callback_returned_false",
        "execute",
        "FAILED",
    )


def test_exhausting_retries_counts_the_attempts(world: World) -> None:
    attempts: list[int] = []
    sleep = FakeSleep()

    def execute(driver: Driver, payload: Payload) -> bool:
        attempts.append(len(attempts) + 1)
        return False

    job = new_job(world)
    result = run(world, job, execute=execute, max_attempts=3, retry_interval=2.5, sleep=sleep)
    assert attempts == [1, 2, 3]
    assert sleep.calls == [2.5, 2.5]
    assert (result.reason, result.attempts) == ("max_attempts_exceeded", 3)
    assert fail_data(world, job.uuid)["attempts"] == 3


def test_a_retry_that_succeeds_finishes(world: World) -> None:
    tries = iter([RuntimeError("flaky"), True])

    def execute(driver: Driver, payload: Payload) -> bool:
        value = next(tries)
        if isinstance(value, Exception):
            raise value
        return value

    notes: list[Notification] = []
    result = run(world, execute=execute, max_attempts=3, notify=lambda d, n: notes.append(n))
    assert result.succeeded and result.attempts == 2
    assert [n.attempt for n in notes if n.kind == "retry_scheduled"] == [1]


def test_aborting_is_never_retried(world: World) -> None:
    attempts: list[int] = []

    def execute(driver: Driver, payload: Payload) -> None:
        attempts.append(1)
        driver.abort("input is corrupt")

    result = run(world, execute=execute, max_attempts=5)
    assert attempts == [1]
    assert (result.reason, result.attempts) == ("aborted", 1)
    assert result.error is not None and result.error["message"] == "input is corrupt"


def test_cleanup_failing_after_success_fails_the_job(world: World) -> None:
    job = new_job(world)
    result = run(
        world, job, execute=lambda d, p: True, cleanup=Calls().step("c", OSError("disk full"))
    )
    assert (result.reason, result.phase, result.state) == ("cleanup_failed", "cleanup", "FAILED")
    assert result.error is not None and result.error["type"] == "OSError"
    assert terminal(world, job.uuid) == ["fail"]


def test_cleanup_failing_after_failure_keeps_the_root_cause(world: World) -> None:
    job = new_job(world)
    result = run(
        world,
        job,
        execute=Calls().step("e", KeyError("sample")),
        cleanup=lambda d: False,
    )
    assert (result.reason, result.phase) == ("callback_raised", "execute")
    assert result.error is not None and result.error["type"] == "KeyError"
    data = fail_data(world, job.uuid)
    assert data["reason"] == "callback_raised"
    assert data["cleanup_error"]["message"] == "cleanup returned False"


def test_a_notify_that_raises_changes_nothing(world: World) -> None:
    seen: list[str] = []

    def notify(driver: Driver, note: Notification) -> None:
        seen.append(note.kind)
        raise RuntimeError("listener broke")

    job = new_job(world)
    result = run(world, job, execute=lambda d, p: True, notify=notify)
    assert result.succeeded
    assert seen[0] == "started" and seen[-1] == "completed"
    assert "phase_started" in seen and "phase_ended" in seen


def test_notifications_are_recorded_in_the_history_bounded(world: World) -> None:
    job = new_job(world)
    run(world, job, execute=lambda d, p: False, max_attempts=40)
    updates = [e for e in world.jobs.history(job.uuid) if e.name == "update"]
    assert 0 < len(updates) <= 50
    kinds = [u.data["driver"]["kind"] for u in updates]
    assert kinds[:2] == ["error", "retry_scheduled"]
    assert updates[0].data["driver"]["attempt"] == 1
    assert all(len(u.data["driver"]["message"]) <= 500 for u in updates)


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt()])
def test_system_exit_inside_a_callback_ends_the_life_cycle_cleanly(
    world: World, error: BaseException
) -> None:
    calls = Calls()
    job = new_job(world)
    result = run(world, job, execute=calls.step("execute", error), cleanup=calls.step("cleanup"))
    assert calls.order == ["execute", "cleanup"]
    assert (result.reason, result.state) == ("callback_raised", "FAILED")
    assert result.error is not None and result.error["type"] == type(error).__name__
    assert world.catalog.leases.get(job.uuid) is None


# -- the stage timeout ------------------------------------------------------------------------


def test_timeout_with_a_callback_that_never_returns(world: World, release: threading.Event) -> None:
    clock = FakeMonotonic(1000.0)
    calls = Calls()
    job = new_job(world)

    def execute(driver: Driver, payload: Payload) -> None:
        calls.order.append("execute")
        clock.advance(120)  # the stage is over time; this callback never returns
        release.wait(WAIT)

    driver = driver_for(
        world,
        job,
        execute=execute,
        cleanup=calls.step("cleanup"),
        stage_timeout=timedelta(minutes=1),
        clock=clock,
    )
    assert driver.stage_timeout == timedelta(minutes=1)
    driver.start()
    result = driver.wait_for_completion(timeout=WAIT)
    assert calls.order == ["execute", "cleanup"]
    assert driver.cancel_requested  # the stuck callback could have seen it
    assert (result.reason, result.phase, result.state) == ("timeout", "execute", "FAILED")
    assert fail_data(world, job.uuid)["reason"] == "timeout"


def test_timeout_between_attempts_starts_no_more(world: World) -> None:
    clock = FakeMonotonic(1000.0)
    attempts: list[int] = []

    def execute(driver: Driver, payload: Payload) -> bool:
        attempts.append(1)
        clock.advance(20)
        return False

    result = run(
        world,
        execute=execute,
        max_attempts=10,
        retry_interval=5,
        stage_timeout=50,
        clock=clock,
        sleep=FakeSleep(hook=lambda: clock.advance(5)),
    )
    assert result.reason == "timeout"
    assert len(attempts) == 2  # 20 s each plus 5 s waits: a third would not fit


# -- cancellation --------------------------------------------------------------------------


def test_cancel_before_start_runs_nothing_and_posts_nothing(world: World) -> None:
    calls = Calls()
    job = new_job(world)
    driver = driver_for(world, job, prepare=calls.step("prepare"), execute=calls.step("e"))
    assert driver.cancel() is True
    driver.start()
    result = driver.wait_for_completion(timeout=WAIT)
    assert calls.order == []
    assert (result.succeeded, result.reason, result.state) == (False, "cancelled", "CREATED")
    assert [e.name for e in world.jobs.history(job.uuid)] == ["create"]
    assert world.catalog.leases.get(job.uuid) is None


def test_cancel_while_running(world: World) -> None:
    running = threading.Event()
    calls = Calls()
    job = new_job(world)

    def execute(driver: Driver, payload: Payload) -> bool:
        running.set()
        for _ in range(1000):  # cooperative: it polls the flag
            if driver.cancel_requested:
                return False
            threading.Event().wait(0.001)
        return True

    driver = driver_for(world, job, execute=execute, cleanup=calls.step("cleanup"))
    driver.start()
    assert running.wait(WAIT)
    assert driver.cancel() is True
    assert driver.cancel() is False  # already requested
    result = driver.wait_for_completion(timeout=WAIT)
    assert calls.order == ["cleanup"]
    assert (result.reason, result.phase, result.state) == ("cancelled", "execute", "FAILED")
    assert terminal(world, job.uuid) == ["fail"]
    kinds = [e.data["driver"]["kind"] for e in world.jobs.history(job.uuid) if e.name == "update"]
    assert "cancel_requested" in kinds


def test_cancel_during_a_retry_wait(world: World) -> None:
    holder: dict[str, Driver] = {}
    attempts: list[int] = []
    sleep = FakeSleep(hook=lambda: holder["driver"].cancel())

    def execute(driver: Driver, payload: Payload) -> bool:
        attempts.append(1)
        return False

    driver = driver_for(world, execute=execute, max_attempts=5, retry_interval=30, sleep=sleep)
    holder["driver"] = driver
    driver.start()
    result = driver.wait_for_completion(timeout=WAIT)
    assert attempts == [1] and sleep.calls == [30]
    assert (result.reason, result.attempts) == ("cancelled", 1)


def test_cancel_after_completion_is_a_no_op(world: World) -> None:
    job = new_job(world)
    driver = driver_for(world, job, execute=lambda d, p: True)
    driver.start()
    result = driver.wait_for_completion(timeout=WAIT)
    assert driver.cancel() is False
    assert driver.wait_for_completion() is result and result.succeeded
    assert terminal(world, job.uuid) == ["finish"]


def test_cancel_racing_completion_yields_exactly_one_terminal_event(tmp_path: Path) -> None:
    # The race is between the caller's thread and the driver's, not in the database: the
    # in-memory engine is enough (the real-server races are the lease tests').
    world = make_world(connect("mongomock://", database="race"), tmp_path)
    for _ in range(100):
        job = world.new_job({"driver": uuid.uuid4().hex}, setup_archive_path=False)
        driver = driver_for(world, job, execute=lambda d, p: True)
        driver.start()
        cancelled = driver.cancel()
        result = driver.wait_for_completion(timeout=WAIT)
        posted = terminal(world, job.uuid)
        if cancelled:
            assert (posted, result.reason, result.state) == (["fail"], "cancelled", "FAILED")
        else:
            assert (posted, result.succeeded, result.state) == (["finish"], True, "FINISHED")
        # Keep the collection small: the in-memory engine scans it for every write.
        world.store.delete_many("job", {"uuid": job.uuid})


# -- the lease ------------------------------------------------------------------------------


def test_a_second_driver_on_a_held_job_raises_naming_the_holder(
    world: World, release: threading.Event
) -> None:
    job = new_job(world)
    first = driver_for(world, job, execute=lambda d, p: release.wait(WAIT))
    first.start()
    second = driver_for(world, job, execute=lambda d, p: True)
    with pytest.raises(ActiveExecutionsError, match=first.id):
        second.start()
    with pytest.raises(DriverError, match="did not start"):
        second.wait_for_completion()  # no timeout: it would hang if it blocked
    assert second.cancel() is False
    release.set()
    assert first.wait_for_completion(timeout=WAIT).succeeded
    assert events(world, job.uuid) == ["create", "run", "finish"]


def start_together(drivers: list[Driver]) -> dict[int, Exception | None]:
    """Start each driver from a thread of its own, released together by a barrier."""
    barrier = threading.Barrier(len(drivers))
    outcomes: dict[int, Exception | None] = {}

    def go(number: int) -> None:
        barrier.wait(timeout=WAIT)
        try:
            drivers[number].start()
            outcomes[number] = None
        except ActiveExecutionsError as exc:
            outcomes[number] = exc

    threads = [threading.Thread(target=go, args=(n,)) for n in range(len(drivers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT)
    return outcomes


def test_two_drivers_starting_at_once_on_the_real_server_one_wins_every_time(
    mongo_uri: str, database_name: str, tmp_path: Path
) -> None:
    store = connect(mongo_uri, database=database_name)
    try:
        world = make_world(store, tmp_path)
        for n in range(50):
            job = world.new_job({"race": n}, setup_archive_path=False)
            # The winner's stage waits until both starts returned: on a loaded machine it
            # could otherwise end and give the lease back before the other start began.
            both_started = threading.Event()

            def execute(
                driver: Driver, payload: Payload, gate: threading.Event = both_started
            ) -> bool:
                return gate.wait(timeout=WAIT)

            drivers = [Driver(job.uuid, catalog=world.catalog, execute=execute) for _ in range(2)]
            outcomes = start_together(drivers)
            both_started.set()
            winners = [number for number, error in outcomes.items() if error is None]
            assert len(winners) == 1 and len(outcomes) == 2, outcomes
            winner = drivers[winners[0]]
            (refusal,) = [e for e in outcomes.values() if e is not None]
            assert refusal.details["holder"] == winner.id
            assert winner.wait_for_completion(timeout=WAIT).succeeded
            assert events(world, job.uuid) == ["create", "run", "finish"]
    finally:
        store.drop_database()
        store.close()


def test_a_job_that_cannot_run_is_refused_at_start_and_the_lease_given_back(
    world: World,
) -> None:
    job = new_job(world)
    world.jobs.send(job.uuid, "run")
    world.jobs.send(job.uuid, "finish")
    world.jobs.send(job.uuid, "retire")
    driver = driver_for(world, job, execute=lambda d, p: True)
    with pytest.raises(InvalidTransitionError):
        driver.start()
    assert world.catalog.leases.get(job.uuid) is None
    with pytest.raises(DriverError, match="did not start"):
        driver.wait_for_completion(timeout=WAIT)


def test_a_lost_lease_stops_the_driver_without_a_terminal_event(world: World) -> None:
    job = new_job(world)
    notes: list[str] = []

    def execute(driver: Driver, payload: Payload) -> bool:
        # Another execution takes the lease over (as if this driver had stalled past it).
        stored = world.store.get("job", {"uuid": job.uuid})
        assert stored is not None
        usurper = {**stored["lease"], "holder": "driver-usurper", "taken_over": None}
        world.store.update("job", {"uuid": job.uuid}, {"$set": {"lease": usurper}})
        for _ in range(2000):  # the heartbeat (every 0.05 s here) notices and cancels
            if driver.cancel_requested:
                return False
            threading.Event().wait(0.005)
        return True

    result = run(
        world, job, execute=execute, lease_ttl=0.15, notify=lambda d, n: notes.append(n.kind)
    )
    assert (result.reason, result.state) == ("lease_lost", "RUNNING")
    assert result.error is not None and "driver-usurper" in result.error["message"]
    assert not result.lease_released
    assert terminal(world, job.uuid) == []
    assert "lease_lost" in notes
    lease = world.catalog.leases.get(job.uuid)
    assert lease is not None and lease.holder == "driver-usurper"


# -- the store failing ------------------------------------------------------------------------


class Outage:
    """Time that passes only in the waits between retries (an injected clock and sleep)."""

    def __init__(self) -> None:
        self.clock = FakeMonotonic(1000.0)
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


def test_the_store_failing_while_posting_the_terminal_event(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    lifecycle = world.catalog.jobs.lifecycle
    outage = Outage()
    tried: list[float] = []

    def end(lease: Any, events: Any, **options: Any) -> Any:
        # The terminal event and the lease release are one write: it cannot get through.
        tried.append(outage.clock())
        raise UnavailableError("cannot reach the database")

    monkeypatch.setattr(lifecycle, "end", end)
    job = new_job(world)
    ttl = 20.0
    result = run(
        world,
        job,
        execute=lambda d, p: True,
        lease_ttl=ttl,
        clock=outage.clock,
        sleep=outage.sleep,
    )
    assert not result.succeeded
    assert (result.reason, result.phase, result.state) == ("store_failed", "finish", "RUNNING")
    assert result.event_error is not None and result.event_error["type"] == "UnavailableError"
    assert "still unavailable after" in result.event_error["message"]
    assert result.lease_released
    # Sent again and again until the lease would have run out (no renewal in fake time),
    # and not after.
    assert len(tried) > 5
    assert tried[-1] - tried[0] <= ttl <= tried[-1] - tried[0] + max(outage.waits)

    # When the release fails too, the lease is left to lapse; nothing hangs.
    def no_release(lease: Any) -> bool:
        raise UnavailableError("still down")

    monkeypatch.setattr(world.catalog.leases, "release", no_release)
    other = new_job(world)
    result = run(
        world,
        other,
        execute=lambda d, p: False,
        lease_ttl=ttl,
        clock=outage.clock,
        sleep=outage.sleep,
    )
    assert result.reason == "callback_returned_false"
    assert result.event_error is not None and not result.lease_released
    assert world.catalog.leases.get(other.uuid) is not None


def test_the_terminal_event_rides_through_an_outage_shorter_than_the_lease(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The primary died just before finish and the election outlasts the store's budget:
    the driver sends its end write (finish + lease release) again, its keys making that
    safe."""
    leases, lifecycle = world.catalog.leases, world.catalog.jobs.lifecycle
    real_end = lifecycle.end
    outage = Outage()
    down_until = outage.clock() + 12.0
    down = {"finish": 0}

    def end(lease: Any, events: Any, **options: Any) -> Any:
        if events[0][0] == "finish" and outage.clock() < down_until:
            down["finish"] += 1
            if down["finish"] == 1:  # applied, but the answer was lost with the primary
                real_end(lease, events, **options)
            raise UnavailableError("no primary")
        return real_end(lease, events, **options)

    monkeypatch.setattr(lifecycle, "end", end)
    job = new_job(world)
    result = run(
        world,
        job,
        execute=lambda d, p: True,
        lease_ttl=30.0,
        clock=outage.clock,
        sleep=outage.sleep,
    )
    assert result.succeeded, result.event_error
    assert (result.state, result.lease_released) == ("FINISHED", True)
    assert down["finish"] > 1
    assert terminal(world, job.uuid) == ["finish"]
    assert leases.get(job.uuid) is None
    keys = {e.name: e.event_id for e in world.jobs.history(job.uuid) if e.name != "update"}
    driver_id = keys["run"].rpartition(":")[0]
    assert driver_id.startswith("driver-")
    assert keys == {"create": None, "run": f"{driver_id}:run", "finish": f"{driver_id}:finish"}


def test_the_terminal_event_is_not_resent_for_other_errors(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    lifecycle = world.catalog.jobs.lifecycle
    outage = Outage()
    sent: list[str] = []

    def end(lease: Any, events: Any, **options: Any) -> Any:
        sent.append(events[0][0])
        raise InvalidTransitionError("moved on")

    monkeypatch.setattr(lifecycle, "end", end)
    result = run(world, execute=lambda d, p: True, clock=outage.clock, sleep=outage.sleep)
    assert (result.reason, sent, outage.waits) == ("store_failed", ["finish"], [])
    assert result.event_error is not None
    assert result.event_error["type"] == "InvalidTransitionError"


# -- indexing, inputs and where the job comes from ----------------------------------------------


def test_index_outputs_indexes_after_finishing(world: World) -> None:
    job = new_job(world)

    def execute(driver: Driver, payload: Payload) -> None:
        out = Path(payload.output_entries[0].path or "")
        (out / "counts.csv").write_text("a,1\n", encoding="utf-8")

    result = run(world, job, execute=execute, index_outputs=True)
    assert result.succeeded and result.state == "FINISHED"
    assert result.index_report is not None and result.index_report.written == 1
    assert events(world, job.uuid) == ["create", "run", "finish", "index", "indexed"]
    (record,) = world.catalog.indexing.files(job.uuid)
    assert record.name.endswith("/counts.csv") and record.sha256


def test_input_entries_name_the_jobs_input_files(world: World) -> None:
    job = world.new_job({"inputs": ["/uploads/a.fcs", "file:///tmp/b.fcs"]})
    seen: list[Any] = []
    run(world, job, execute=lambda d, p: seen.extend(p.input_entries))
    assert sorted(e.name for e in seen) == ["/uploads/a.fcs", "file:///tmp/b.fcs"]
    assert {e.name: e.path for e in seen}["file:///tmp/b.fcs"] == "/tmp/b.fcs"
    assert all(e.uuid is not None and e.uuid.startswith("105") for e in seen)


def test_the_job_may_be_a_compatibility_object(world: World) -> None:
    from datacatalog.managers.pipelinejobs import ManagedPipelineJob

    managed = ManagedPipelineJob(
        world.store,
        {"pipeline_uuid": world.pipeline.uuid},
        measurement_id="measurement.jobs.1",
        data={"compat": True},
        settings=world.catalog.settings,
    ).setup()
    driver = Driver(managed, execute=lambda d, p: True)
    assert driver.catalog is managed.catalog
    driver.start()
    assert driver.wait_for_completion(timeout=WAIT).succeeded
    assert world.jobs.get(managed.uuid).state == "FINISHED"


def test_the_job_from_the_environment(world: World) -> None:
    job = new_job(world)
    env = {
        "DATACATALOG_JOB_UUID": job.uuid,
        "DATACATALOG_JOB_TOKEN": world.jobs.job_token(job.uuid),
    }
    driver = Driver(catalog=world.catalog, env=env, execute=lambda d, p: True)
    assert driver.job_id == uuid.UUID(job.uuid)
    driver.start()
    assert driver.wait_for_completion(timeout=WAIT).succeeded


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DATACATALOG_JOB_UUID is not set"),
        ({"DATACATALOG_JOB_UUID": "not-a-uuid", "DATACATALOG_JOB_TOKEN": "t"}, "JOB_UUID"),
        ({"DATACATALOG_JOB_UUID": typed_uuid("x", "pipelinejob")}, "DATACATALOG_JOB_TOKEN"),
    ],
)
def test_a_missing_or_malformed_environment_is_a_clear_error(
    world: World, env: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        Driver(catalog=world.catalog, env=env)


def test_a_wrong_token_from_the_environment_is_refused_at_start(world: World) -> None:
    job = new_job(world)
    env = {"DATACATALOG_JOB_UUID": job.uuid, "DATACATALOG_JOB_TOKEN": "0" * 64}
    driver = Driver(catalog=world.catalog, env=env, execute=lambda d, p: True)
    with pytest.raises(ForbiddenError):
        driver.start()
    assert [e.name for e in world.jobs.history(job.uuid)] == ["create"]
    assert world.catalog.leases.get(job.uuid) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 1.5}, "max_attempts"),
        ({"retry_interval": -1}, "retry_interval"),
        ({"stage_timeout": 0}, "stage_timeout"),
        ({"stage_timeout": timedelta(seconds=-1)}, "stage_timeout"),
        ({"execute": "not callable"}, "execute"),
        ({"stage_name": ""}, "stage_name"),
        ({"lease_ttl": 0}, "lease_ttl"),
    ],
)
def test_bad_driver_arguments_are_refused(
    world: World, options: dict[str, Any], message: str
) -> None:
    job = new_job(world)
    with pytest.raises(InvalidRequestError, match=message):
        Driver(job, catalog=world.catalog, **options)
    assert [e.name for e in world.jobs.history(job.uuid)] == ["create"]


def test_an_unknown_job_is_named(world: World) -> None:
    missing = typed_uuid("no such job", "pipelinejob")
    with pytest.raises(NotFoundError, match=missing):
        Driver(missing, catalog=world.catalog)
    with pytest.raises(InvalidRequestError, match="job"):
        Driver(42, catalog=world.catalog)


# -- threads: reused, and waited for at exit ------------------------------------------

_EXITS_WHILE_RUNNING = """
import atexit, sys, threading
from pathlib import Path
from tests.support.jobs import make_world
from datacatalog.store import connect

def report() -> None:  # registered first: runs after the driver module's own exit wait
    print(world.catalog.jobs.get(job.uuid).state, flush=True)

atexit.register(report)
from datacatalog.driver import Driver

world = make_world(connect("mongomock://"), Path(sys.argv[1]))
job = world.new_job({"exits": 1})
running = threading.Event()

def execute(driver, payload):
    running.set()
    threading.Event().wait(0.5)

Driver(job, catalog=world.catalog, execute=execute).start()
running.wait()
print("main thread done", flush=True)
"""


def test_the_process_waits_for_a_running_driver_at_exit(tmp_path: Path) -> None:
    """The supervisor runs on a reused daemon thread; the exit still waits for the end."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _EXITS_WHILE_RUNNING, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["main", "thread", "done", "FINISHED"]


def test_drivers_one_after_another_start_no_thread_each(world: World) -> None:
    for _ in range(3):  # the pools warm
        warming = driver_for(world, new_job(world), execute=lambda d, p: None)
        warming.start()
        assert warming.wait_for_completion(timeout=WAIT).succeeded
    before = {t.ident for t in threading.enumerate()}
    for _ in range(20):
        driver = driver_for(world, new_job(world), execute=lambda d, p: None)
        driver.start()
        assert driver.wait_for_completion(timeout=WAIT).succeeded
    started = {t.ident for t in threading.enumerate()} - before
    assert len(started) <= 1  # at most one more reused worker, never one per driver
    names = [t.name for t in threading.enumerate()]
    assert names.count("datacatalog-lease-heartbeats") <= 1
    assert not any(name.startswith("lease-heartbeat-") for name in names)
