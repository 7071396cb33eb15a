"""What an executor does for the runner: run attempts somewhere and report back.

The runner calls :meth:`Executor.start` once, :meth:`Executor.submit_many` with the
attempts of the tasks that became ready together, and :meth:`Executor.close` at the end.
The executor reports through the ``emit`` callback it was started with, from any thread:
a :class:`Started` when an attempt begins on its worker and a :class:`Finished` with the
attempt's outcome. It never retries (retries are the runner's) and never writes to the
catalog.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from datacatalog.orchestrator.exceptions import InvalidWorkflowRunnerParams
from datacatalog.orchestrator.worker import Invocation, Outcome


@dataclass(frozen=True)
class Started:
    """An attempt began on its worker."""

    task: str
    attempt: int
    started: datetime
    worker: str | None = None


@dataclass(frozen=True)
class Finished:
    """An attempt ended."""

    outcome: Outcome


ExecutorEvent = Started | Finished
Emit = Callable[[ExecutorEvent], None]


class Executor(ABC):
    """Runs attempts of tasks and reports their start and outcome."""

    #: Whether invocations cross a process boundary (and so must pickle).
    pickles = False

    def start(self, execution_id: str, emit: Emit) -> None:
        """Get ready to run attempts of ``execution_id``, reporting through ``emit``."""
        self.execution_id = execution_id
        self.emit = emit

    @abstractmethod
    def submit(self, invocation: Invocation) -> None:
        """Run one attempt (without blocking); report :class:`Started` and :class:`Finished`."""

    def submit_many(self, invocations: Sequence[Invocation]) -> None:
        """Run several attempts (without blocking): :meth:`submit` for each, in order.

        Executors that can hand a batch over at once (Dask: one graph update for all)
        override it.
        """
        for invocation in invocations:
            self.submit(invocation)

    @abstractmethod
    def cancel(self) -> list[tuple[str, int]]:
        """Raise the cancel flag operations poll; drop queued attempts.

        Returns:
            The (task, attempt) pairs dropped before they started: they report nothing.
        """

    @abstractmethod
    def close(self) -> None:
        """Release what :meth:`start` took (waits for running attempts)."""

    def describe(self) -> str:
        """A short description for the execution record."""
        return type(self).__name__

    def check(self, invocations: Sequence[Invocation]) -> None:
        """Refuse, before anything runs, invocations this executor cannot ship.

        Raises:
            InvalidWorkflowRunnerParams: An operation or argument does not pickle.
        """
        if not self.pickles:
            return
        for invocation in invocations:
            try:
                self.dumps(invocation)
            except Exception as exc:
                raise InvalidWorkflowRunnerParams(
                    f"task {invocation.task}: {_culprit(self, invocation)} cannot be sent to a "
                    f"{self.describe()} worker because it does not pickle "
                    f"({type(exc).__name__}: {exc})",
                    task=invocation.task,
                ) from exc

    def dumps(self, invocation: Invocation) -> bytes:
        """Serialize an invocation the way this executor ships it."""
        return pickle.dumps(invocation)


def _culprit(executor: Executor, invocation: Invocation) -> str:
    for name, value in invocation.arguments.items():
        try:
            executor.dumps(value)
        except Exception:
            return f"argument {name!r} ({type(value).__name__})"
    for name, value in invocation.inputs.items():
        try:
            executor.dumps(value)
        except Exception:
            return f"input {name!r} ({type(value).__name__})"
    return f"operation {invocation.operation.path}"
