"""Task-record writes off the runner's loop (:mod:`datacatalog.orchestrator.writer`), on
both engines: what is stored matches what the runner holds, a failed write fails the
execution, and the writer applies and writes moves in order.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from datacatalog.errors import InvalidRequestError, UnavailableError
from datacatalog.orchestrator.executors import ThreadExecutor
from datacatalog.orchestrator.model import TaskRecord
from datacatalog.orchestrator.plugin import PluginManager
from datacatalog.orchestrator.records import ExecutionRecords, TaskMove
from datacatalog.orchestrator.workflow_runner import WorkflowRunner
from datacatalog.orchestrator.writer import TaskWriter
from tests.support import orchestrator_ops as ops
from tests.support.clocks import FakeClock
from tests.support.jobs import World


def make_runner(world: World, workflow: Any, **inputs: Any) -> WorkflowRunner:
    job = world.new_job({"n": uuid.uuid4().hex})
    return WorkflowRunner(
        world.catalog,
        None,
        PluginManager(world.catalog, world.data_dir / "plugins"),
        service_id=job.uuid,
        workflow_name=workflow,
        inputs=inputs,
        executor=ThreadExecutor(pool_size=4),
        task_retry_interval=0,
        clock=FakeClock(),
        cancel_poll_interval=0.05,
    )


def stored_view(task: TaskRecord) -> tuple[Any, ...]:
    return (
        task.name,
        task.status,
        task.attempts,
        [(a["attempt"], a["outcome"]) for a in task.attempt_log],
        task.started_at is not None,
        task.ended_at is not None,
    )


def test_stored_task_records_match_the_runners_after_many_tasks(world: World) -> None:
    run = make_runner(world, ops.many_noops, count=40)
    execution = run.execute()
    assert execution.status == "succeeded"
    stored = ExecutionRecords(world.catalog.store).tasks(execution.id)
    assert [stored_view(t) for t in stored] == [stored_view(t) for t in run.tasks]
    assert {t.status for t in stored} == {"success"}
    assert all(t.attempts == 1 and len(t.attempt_log) == 1 for t in stored)


def test_stored_retries_match_the_runners(world: World) -> None:
    key = uuid.uuid4().hex
    try:
        run = make_runner(world, ops.single, op="fail_until", key=key, succeed_on=3)
        execution = run.execute()
    finally:
        ops.CALLS.pop(key, None)
    assert execution.status == "succeeded"
    (stored,) = ExecutionRecords(world.catalog.store).tasks(execution.id)
    assert stored_view(stored) == stored_view(run.tasks[0])
    assert [a["outcome"] for a in stored.attempt_log] == ["failed", "failed", "success"]


def test_a_task_write_that_fails_fails_the_execution(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ExecutionRecords.move_tasks

    def refuse_success(self: ExecutionRecords, moves: Sequence[TaskMove]) -> list[TaskMove]:
        for move in moves:
            if move.status == "success":
                raise UnavailableError(f"the database refused task {move.task.name}")
        return real(self, moves)

    monkeypatch.setattr(ExecutionRecords, "move_tasks", refuse_success)
    run = make_runner(world, ops.many_noops, count=3)
    with pytest.raises(UnavailableError, match="the database refused task"):
        run.execute()
    stored = ExecutionRecords(world.catalog.store).execution(run.execution_id)
    assert stored.status == "failed"
    assert stored.reason == "error"
    assert stored.error is not None and "the database refused task" in stored.error["message"]
    assert world.jobs.get(stored.job_uuid).state == "FAILED"


def test_the_writer_applies_moves_at_once_and_writes_them_in_order(world: World) -> None:
    run = make_runner(world, ops.many_noops, count=1)
    (task,) = run.tasks
    writer = TaskWriter(ExecutionRecords(world.catalog.store))
    try:
        writer.move(task, "started", attempts=1, started_at=run.clock.now(), due_at=None)
        assert task.status == "started" and task.attempts == 1  # in memory at once
        now = run.clock.now()
        entry = {"attempt": 1, "outcome": "success", "started": now, "ended": now}
        writer.move(
            task, "success", attempt={**entry, "message": None, "error_type": None}, ended_at=now
        )
        assert task.status == "success" and len(task.attempt_log) == 1
        writer.flush()
        # A write the store refuses is raised by the next flush, naming what is wrong.
        writer.move(task, "retrying", attempt={"attempt": 2}, due_at=None)
        with pytest.raises(InvalidRequestError, match="attempt_log"):
            writer.flush()
    finally:
        writer.close()
    (stored,) = ExecutionRecords(world.catalog.store).tasks(run.execution_id)
    assert (stored.status, stored.attempts, len(stored.attempt_log)) == ("success", 1, 1)


def test_moves_made_together_are_written_together_and_a_stale_one_is_named(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run = make_runner(world, ops.many_noops, count=3)
    records = ExecutionRecords(world.catalog.store)
    first, second, third = run.tasks
    # Another writer moved the third record on: its guarded move must not land.
    world.catalog.store.update("workflow_task", {"uuid": third.id}, {"$set": {"status": "failed"}})
    calls: list[int] = []
    real = world.catalog.store.bulk_update

    def counted(kind: str, updates: Any) -> int:
        calls.append(len(updates))
        return real(kind, updates)

    monkeypatch.setattr(world.catalog.store, "bulk_update", counted)
    writer = TaskWriter(records)
    gate = threading.Event()
    # Hold the writer thread so that every move below queues up behind the gate.
    writer._pool.submit(gate.wait)
    try:
        now = run.clock.now()
        for task in (first, second, third):
            writer.move(task, "started", attempts=1, started_at=now, due_at=None)
        gate.set()
        with caplog.at_level(logging.WARNING, logger="datacatalog.orchestrator.writer"):
            writer.flush()
    finally:
        gate.set()
        writer.close()
    assert calls == [3]  # one round trip for the three moves
    stored = {t.name: t.status for t in records.tasks(run.execution_id)}
    assert stored == {first.name: "started", second.name: "started", third.name: "failed"}
    assert f"task {third.name} of execution" in caplog.text
    assert first.name not in caplog.text


def _started(writer: TaskWriter, run: WorkflowRunner, tasks: list[TaskRecord]) -> None:
    now = run.clock.now()
    for task in tasks:
        writer.move(task, "started", attempts=1, started_at=now, due_at=None)


def test_a_refused_move_costs_only_itself_and_the_rest_of_its_write_lands(
    world: World,
) -> None:
    run = make_runner(world, ops.many_noops, count=5)
    records = ExecutionRecords(world.catalog.store)
    writer = TaskWriter(records)
    gate = threading.Event()
    writer._pool.submit(gate.wait)  # the five moves below share one write
    try:
        first, second, bad, fourth, fifth = run.tasks
        _started(writer, run, [first, second])
        writer.move(bad, "retrying", attempt={"attempt": 2}, due_at=None)  # invalid entry
        _started(writer, run, [fourth, fifth])
        gate.set()
        with pytest.raises(InvalidRequestError, match="attempt_log"):
            writer.flush()
        writer.flush()  # the error was raised once
    finally:
        gate.set()
        writer.close()
    stored = {t.name: t.status for t in records.tasks(run.execution_id)}
    assert stored == {
        first.name: "started",
        second.name: "started",
        bad.name: "pending",
        fourth.name: "started",
        fifth.name: "started",
    }


def test_moves_after_one_the_server_refused_are_sent_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.errors import DataCatalogError
    from datacatalog.store import OrderedBulkResult

    run = make_runner(world, ops.many_noops, count=5)
    store = world.catalog.store
    real = store.bulk_update
    writes: list[int] = []

    def refuse_the_third(kind: str, updates: Any) -> OrderedBulkResult:
        # As the server does with an ordered write: what comes before the refused update
        # is applied, what comes after is not sent.
        writes.append(len(updates))
        if len(writes) > 1:
            return real(kind, updates)
        real(kind, updates[:2])
        return OrderedBulkResult(
            matched=2, applied=2, refused=2, error=DataCatalogError("document too large")
        )

    monkeypatch.setattr(store, "bulk_update", refuse_the_third)
    records = ExecutionRecords(store)
    writer = TaskWriter(records)
    gate = threading.Event()
    writer._pool.submit(gate.wait)
    try:
        _started(writer, run, run.tasks)
        gate.set()
        with pytest.raises(DataCatalogError, match="document too large"):
            writer.flush()
    finally:
        gate.set()
        writer.close()
    assert writes == [5, 2]  # the two moves after the refused one, in a second write
    stored = [t.status for t in records.tasks(run.execution_id)]
    assert stored == ["started", "started", "pending", "started", "started"]
