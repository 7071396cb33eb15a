"""How an indexing run ends, and what happens to its records when the job is taken from it.

* A run that fails after the ``index`` event notes the error in the job's history
  (:func:`record_failure`, an ``update`` event carrying ``indexing_error``, cut to
  :data:`MAX_ERROR_CHARS`) and the error is raised as it was.
* The end of a successful execution (:meth:`IndexingService.complete
  <datacatalog.indexing.service.IndexingService.complete>`) is one conditional write,
  holding the lease, that appends ``finish`` (and ``index`` and ``indexed``) and releases
  the lease (:func:`end_execution`).
* An administrator (or another run) may move the job on while a run writes. Every batch is
  followed by a read of the job (:func:`check_still_indexing`), and the admin actions
  change the job before they touch its records, so whatever the run wrote is put in line
  with the action that won: a purged job's records are removed, a reset job's are
  unlinked (:func:`after_lost_lease` does the same when the end write finds the lease
  gone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

from datacatalog.errors import (
    ConflictError,
    DataCatalogError,
    InvalidTransitionError,
    LeaseLostError,
)
from datacatalog.indexing.records import IndexReport
from datacatalog.jobs import Job, JobService
from datacatalog.jobs.model import Lease
from datacatalog.store import Store

MAX_ERROR_CHARS = 2_000
"""Longest error message kept in a job's history (longer ones are cut, with a marker)."""

# States an INDEXING job can only reach again through ``reset`` (and ``ready``, ``run``).
_ONLY_AFTER_RESET = frozenset({"RESET", "CREATED", "RUNNING"})

EndEvent = tuple[str, Mapping[str, Any] | None, str]
"""An event of the end write: its name, its data and its key."""


def end_events(
    key: str,
    finish: Mapping[str, Any] | None,
    report: IndexReport | None,
    started: Mapping[str, Any] | None,
) -> list[EndEvent]:
    """The events of an execution's end write: ``finish``, then, when it indexed,
    ``index`` (with ``started``) and ``indexed`` (with the report's counts)."""
    end: list[EndEvent] = [("finish", finish, f"{key}:finish")]
    if report is not None:
        summary = {
            "files": report.written,
            "errors": len(report.errors),
            "skipped": len(report.skipped),
        }
        end += [("index", started, f"{key}:index"), ("indexed", summary, f"{key}:indexed")]
    return end


def end_execution(
    store: Store,
    jobs: JobService,
    job_uuid: str,
    lease: Lease,
    end: Sequence[EndEvent],
    *,
    wrote: bool,
    token: str | None,
) -> Job:
    """Append ``end`` and release ``lease`` in one conditional write; the job after it.

    When the write is refused because the lease is lost (or the job was moved on), the
    records the run wrote (``wrote``) follow what took the job (:func:`after_lost_lease`)
    and the refusal is raised.
    """
    try:
        return jobs.lifecycle.end(lease, list(end), token=token).job
    except (LeaseLostError, InvalidTransitionError):
        if wrote:
            after_lost_lease(store, job_uuid)
        raise


def after_lost_lease(store: Store, job_uuid: str) -> None:
    """Put the records a run wrote in line with what took the job from it: removed
    after a purge, unlinked after a reset; left to a new holder, which indexes the
    same directory again."""
    found = store.find("job", {"uuid": job_uuid}, projection={"state": 1}, limit=1)
    if not found:
        store.delete_many("file", {"generated_by": job_uuid})
    elif found[0]["state"] in ("RESET", "CREATED"):
        store.update_many("file", {"generated_by": job_uuid}, {"$pull": {"generated_by": job_uuid}})


def check_still_indexing(store: Store, job_uuid: str) -> None:
    """After a batch is written: stop unless the job is still visible and INDEXING.

    A purged job's records are removed, a reset job's are unlinked; a deleted job keeps
    them (as it keeps its earlier ones), and a job that another run finished or failed
    keeps them too. Each case is a :class:`ConflictError` naming what happened.
    """
    found = store.find("job", {"uuid": job_uuid}, projection={"state": 1, "_visible": 1}, limit=1)
    if not found:
        store.delete_many("file", {"generated_by": job_uuid})
        raise ConflictError(
            f"job {job_uuid} was purged while it was being indexed; the file records "
            "this run wrote were removed",
            job=job_uuid,
        )
    state = found[0]["state"]
    if not found[0].get("_visible", True):
        raise ConflictError(
            f"job {job_uuid} was deleted while it was being indexed; indexing stopped",
            job=job_uuid,
        )
    if state in _ONLY_AFTER_RESET:
        store.update_many("file", {"generated_by": job_uuid}, {"$pull": {"generated_by": job_uuid}})
        raise ConflictError(
            f"job {job_uuid} was reset while it was being indexed (it is {state} now); "
            "the file records this run wrote were unlinked from it",
            job=job_uuid,
            state=state,
        )
    if state != "INDEXING":
        raise ConflictError(
            f"job {job_uuid} left INDEXING while it was being indexed (it is {state} "
            "now: another run finished it, or an event moved it on); indexing stopped",
            job=job_uuid,
            state=state,
        )


def record_failure(jobs: JobService, job_uuid: str, exc: BaseException, token: str | None) -> None:
    """Note ``exc`` in the job's history (an ``update`` event carrying ``indexing_error``)."""
    message = _truncate(str(exc) or type(exc).__name__)
    # The original error is what the caller needs; if the database is also failing,
    # the note in the history is lost and that error is re-raised as it was.
    with suppress(DataCatalogError):
        jobs.send(job_uuid, "update", data={"indexing_error": message}, token=token)


def _truncate(message: str) -> str:
    if len(message) <= MAX_ERROR_CHARS:
        return message
    marker = " … [truncated]"
    return message[: MAX_ERROR_CHARS - len(marker)] + marker
