"""Preparing an execution: the graph built and the records written before anything runs.

The workflow function builds its graph once, when the runner is made (its log records are
kept and written when the execution starts). A new execution is then recorded with its
tasks, ``pending``, each with its attempt budget (:func:`.scheduler.attempt_budget`) and
retry interval; a resumed one must still build the tasks it recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datacatalog.errors import InvalidRequestError
from datacatalog.jobs import Job
from datacatalog.orchestrator.context import JobInfo, RecordCollector, WorkflowContext, make_logger
from datacatalog.orchestrator.decorators import Workflow
from datacatalog.orchestrator.exceptions import InvalidWorkflowRunnerParams, OrchestratorError
from datacatalog.orchestrator.graph import TaskGraph
from datacatalog.orchestrator.model import Execution, TaskRecord
from datacatalog.orchestrator.records import ExecutionRecords, task_id
from datacatalog.orchestrator.scheduler import attempt_budget
from datacatalog.storage import StorageRegistry


def job_info(job: Job, storage: StorageRegistry, token: str) -> JobInfo:
    """The job as operations see it (its archive directory when the storage is local)."""
    system = storage.get(job.archive_system)
    local = system.local_path(job.archive_path)
    return JobInfo(
        uuid=job.uuid,
        archive_path=job.archive_path,
        archive_system=job.archive_system,
        archive_dir=str(Path(local)) if local else None,
        token=token,
    )


@dataclass(frozen=True)
class Built:
    """A workflow's graph and what its function logged while building it."""

    graph: TaskGraph
    logs: RecordCollector


def build_graph(
    workflow: Workflow,
    workflow_name: str,
    *,
    execution_id: str,
    job: JobInfo,
    inputs: dict[str, Any],
) -> Built:
    """Run the workflow function: its graph, and its own log records (kept until it runs).

    Raises:
        InvalidWorkflowRunnerParams: The function refused its inputs or built a bad graph.
    """
    collector = RecordCollector(None, None)
    logger = make_logger(f"datacatalog.workflow.{workflow.name}", collector, [])
    graph = TaskGraph()
    build_ctx = WorkflowContext(
        execution_id=execution_id,
        workflow_name=workflow_name,
        job=job,
        inputs=inputs,
        logger=logger,
    )
    try:
        workflow(build_ctx, graph, **inputs)
    except OrchestratorError:
        raise
    except InvalidRequestError as exc:
        raise InvalidWorkflowRunnerParams(f"workflow {workflow_name}: {exc}") from exc
    return Built(graph, collector)


def resumed_tasks(
    records: ExecutionRecords, execution: Execution, graph: TaskGraph
) -> dict[str, TaskRecord]:
    """The resumed execution's task records; refused when the graph has tasks they lack."""
    tasks = {t.name: t for t in records.tasks(execution.id)}
    missing = [n.name for n in graph if n.name not in tasks]
    if missing:
        raise InvalidWorkflowRunnerParams(
            f"execution {execution.id}: the workflow now builds tasks it did not "
            f"record ({', '.join(missing)}); it cannot be resumed"
        )
    return tasks


def new_tasks(
    graph: TaskGraph, execution_id: str, *, max_attempts: int, retry_interval: float
) -> dict[str, TaskRecord]:
    """The task records of a new execution, in graph order (an operation's options win)."""
    tasks = {}
    for position, node in enumerate(graph):
        op = node.operation
        tasks[node.name] = TaskRecord(
            id=task_id(execution_id, node.name),
            execution_id=execution_id,
            name=node.name,
            operation=op.path,
            dependencies=list(node.dependencies),
            status="pending",
            max_attempts=attempt_budget(op, max_attempts),
            retry_interval=op.retry_interval if op.retry_interval is not None else retry_interval,
            ignore_failure=bool(op.ignore_failure),
            position=position,
        )
    return tasks
