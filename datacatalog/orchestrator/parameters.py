"""The workflow runner's arguments, checked: each refusal names the argument and the value.

Also what a workflow runs with (its inputs checked and completed with their defaults) and
its part of a job's identity (:func:`workflow_parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from datacatalog.catalog import Catalog
from datacatalog.errors import InvalidRequestError
from datacatalog.freeform import check_object
from datacatalog.orchestrator.decorators import Workflow
from datacatalog.orchestrator.exceptions import ActiveExecutionsError, InvalidWorkflowRunnerParams
from datacatalog.orchestrator.executors.base import Executor
from datacatalog.orchestrator.model import UNLIMITED_ATTEMPTS, Execution
from datacatalog.orchestrator.plugin import PluginManager
from datacatalog.orchestrator.registry import resolve, workflow_version
from datacatalog.storage import StorageRegistry
from datacatalog.store import Store


def open_catalog(model_storage: Any, resource_storage: StorageRegistry | None) -> Catalog:
    """The catalog ``model_storage`` names: a :class:`Catalog`, a :class:`Store` or a URI."""
    if isinstance(model_storage, Catalog):
        return model_storage
    if isinstance(model_storage, Store):
        return Catalog(model_storage, storage=resource_storage)
    if isinstance(model_storage, str):
        return Catalog.open(model_storage)
    raise InvalidWorkflowRunnerParams(
        "model_storage must be a Catalog, a Store or a catalog URI, "
        f"not {type(model_storage).__name__}"
    )


def check_target(
    execution_id: str | None,
    job: str | None,
    workflow_name: object,
    inputs: object,
) -> None:
    """Either an execution to resume, or a workflow and a job (``service_id``), with inputs."""
    if execution_id is not None:
        if workflow_name is not None or job is not None or inputs:
            raise InvalidWorkflowRunnerParams(
                "give either execution_id (to resume) or workflow_name and service_id, not both"
            )
    elif workflow_name is None or job is None:
        missing = [
            n for n, v in (("workflow_name", workflow_name), ("service_id", job)) if v is None
        ]
        raise InvalidWorkflowRunnerParams(
            f"give workflow_name and service_id (missing: {', '.join(missing)}), "
            "or execution_id to resume"
        )
    if inputs is not None and not isinstance(inputs, Mapping):
        raise InvalidWorkflowRunnerParams(f"inputs must be a mapping, not {type(inputs).__name__}")


def check_resumable(previous: Execution, *, retry_failed: bool) -> None:
    """Refuse to resume ``previous`` unless it was cancelled (or failed, with ``retry_failed``).

    Raises:
        ActiveExecutionsError: It is still active.
        InvalidWorkflowRunnerParams: It ended in a way that does not resume.
    """
    if previous.status == "cancelled" or (previous.status == "failed" and retry_failed):
        return
    if previous.active:
        raise ActiveExecutionsError(
            f"execution {previous.id} is {previous.status}: it is still active",
            holder=previous.id,
        )
    allowed = "cancelled or failed" if retry_failed else "cancelled (failed with retry_failed=True)"
    raise InvalidWorkflowRunnerParams(
        f"execution {previous.id} is {previous.status}; only a {allowed} execution resumes"
    )


def max_attempts(value: object, what: str) -> int:
    """``value`` as a count of attempts: at least 1, or -1 (until success)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (value < 1 and value != UNLIMITED_ATTEMPTS)
    ):
        raise InvalidWorkflowRunnerParams(
            f"{what} must be an integer of at least 1, or -1 (retry until it succeeds), "
            f"not {value!r}"
        )
    return value


def seconds(value: object, what: str) -> float:
    """``value`` as a number of seconds, at least 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or value != value
    ):
        raise InvalidWorkflowRunnerParams(f"{what} must be a number of seconds >= 0, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class Timing:
    """The runner's checked durations and attempt counts."""

    max_attempts: int
    retry_interval: float
    poll: float
    lease_ttl: float
    timeout: float | None

    @classmethod
    def check(
        cls,
        *,
        task_max_attempts: object,
        task_retry_interval: object,
        cancel_poll_interval: object,
        lease_ttl: object,
        stage_timeout: object,
    ) -> Timing:
        """Check the runner's arguments of that name.

        Raises:
            InvalidWorkflowRunnerParams: Naming the first argument that does not fit.
        """
        attempts = max_attempts(task_max_attempts, "task_max_attempts")
        interval = seconds(task_retry_interval, "task_retry_interval")
        poll = seconds(cancel_poll_interval, "cancel_poll_interval")
        ttl = seconds(lease_ttl, "lease_ttl")
        if isinstance(stage_timeout, timedelta):
            stage_timeout = stage_timeout.total_seconds()
        timeout = None if stage_timeout is None else seconds(stage_timeout, "stage_timeout")
        if timeout is not None and not timeout > 0:
            raise InvalidWorkflowRunnerParams(
                f"stage_timeout must be positive, not {stage_timeout!r}"
            )
        if not ttl > 0:
            raise InvalidWorkflowRunnerParams(f"lease_ttl must be positive, not {lease_ttl!r}")
        return cls(attempts, interval, poll, ttl, timeout)


def check_executor(executor: object) -> None:
    """Refuse an ``executor`` that is neither None nor an :class:`Executor`."""
    if executor is not None and not isinstance(executor, Executor):
        raise InvalidWorkflowRunnerParams(
            f"executor must be an Executor, not {type(executor).__name__}"
        )


def effective_inputs(name: str, workflow: Workflow, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What ``workflow`` runs with: ``inputs`` checked (names, simple annotated types) and
    completed with the declared defaults.

    Raises:
        InvalidWorkflowRunnerParams: Naming the inputs that are unknown, missing, of the
            wrong type or not storable.
    """
    problems = workflow.check_inputs(inputs) or workflow.check_input_types(inputs)
    if problems:
        raise InvalidWorkflowRunnerParams(f"workflow {name}: {'; '.join(problems)}", workflow=name)
    try:
        return dict(
            check_object(workflow.effective_inputs(inputs), where=f"inputs of workflow {name}")
        )
    except InvalidRequestError as exc:
        raise InvalidWorkflowRunnerParams(str(exc), workflow=name) from exc


def workflow_parameters(
    workflow_name: str | Workflow,
    inputs: Mapping[str, Any] | None,
    plugin_manager: PluginManager | None,
) -> dict[str, Any]:
    """A workflow's part of a job's identity: its name, its code's version, its inputs.

    Put under ``workflow`` in a job's ``data`` (as ``datacatalog workflows run --pipeline``
    does), it makes each workflow, version and set of effective inputs a job of its own.

    Raises:
        UndeclaredWorkflowError: No workflow of that name.
        InvalidWorkflowRunnerParams: Inputs that do not fit it.
    """
    name, workflow = resolve(workflow_name, plugin_manager)
    return {
        "name": name,
        "version": workflow_version(name, workflow, plugin_manager),
        "inputs": effective_inputs(name, workflow, dict(inputs or {})),
    }
