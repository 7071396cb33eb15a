"""The scheduler of a workflow's tasks (:mod:`datacatalog.orchestrator.scheduler`), alone:
task records in, the ready set, retries and due times out. No store, no executor.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from datacatalog.orchestrator.decorators import Operation
from datacatalog.orchestrator.model import UNLIMITED_ATTEMPTS, TaskRecord
from datacatalog.orchestrator.scheduler import (
    Scheduler,
    attempt_budget,
    resumed_budget,
    satisfies,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def task(name: str, *deps: str, **fields: Any) -> TaskRecord:
    values: dict[str, Any] = {
        "id": f"task-{name}",
        "execution_id": "execution-1",
        "name": name,
        "operation": f"ops:{name}",
        "dependencies": list(deps),
        "status": "pending",
        "max_attempts": 3,
        "retry_interval": 10.0,
        "ignore_failure": False,
        **fields,
    }
    return TaskRecord(**values)


def graph(*tasks: TaskRecord) -> dict[str, TaskRecord]:
    for position, record in enumerate(tasks):
        record.position = position
    return {t.name: t for t in tasks}


def names(ready: list[tuple[TaskRecord, int]]) -> list[tuple[str, int]]:
    return [(t.name, attempt) for t, attempt in ready]


def run(record: TaskRecord, attempt: int, status: str) -> None:
    """What the recorder does to a record: the attempt started and ended with ``status``."""
    record.attempts, record.status = attempt, status


def diamond() -> dict[str, TaskRecord]:
    return graph(
        task("top"), task("left", "top"), task("right", "top"), task("bottom", "left", "right")
    )


def test_the_first_wave_is_the_tasks_without_dependencies_in_graph_order() -> None:
    tasks = graph(task("b"), task("a"), task("c", "a", "b"))
    scheduler = Scheduler(tasks)
    assert names(scheduler.ready(NOW)) == [("b", 1), ("a", 1)]
    assert scheduler.busy and scheduler.inflight == {"b": 1, "a": 1}
    assert scheduler.ready(NOW) == []  # nothing is handed out twice


def test_dependants_are_released_when_all_their_dependencies_succeeded() -> None:
    tasks = diamond()
    scheduler = Scheduler(tasks)
    assert names(scheduler.ready(NOW)) == [("top", 1)]
    run(tasks["top"], 1, "success")
    scheduler.ended("top", 1)
    scheduler.settled(tasks["top"])
    assert not scheduler.busy
    assert names(scheduler.ready(NOW)) == [("left", 1), ("right", 1)]
    run(tasks["left"], 1, "success")
    scheduler.ended("left", 1)
    scheduler.settled(tasks["left"])
    assert scheduler.ready(NOW) == []  # bottom still waits for right
    run(tasks["right"], 1, "success")
    scheduler.ended("right", 1)
    scheduler.settled(tasks["right"])
    assert names(scheduler.ready(NOW)) == [("bottom", 1)]


def test_a_failed_task_blocks_its_dependants_unless_it_ignores_its_failure() -> None:
    tasks = graph(
        task("a"), task("b", ignore_failure=True), task("after_a", "a"), task("after_b", "b")
    )
    scheduler = Scheduler(tasks)
    assert names(scheduler.ready(NOW)) == [("a", 1), ("b", 1)]
    for name in ("a", "b"):
        run(tasks[name], 1, "failed")
        scheduler.ended(name, 1)
        scheduler.settled(tasks[name])
    assert names(scheduler.ready(NOW)) == [("after_b", 1)]
    assert scheduler.next_due(NOW) is None  # nothing will ever release after_a
    assert [satisfies(tasks[n]) for n in ("a", "b")] == [False, True]


def test_a_retrying_task_is_ready_again_at_its_due_time_with_its_next_attempt() -> None:
    tasks = graph(task("a"))
    scheduler = Scheduler(tasks)
    scheduler.ready(NOW)
    run(tasks["a"], 1, "retrying")
    due = Scheduler.retry_due(tasks["a"], "failure", None, NOW)
    assert due == NOW + timedelta(seconds=10)
    tasks["a"].due_at = due
    scheduler.ended("a", 1)
    scheduler.settled(tasks["a"])
    assert scheduler.next_due(NOW) == due
    assert scheduler.ready(NOW + timedelta(seconds=9)) == []
    assert names(scheduler.ready(due)) == [("a", 2)]


def test_a_retrying_task_without_a_due_time_is_due_now() -> None:
    tasks = graph(
        task("a", status="retrying", attempts=1), task("b", status="retrying", attempts=2)
    )
    tasks["b"].due_at = NOW + timedelta(seconds=30)
    scheduler = Scheduler(tasks)
    assert scheduler.next_due(NOW) == NOW
    assert names(scheduler.ready(NOW)) == [("a", 2)]


def test_the_interval_an_attempt_asks_for_wins_over_the_tasks() -> None:
    record = task("a", attempts=1)
    assert Scheduler.retry_due(record, "failure", 2.5, NOW) == NOW + timedelta(seconds=2.5)
    assert Scheduler.retry_due(record, "failure", 0, NOW) == NOW


def test_what_is_never_retried() -> None:
    assert Scheduler.retry_due(task("a", attempts=1), "abort", None, NOW) is None
    assert (
        Scheduler.retry_due(task("a", attempts=1, ignore_failure=True), "failure", None, NOW)
        is None
    )
    assert Scheduler.retry_due(task("a", attempts=3), "failure", None, NOW) is None  # spent
    assert Scheduler.retry_due(task("a", attempts=2), "failure", None, NOW) is not None


def test_unlimited_attempts_are_always_retried() -> None:
    record = task("a", attempts=1000, max_attempts=UNLIMITED_ATTEMPTS)
    assert Scheduler.retry_due(record, "failure", None, NOW) == NOW + timedelta(seconds=10)


def test_a_stale_or_dropped_start_is_not_news() -> None:
    tasks = graph(task("a"), task("b"))
    scheduler = Scheduler(tasks)
    scheduler.ready(NOW)
    assert scheduler.is_current("a", 1) and not scheduler.is_current("a", 2)
    scheduler.ended("a", 1)
    assert not scheduler.is_current("a", 1)  # its end came first
    scheduler.dropped("b")  # a cancel stopped it
    assert not scheduler.is_current("b", 1) and not scheduler.busy


def test_a_resumed_execution_starts_after_what_already_succeeded() -> None:
    tasks = diamond()
    run(tasks["top"], 1, "success")
    run(tasks["left"], 2, "success")
    run(tasks["right"], 1, "pending")
    scheduler = Scheduler(tasks)
    assert names(scheduler.ready(NOW)) == [("right", 2)]  # attempt numbers go on


def test_a_task_that_changed_status_meanwhile_leaves_the_ready_set() -> None:
    tasks = graph(task("a"), task("b"))
    scheduler = Scheduler(tasks)
    tasks["a"].status = "failed"
    assert names(scheduler.ready(NOW)) == [("b", 1)]


def op(**options: Any) -> Operation:
    def body(ctx: Any) -> None:
        """An operation."""

    return Operation(body, **options)


def test_attempt_budgets_of_new_and_resumed_tasks() -> None:
    assert attempt_budget(op(), 30) == 30
    assert attempt_budget(op(max_attempts=4), 30) == 4
    assert attempt_budget(op(max_attempts=4, ignore_failure=True), 30) == 1
    assert attempt_budget(op(max_attempts=UNLIMITED_ATTEMPTS), 30) == UNLIMITED_ATTEMPTS
    failed = task("a", attempts=3, status="failed")
    assert resumed_budget(failed, op(max_attempts=2), 30) == 5  # a fresh budget after three
    assert resumed_budget(failed, op(), 30) == 33
    assert resumed_budget(failed, op(max_attempts=UNLIMITED_ATTEMPTS), 30) == UNLIMITED_ATTEMPTS
    ignoring = task("a", attempts=1, status="failed", ignore_failure=True)
    assert resumed_budget(ignoring, op(max_attempts=5), 30) == 2
