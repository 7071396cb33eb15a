"""What operations and workflow functions see: ``ctx`` (and ``toolbelt``).

An operation gets ``ctx`` with

* ``ctx.task``: its name, attempt number and limits, ``retry(message, retry_interval=None)``
  and ``abort(message)``;
* ``ctx.job``: the job (UUID, archive path, storage system, a local archive directory
  when the storage is local, and the job token);
* ``ctx.inputs``: the execution's inputs;
* ``ctx.logger``: a logger whose records land in the execution's log;
* ``ctx.cancel_requested``: True once the execution is being cancelled (long operations
  poll it and return early).

Everything here is plain data and pickles, so it travels to process and Dask workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from datacatalog.clock import utc_now
from datacatalog.orchestrator.exceptions import TaskAbortException, TaskRetryException

MAX_LOG_MESSAGE = 4000


@dataclass(frozen=True)
class JobInfo:
    """The job an execution belongs to, as operations see it."""

    uuid: str
    archive_path: str
    archive_system: str
    archive_dir: str | None
    token: str

    @property
    def storage(self) -> str:
        """The name of the storage system holding the archive path."""
        return self.archive_system


class TaskHandle:
    """``ctx.task``: the running task and its two signals."""

    def __init__(self, name: str, attempt: int, max_attempts: int, retry_interval: float) -> None:
        self.name = name
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.retry_interval = retry_interval

    def retry(self, message: str, retry_interval: float | None = None) -> NoReturn:
        """End this attempt as failed and ask for another (it counts as an attempt)."""
        raise TaskRetryException(message, retry_interval=retry_interval)

    def abort(self, message: str) -> NoReturn:
        """End the task as failed, never to be retried."""
        raise TaskAbortException(message)


class RecordCollector(logging.Handler):
    """Keeps an attempt's log records as plain dicts, for the execution's log."""

    def __init__(self, task: str | None, attempt: int | None) -> None:
        super().__init__(logging.DEBUG)
        self.task = task
        self.attempt = attempt
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep one record (its message cut to a bound)."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError) as exc:
            message = f"{record.msg!r} (unformattable: {exc})"
        if len(message) > MAX_LOG_MESSAGE:
            message = message[:MAX_LOG_MESSAGE] + " …[cut]"
        self.records.append(
            {
                "date": utc_now(),
                "level": record.levelname,
                "logger": record.name,
                "message": message,
                "task": self.task,
                "attempt": self.attempt,
            }
        )


def make_logger(
    name: str, collector: RecordCollector, extra: list[logging.Handler]
) -> logging.Logger:
    """A logger of its own (not propagating) feeding ``collector`` and ``extra`` handlers."""
    logger = logging.Logger(name, logging.DEBUG)
    logger.propagate = False
    logger.addHandler(collector)
    for handler in extra:
        logger.addHandler(handler)
    return logger


@dataclass
class OperationContext:
    """``ctx`` for an operation."""

    execution_id: str
    workflow_name: str
    task: TaskHandle
    job: JobInfo
    inputs: Mapping[str, Any]
    logger: logging.Logger
    _cancelled: Callable[[], bool] = field(repr=False)

    @property
    def cancel_requested(self) -> bool:
        """Whether the execution is being cancelled."""
        return bool(self._cancelled())


@dataclass
class Toolbelt:
    """Helpers handed to operations declared with ``toolbelt=True``."""

    job: JobInfo
    inputs: Mapping[str, Any]
    logger: logging.Logger
    written: list[str] = field(default_factory=list)
    """The paths :meth:`output_path` gave, relative to the archive directory (in order)."""

    @property
    def archive_dir(self) -> Path | None:
        """The job's local archive directory (None when the storage is not local)."""
        return Path(self.job.archive_dir) if self.job.archive_dir else None

    def output_path(self, *parts: str) -> Path:
        """A path under the archive directory, its parent directories made.

        Raises:
            InvalidRequestError: The storage is not local or the path leaves the directory.
        """
        from datacatalog.errors import InvalidRequestError

        base = self.archive_dir
        if base is None:
            raise InvalidRequestError(
                f"job {self.job.uuid}: its storage {self.job.archive_system} has no local directory"
            )
        target = base.joinpath(*parts).resolve()
        if base.resolve() not in (target, *target.parents):
            raise InvalidRequestError(f"{'/'.join(parts)} leaves the archive directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        relative = target.relative_to(base.resolve()).as_posix()
        if relative not in self.written:
            self.written.append(relative)
        return target


@dataclass
class WorkflowContext:
    """``ctx`` for a workflow function while it builds its graph."""

    execution_id: str
    workflow_name: str
    job: JobInfo
    inputs: Mapping[str, Any]
    logger: logging.Logger
    started: datetime = field(default_factory=utc_now)
