"""Orchestrator exceptions: ARIA's classes, placed in the project's error categories.

Every class but the two task signals is an :class:`OrchestratorError`, itself a
:class:`datacatalog.errors.DataCatalogError`; each also belongs to the category that tells
the caller what to do (a bad runner argument is an invalid request, a second execution on
a job is a conflict, an unknown workflow is not found), so the command line and the service
map them to exit codes and HTTP statuses like any other error.

:class:`TaskRetryException` and :class:`TaskAbortException` are ``RuntimeError`` subclasses,
as in ARIA (docs/workflows.md): an operation raises them through ``ctx.task.retry`` /
``ctx.task.abort``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datacatalog import errors

if TYPE_CHECKING:
    from datacatalog.orchestrator.model import Execution


class OrchestratorError(errors.DataCatalogError):
    """Root of the orchestrator's errors."""


class ActiveExecutionsError(OrchestratorError, errors.ActiveExecutionsError):
    """The job already has an active execution; the message names its holder."""


class InvalidPluginError(OrchestratorError, errors.InvalidRequestError):
    """A plugin archive failed validation; the message says what is wrong."""


class InvalidWorkflowRunnerParams(OrchestratorError, errors.InvalidRequestError):
    """The workflow runner was given an invalid combination of arguments."""


class PluginAlreadyExistsError(OrchestratorError, errors.ConflictError):
    """A plugin with the same package name and version is installed already."""


class UndeclaredWorkflowError(OrchestratorError, errors.NotFoundError):
    """No workflow of that name is declared (registered, installed or importable)."""


class WorkflowImplementationNotFoundError(OrchestratorError, errors.NotFoundError):
    """A declared workflow's code cannot be imported."""


class WorkflowFailedError(OrchestratorError):
    """The execution failed; ``execution`` holds its record and the root cause's error."""

    def __init__(self, message: str, *, execution: Execution, **details: Any) -> None:
        super().__init__(message, execution_id=execution.id, **details)
        self.execution = execution


class TaskRetryException(RuntimeError):
    """Raised by ``ctx.task.retry``: the attempt failed and should be retried."""

    def __init__(self, message: str, retry_interval: float | None = None) -> None:
        super().__init__(message)
        self.retry_interval = retry_interval


class TaskAbortException(RuntimeError):
    """Raised by ``ctx.task.abort``: the task failed and must not be retried."""
