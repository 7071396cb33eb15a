"""Running one attempt of one task, wherever the executor puts it.

An executor ships an :class:`Invocation` (plain data: ids, the operation, its arguments,
the job) to a thread, a process or a Dask worker, which calls :func:`run_attempt` and
ships the :class:`Outcome` back. Workers never write to the catalog: the runner is the
only writer, so an attempt is recorded the same way on every executor.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from datacatalog.clock import utc_now
from datacatalog.orchestrator.context import (
    JobInfo,
    OperationContext,
    RecordCollector,
    TaskHandle,
    Toolbelt,
    make_logger,
)
from datacatalog.orchestrator.decorators import Operation
from datacatalog.orchestrator.exceptions import TaskAbortException, TaskRetryException

MAX_TRACEBACK = 8000
TRACEBACK_MARKER = "\n…[traceback cut]…\n"


@dataclass(frozen=True)
class Invocation:
    """One attempt of one task, as sent to a worker."""

    execution_id: str
    workflow_name: str
    task: str
    attempt: int
    max_attempts: int
    retry_interval: float
    operation: Operation
    arguments: Mapping[str, Any]
    job: JobInfo
    inputs: Mapping[str, Any]

    @property
    def key(self) -> str:
        """A key unique to this attempt (Dask caches results by key)."""
        return f"{self.execution_id}-{self.task}-{self.attempt}"


@dataclass
class Outcome:
    """How an attempt ended: ``success``, ``retry``, ``abort`` or ``failed``."""

    task: str
    attempt: int
    status: str
    started: datetime
    ended: datetime
    message: str | None = None
    retry_interval: float | None = None
    error: dict[str, Any] | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    """Paths (relative to the archive directory) the attempt asked ``toolbelt.output_path`` for."""


def error_info(exc: BaseException) -> dict[str, Any]:
    """The type, message and traceback (cut to a bound, with a marker) of ``exc``."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins."),
        "message": str(exc),
        "traceback": cut_traceback(text),
    }


def cut_traceback(text: str) -> str:
    """``text`` kept to :data:`MAX_TRACEBACK` characters: its start and its end (the cause)."""
    if len(text) <= MAX_TRACEBACK:
        return text
    half = (MAX_TRACEBACK - len(TRACEBACK_MARKER)) // 2
    return text[:half] + TRACEBACK_MARKER + text[-half:]


def failure(invocation: Invocation, error: dict[str, Any], *, started: datetime) -> Outcome:
    """An outcome for an attempt that ended outside the operation (a worker that died)."""
    return Outcome(
        invocation.task,
        invocation.attempt,
        "failed",
        started,
        utc_now(),
        message=error["message"],
        error=error,
    )


def run_attempt(invocation: Invocation, cancelled: Callable[[], bool]) -> Outcome:
    """Call the operation once and report how it ended.

    Whatever the operation raises — an ``Exception``, ``SystemExit``, any other
    ``BaseException`` — ends the attempt as failed with that exception as its error.
    """
    started = utc_now()
    op = invocation.operation
    collector = RecordCollector(invocation.task, invocation.attempt)
    logger = make_logger(
        f"datacatalog.workflow.{invocation.workflow_name}.{invocation.task}",
        collector,
        op.logging_handlers,
    )
    ctx = OperationContext(
        execution_id=invocation.execution_id,
        workflow_name=invocation.workflow_name,
        task=TaskHandle(
            invocation.task, invocation.attempt, invocation.max_attempts, invocation.retry_interval
        ),
        job=invocation.job,
        inputs=invocation.inputs,
        logger=logger,
        _cancelled=cancelled,
    )
    extra: dict[str, Any] = {}
    toolbelt: Toolbelt | None = None
    if op.toolbelt:
        toolbelt = extra["toolbelt"] = Toolbelt(invocation.job, invocation.inputs, logger)
    status, message, interval, error = "success", None, None, None
    try:
        op.func(ctx, **extra, **dict(invocation.arguments))
    except TaskRetryException as exc:
        status, message, interval = "retry", str(exc), exc.retry_interval
        error = error_info(exc)
    except TaskAbortException as exc:
        status, message, error = "abort", str(exc), error_info(exc)
    except Exception as exc:
        status, message, error = "failed", str(exc), error_info(exc)
    except BaseException as exc:
        # SystemExit, KeyboardInterrupt, GeneratorExit, a class of the operation's own:
        # the operation's failure, never the worker's, so the attempt still has an outcome.
        status, message, error = "failed", f"{type(exc).__name__}: {exc}", error_info(exc)
    finally:
        for handler in op.logging_handlers:
            logger.removeHandler(handler)
    return Outcome(
        invocation.task,
        invocation.attempt,
        status,
        started,
        utc_now(),
        message=message,
        retry_interval=interval,
        error=error,
        logs=collector.records,
        outputs=list(toolbelt.written) if toolbelt is not None else [],
    )
