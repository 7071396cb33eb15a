"""The loop that runs one execution's attempts on an executor.

Each turn: stop at the stage timeout or on a cancel (no new attempt starts, running ones
are stopped), send the tasks the :class:`~.scheduler.Scheduler` finds ready to the
executor together (one hand-over), then take what the executor reported (an attempt's
start and end together when both arrived) and send the matching signals, whose first
reader is the runner's recorder. With nothing in flight it sleeps until the next retry is
due, or ends. How it ended (:class:`LoopEnd`) is the runner's to record.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from datacatalog.orchestrator import events
from datacatalog.orchestrator.clock import Clock
from datacatalog.orchestrator.executors.base import Executor, ExecutorEvent, Finished, Started
from datacatalog.orchestrator.model import Execution, TaskRecord
from datacatalog.orchestrator.recorder import Recorder
from datacatalog.orchestrator.scheduler import Scheduler
from datacatalog.orchestrator.worker import Invocation, Outcome

Emit = Callable[..., None]
"""Sends a signal (first to the recorder, then to subscribers): ``emit(signal, **kwargs)``."""
Invoke = Callable[[TaskRecord, int], Invocation]
"""What the executor gets for an attempt of a task."""


@dataclass
class LoopEnd:
    """How the loop ended: cancelled, past its stage timeout, or a task's root error."""

    cancelled: bool = False
    timed_out: bool = False
    root_error: dict[str, Any] | None = None

    @property
    def running(self) -> bool:
        """Whether new attempts may start (nothing stopped the execution yet)."""
        return not (self.cancelled or self.timed_out or self.root_error is not None)


class ExecutionLoop:
    """Runs the attempts of one execution until every task ended, a cancel or a failure.

    Args:
        execution: The execution's record.
        tasks: Its task records by name, in graph order.
        executor: Where the attempts run.
        recorder: Writes the records (the loop has it flush the batched writes).
        emit: Sends a signal.
        invoke: Builds an attempt's invocation.
        clock: The runner's clock.
        poll: Seconds between reads of the persisted cancel flag.
        cancel_flag: Set when this process asks for a cancel (or lost the lease).
        cancel_requested: Reads the persisted cancel flag.
        timeout: Seconds the execution may run (None: no bound).
    """

    def __init__(
        self,
        execution: Execution,
        tasks: dict[str, TaskRecord],
        *,
        executor: Executor,
        recorder: Recorder,
        emit: Emit,
        invoke: Invoke,
        clock: Clock,
        poll: float,
        cancel_flag: threading.Event,
        cancel_requested: Callable[[], bool],
        timeout: float | None,
    ) -> None:
        self.execution = execution
        self.tasks = tasks
        self.executor = executor
        self.recorder = recorder
        self.emit = emit
        self.invoke = invoke
        self.clock = clock
        self.poll = poll
        self.cancel_flag = cancel_flag
        self.cancel_requested = cancel_requested
        self.end = LoopEnd()
        self.started = False
        """Whether the executor was started (it is then the caller's to close)."""
        self.deadline: datetime | None = (
            None if timeout is None else clock.now() + timedelta(seconds=timeout)
        )
        self._inbox: queue.Queue[ExecutorEvent] = queue.Queue()
        self._last_poll = clock.now()

    def run(self) -> LoopEnd:
        """Run until nothing more starts and nothing is in flight; everything is written."""
        self.executor.start(self.execution.id, self._inbox.put)
        self.started = True
        scheduler = Scheduler(self.tasks)
        self._last_poll = self.clock.now()
        while self._turn(scheduler):
            pass
        self.recorder.flush()  # the task records are stored before the execution's end
        return self.end

    def _turn(self, scheduler: Scheduler) -> bool:
        """One turn of the loop; False when it is over."""
        now = self.clock.now()
        self._check_deadline(now, scheduler)
        self._check_cancel(now, scheduler)
        if self.end.running:
            self._send_ready(now, scheduler)
        if not scheduler.busy:
            return self._idle(scheduler)
        self._receive(now, scheduler)
        return True

    def _check_deadline(self, now: datetime, scheduler: Scheduler) -> None:
        if self.deadline is None or self.end.cancelled or self.end.timed_out:
            return
        if now >= self.deadline:
            # As a cancel, without one: nothing new starts, running attempts stop.
            self.end.timed_out = True
            self._stop_running(scheduler)

    def _check_cancel(self, now: datetime, scheduler: Scheduler) -> None:
        polling = (now - self._last_poll).total_seconds() >= self.poll
        if not self.end.cancelled and (
            self.cancel_flag.is_set() or (polling and self.cancel_requested())
        ):
            self.end.cancelled = True
            self.emit(events.on_cancelling_workflow_signal, execution=self.execution)
            self._stop_running(scheduler)
        if polling:
            self._last_poll = now

    def _stop_running(self, scheduler: Scheduler) -> None:
        for name, _attempt in self.executor.cancel():
            scheduler.dropped(name)

    def _send_ready(self, now: datetime, scheduler: Scheduler) -> None:
        """The tasks ready now go to the executor together (one hand-over)."""
        sending = []
        for task, attempt in scheduler.ready(now):
            self.emit(events.sent_task_signal, task=task, attempt=attempt)
            sending.append(self.invoke(task, attempt))
        self.executor.submit_many(sending)

    def _idle(self, scheduler: Scheduler) -> bool:
        """Nothing in flight: sleep until the next retry is due; False when none is."""
        if not self.end.running:
            return False
        due = scheduler.next_due(self.clock.now())
        if due is None:
            return False  # every task ended (or is blocked behind a failure)
        wake = due if self.deadline is None else min(due, self.deadline)
        self.clock.sleep(max(0.0, (wake - self.clock.now()).total_seconds()))
        return True

    def _receive(self, now: datetime, scheduler: Scheduler) -> None:
        """Wait for what the executor reports (while writing due starts) and handle it."""
        next_start = self.recorder.write_due_starts()
        wait = self.poll if next_start is None else min(self.poll, next_start)
        if self.deadline is not None and not self.end.timed_out:
            wait = min(wait, (self.deadline - now).total_seconds())
        try:
            batch = [self._inbox.get(timeout=max(0.01, wait))]
        except queue.Empty:
            return
        while True:  # take what else has arrived: an attempt's start and end together
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        ending = {(e.outcome.task, e.outcome.attempt) for e in batch if isinstance(e, Finished)}
        for event in batch:
            if isinstance(event, Started):
                self._started(event, ending, scheduler)
            else:
                self._finished(event.outcome, scheduler)
        self.recorder.flush_logs()

    def _started(self, event: Started, ending: set[tuple[str, int]], scheduler: Scheduler) -> None:
        if scheduler.is_current(event.task, event.attempt):
            self.emit(
                events.start_task_signal,
                task=self.tasks[event.task],
                attempt=event.attempt,
                started=event.started,
                coalesced=(event.task, event.attempt) in ending,
            )

    def _finished(self, outcome: Outcome, scheduler: Scheduler) -> None:
        task = self.tasks[outcome.task]
        scheduler.ended(outcome.task, outcome.attempt)
        if task.status != "started":  # its start event is still on its way (Dask)
            self.emit(
                events.start_task_signal,
                task=task,
                attempt=outcome.attempt,
                started=outcome.started,
                coalesced=True,
            )
        if outcome.status == "success":
            self.emit(events.on_success_task_signal, task=task, outcome=outcome)
            scheduler.settled(task)
            return
        # A retry is recorded even while cancelling or failing: the task stays unfinished
        # (``retrying``) and is not sent again; a resume runs it.
        due = scheduler.retry_due(task, outcome.status, outcome.retry_interval, self.clock.now())
        self.emit(
            events.on_failure_task_signal,
            task=task,
            outcome=outcome,
            retry=due is not None,
            due_at=due,
        )
        scheduler.settled(task)
        if task.status == "failed" and not task.ignore_failure and self.end.root_error is None:
            error = outcome.error or {"type": "Error", "message": outcome.message or ""}
            self.end.root_error = {**error, "task": task.name}
