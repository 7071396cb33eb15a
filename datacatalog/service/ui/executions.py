"""Workflow executions on a job's page: each execution's task graph, states and errors.

A workflow run (:mod:`datacatalog.orchestrator`) records one ``workflow_execution``
document per execution of a job and one ``workflow_task`` document per task, naming the
tasks it depends on. The job page shows, for the newest executions, the execution's
status, times and root error, and its tasks as a graph (a Graphviz picture coloured by
state, dependencies as arrows) and as a table (state, attempts, times, error).

A job that never ran a workflow has no executions: the section is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import graphviz
from markupsafe import Markup

from datacatalog.errors import UnavailableError
from datacatalog.provenance.pictures import lay_out
from datacatalog.service.ui.pictures import inline_svg
from datacatalog.store import Document, Store

EXECUTION_KIND = "workflow_execution"
TASK_KIND = "workflow_task"
MAX_EXECUTIONS = 5
MAX_TASKS = 500

# Fill colours of task states in the picture (the page's badges use the same families).
TASK_COLOURS: dict[str, str] = {
    "pending": "#eceff2",
    "started": "#dcecff",
    "retrying": "#fff1c2",
    "success": "#dcf5e3",
    "failed": "#fde2df",
}


@dataclass(frozen=True)
class Task:
    """One task of an execution."""

    name: str
    operation: str
    status: str
    attempts: int
    max_attempts: int
    dependencies: list[str]
    ignore_failure: bool = False
    started: datetime | None = None
    ended: datetime | None = None
    error: dict[str, Any] | None = None
    message: str | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Task:
        """Build from a stored task."""
        return cls(
            name=str(doc["name"]),
            operation=str(doc.get("operation", "")),
            status=str(doc.get("status", "pending")),
            attempts=int(doc.get("attempts") or 0),
            max_attempts=int(doc.get("max_attempts") or 0),
            dependencies=[str(d) for d in doc.get("dependencies") or []],
            ignore_failure=bool(doc.get("ignore_failure", False)),
            started=doc.get("started_at"),
            ended=doc.get("ended_at"),
            error=dict(doc["error"]) if isinstance(doc.get("error"), Mapping) else None,
            message=doc.get("message"),
        )


@dataclass(frozen=True)
class Execution:
    """One execution of a workflow on the job, with its tasks and their picture."""

    uuid: str
    workflow: str
    status: str
    reason: str | None
    created: datetime | None
    started: datetime | None
    ended: datetime | None
    error: dict[str, Any] | None
    tasks: list[Task] = field(default_factory=list)
    picture: Markup | None = None
    problem: str | None = None


def executions(store: Store, job_uuid: str, *, limit: int = MAX_EXECUTIONS) -> list[Execution]:
    """The job's newest executions with their tasks (two queries), or none."""
    docs = store.find(
        EXECUTION_KIND, {"job_uuid": job_uuid}, sort=[("created_at", -1)], limit=limit
    )
    if not docs:
        return []
    by_execution: dict[str, list[Task]] = {}
    for doc in store.find(
        TASK_KIND,
        {"execution_id": {"$in": [d["uuid"] for d in docs]}},
        sort=[("position", 1), ("name", 1)],
        limit=MAX_TASKS * len(docs),
    ):
        by_execution.setdefault(doc["execution_id"], []).append(Task.from_document(doc))
    return [_execution(doc, by_execution.get(doc["uuid"], [])) for doc in docs]


def _execution(doc: Document, tasks: list[Task]) -> Execution:
    picture: Markup | None = None
    problem: str | None = None
    if tasks:
        try:
            picture = task_graph(tasks)
        except UnavailableError as exc:
            problem = exc.message
    error = doc.get("error")
    return Execution(
        uuid=doc["uuid"],
        # The name the command line and the record use (a declared name, not the function's).
        workflow=str(doc.get("workflow_name") or ""),
        status=str(doc.get("status", "")),
        reason=doc.get("reason"),
        created=doc.get("created_at"),
        started=doc.get("started_at"),
        ended=doc.get("ended_at"),
        error=dict(error) if isinstance(error, Mapping) else None,
        tasks=tasks,
        picture=picture,
        problem=problem,
    )


def task_graph(tasks: Sequence[Task]) -> Markup:
    """The tasks as an inline SVG picture: a box per task, an arrow per dependency.

    Raises:
        UnavailableError: Graphviz failed to draw the graph.
    """
    dot = graphviz.Digraph(
        name="tasks",
        graph_attr={"rankdir": "LR", "fontname": "Helvetica"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica"},
    )
    names = {t.name for t in tasks}
    for task in tasks:
        if task.max_attempts == -1:
            tries = f"{task.attempts}/∞"
        elif task.max_attempts:
            tries = f"{task.attempts}/{task.max_attempts}"
        else:
            tries = str(task.attempts)
        dot.node(
            task.name,
            label=f"{task.name}\n{task.status} · attempts {tries}",
            fillcolor=TASK_COLOURS.get(task.status, "#ffffff"),
            color="#b42318" if task.status == "failed" else "#6b7480",
            fontsize="10",
            tooltip=task.operation,
        )
    for task in tasks:
        for before in task.dependencies:
            if before in names:
                dot.edge(before, task.name)
    return inline_svg(lay_out(str(dot.source), what="the task graph"))
