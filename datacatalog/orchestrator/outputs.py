"""Indexing what a workflow's tasks wrote: one index request per set of writers.

Each attempt records the paths its operation wrote through ``toolbelt.output_path``; the
files the same tasks wrote share one request whose note names those tasks. A job that
declares its own index requests is indexed by them alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from datacatalog.catalog import Catalog
from datacatalog.indexing import IndexReport
from datacatalog.indexrequests import MAX_PATTERNS, ArchiveIndexRequest
from datacatalog.orchestrator.model import TaskRecord


def written_requests(
    tasks: Iterable[TaskRecord], *, workflow_name: str, execution_id: str
) -> list[ArchiveIndexRequest]:
    """One request per set of tasks that wrote the same files, its note naming them."""
    writers: dict[str, list[str]] = {}
    for task in tasks:
        for attempt in task.attempt_log:
            for path in attempt.get("outputs") or []:
                names = writers.setdefault(path, [])
                if task.name not in names:
                    names.append(task.name)
    groups: dict[tuple[str, ...], list[str]] = {}
    for path, names in writers.items():
        groups.setdefault(tuple(names), []).append(path)
    requests = []
    for group, paths in groups.items():
        plural = "s" if len(group) > 1 else ""
        note = (
            f"written by task{plural} {', '.join(group)} of workflow {workflow_name} "
            f"(execution {execution_id})"
        )
        for start in range(0, len(paths), MAX_PATTERNS):
            chunk = paths[start : start + MAX_PATTERNS]
            requests.append(
                ArchiveIndexRequest(
                    patterns=[f"^{re.escape(path)}$" for path in chunk], note=note, fixity=True
                )
            )
    return requests


def index_outputs(
    catalog: Catalog,
    job_uuid: str,
    *,
    token: str,
    tasks: Iterable[TaskRecord],
    workflow_name: str,
    execution_id: str,
) -> IndexReport:
    """Index the job's archive path: the files each task wrote, with their writers, first."""
    job = catalog.jobs.get(job_uuid)
    requests: list[ArchiveIndexRequest] | None = None
    if not job.index_requests():
        written = written_requests(tasks, workflow_name=workflow_name, execution_id=execution_id)
        requests = [*written, ArchiveIndexRequest(patterns=[], fixity=True)]
    return catalog.indexing.index(
        job.uuid, token=token, fixity=True, transition=True, requests=requests
    )
