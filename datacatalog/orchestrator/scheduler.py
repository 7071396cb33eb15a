"""Which task runs next: the ready set, the attempts in flight, retries and their due times.

A :class:`Scheduler` works on an execution's task records alone (no store, no executor):
it counts each task's unmet dependencies, hands out the tasks that may start now (one
attempt each), decides whether a failed attempt is retried and when, and releases the
dependants of a task that settled. A task satisfies its dependants when it succeeded, or
failed with ``ignore_failure``. The runner changes the records' statuses (through its
recorder) and tells the scheduler; the scheduler never writes.

Retry rules: ``max_attempts`` counts attempts in all (``-1``: until success); an abort is
never retried, nor is a task that ignores its failure (it runs once).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from datacatalog.orchestrator.decorators import Operation
from datacatalog.orchestrator.model import UNLIMITED_ATTEMPTS, TaskRecord, attempts_left

WAITING = ("pending", "retrying")
"""The statuses of a task that has an attempt to come."""


def attempt_budget(operation: Operation, default: int) -> int:
    """Attempts in all for a task of ``operation``: its own, else ``default``.

    Given per operation wins (0 and False included; None falls back). A task that ignores
    its failure runs once: it is never retried.
    """
    if operation.ignore_failure:
        return 1
    return operation.max_attempts if operation.max_attempts is not None else default


def resumed_budget(task: TaskRecord, operation: Operation, default: int) -> int:
    """A failed task's ``max_attempts`` when its execution resumes: a fresh budget.

    Attempt numbers go on (each attempt keeps its own key), so the budget counts from the
    attempts it already made.
    """
    if task.ignore_failure:
        budget = 1
    else:
        budget = operation.max_attempts if operation.max_attempts is not None else default
    return budget if budget == UNLIMITED_ATTEMPTS else task.attempts + budget


def satisfies(task: TaskRecord) -> bool:
    """Whether ``task`` lets its dependants run."""
    return task.status == "success" or (task.status == "failed" and task.ignore_failure)


class Scheduler:
    """The order of one run of an execution's tasks.

    Args:
        tasks: The execution's task records by name, in graph order (the caller changes
            their statuses; the scheduler reads them).
    """

    def __init__(self, tasks: Mapping[str, TaskRecord]) -> None:
        self._tasks = tasks
        self._dependants: dict[str, list[str]] = {name: [] for name in tasks}
        self._unmet: dict[str, int] = {}
        for task in tasks.values():
            for dep in task.dependencies:
                self._dependants[dep].append(task.name)
            self._unmet[task.name] = sum(not satisfies(tasks[d]) for d in task.dependencies)
        # An ordered set: insertion order is graph order for the first wave.
        self._candidates: dict[str, None] = {
            name: None
            for name, task in tasks.items()
            if self._unmet[name] == 0 and task.status in WAITING
        }
        self.inflight: dict[str, int] = {}
        """The attempt of each task sent and not yet ended."""
        self._finished: set[tuple[str, int]] = set()

    @property
    def busy(self) -> bool:
        """Whether an attempt is in flight."""
        return bool(self.inflight)

    def ready(self, now: datetime) -> list[tuple[TaskRecord, int]]:
        """The tasks that may start at ``now``, each with its next attempt (now in flight)."""
        ready = []
        for name in list(self._candidates):
            task = self._tasks[name]
            if name in self.inflight:
                continue
            if task.status not in WAITING:
                del self._candidates[name]
                continue
            if task.status == "retrying" and task.due_at is not None and task.due_at > now:
                continue
            del self._candidates[name]
            attempt = task.attempts + 1
            self.inflight[name] = attempt
            ready.append((task, attempt))
        return ready

    def is_current(self, name: str, attempt: int) -> bool:
        """Whether a start of ``attempt`` of task ``name`` is news.

        A start after the attempt ended, or of an attempt dropped by a cancel, is stale.
        """
        return self.inflight.get(name) == attempt and (name, attempt) not in self._finished

    def ended(self, name: str, attempt: int) -> None:
        """``attempt`` of task ``name`` ended: it is no longer in flight."""
        self._finished.add((name, attempt))
        self.inflight.pop(name, None)

    def dropped(self, name: str) -> None:
        """The attempt of task ``name`` was stopped (a cancel): it is no longer in flight."""
        self.inflight.pop(name, None)

    @staticmethod
    def retry_due(
        task: TaskRecord, outcome: str, interval: float | None, now: datetime
    ) -> datetime | None:
        """When a failed attempt's task runs again, or None when it is not retried.

        Args:
            task: The task, its ``attempts`` counting the attempt that failed.
            outcome: The attempt's outcome (``"abort"`` is never retried).
            interval: Seconds the attempt asked to wait (None: the task's own interval).
            now: The time the attempt ended.
        """
        if (
            outcome == "abort"
            or task.ignore_failure
            or not attempts_left(task.attempts, task.max_attempts)
        ):
            return None
        return now + timedelta(seconds=task.retry_interval if interval is None else interval)

    def settled(self, task: TaskRecord) -> None:
        """After ``task`` changed: retry it, or release the dependants it satisfies."""
        if task.status == "retrying":
            self._candidates[task.name] = None
        elif satisfies(task):
            for name in self._dependants[task.name]:
                self._unmet[name] -= 1
                if self._unmet[name] == 0:
                    self._candidates[name] = None

    def next_due(self, now: datetime) -> datetime | None:
        """The earliest time a retrying task is due (``now`` for one without a due time)."""
        dues = [t.due_at or now for t in self._tasks.values() if t.status == "retrying"]
        return min(dues) if dues else None
