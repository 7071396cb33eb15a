"""Reading stored jobs: one job, its history, and filtered listings.

Every read of a job (events, indexing, files, provenance) goes through
:func:`job_document`, so a soft-deleted job is hidden from all of them alike.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from datacatalog import schemas, states
from datacatalog.errors import InvalidRequestError, NotFoundError
from datacatalog.identifiers import kind_of, require_kind
from datacatalog.jobs.limits import MAX_PAGE
from datacatalog.jobs.model import HistoryEntry, Job
from datacatalog.metadata import LEVELS as METADATA_LEVELS
from datacatalog.pipelines import PipelineRegistry
from datacatalog.store import Document, Store


def job_document(
    store: Store,
    job_uuid: str,
    *,
    include_deleted: bool = False,
    history: bool = False,
    entry: str | None = None,
) -> Document:
    """The stored job ``job_uuid``, without its history unless ``history``.

    A soft-deleted job is not found unless ``include_deleted``: every read of a job
    (events, indexing, files, provenance) goes through here, so a deleted job is hidden
    from all of them alike.

    Args:
        store: The store.
        job_uuid: The job.
        include_deleted: Find a soft-deleted job too.
        history: Read the whole history (up to 12 MiB).
        entry: Read only the history entry with this UUID (``history`` is then ``[]``
            or that one entry); the server picks it out, the rest never travels.

    Raises:
        InvalidRequestError: ``job_uuid`` is not a job UUID.
        NotFoundError: No such job (or it is deleted).
    """
    require_kind(job_uuid, "pipelinejob", what="job")
    query: dict[str, Any] = {"uuid": job_uuid}
    if not include_deleted:
        query["_visible"] = True
    projection: dict[str, Any] | None = None if history else {"history": 0}
    if entry is not None:
        projection = {f: 1 for f in _fields_besides_history()}
        projection["history"] = {"$elemMatch": {"uuid": entry}}
    found = store.find("job", query, projection=projection)
    if not found:
        raise NotFoundError(f"job {job_uuid} not found", job=job_uuid)
    return found[0]


@cache
def _fields_besides_history() -> tuple[str, ...]:
    # Named from the schema: an inclusion projection must list every field it keeps.
    return tuple(f for f in schemas.schema_for("job")["properties"] if f != "history")


class JobQueries:
    """Jobs as stored: by UUID, their history, listings."""

    def __init__(self, store: Store, *, pipelines: PipelineRegistry) -> None:
        self.store = store
        self.pipelines = pipelines

    def get(self, job_uuid: str, *, include_deleted: bool = False) -> Job:
        """A job by UUID; a deleted job is not found unless ``include_deleted``."""
        return Job.from_document(
            job_document(self.store, job_uuid, include_deleted=include_deleted)
        )

    def history(self, job_uuid: str, *, include_deleted: bool = False) -> list[HistoryEntry]:
        """The job's events, oldest first."""
        doc = job_document(self.store, job_uuid, include_deleted=include_deleted, history=True)
        return [HistoryEntry.from_document(e) for e in doc.get("history", [])]

    def find(
        self,
        *,
        state: str | None = None,
        pipeline: str | None = None,
        metadata: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        skip: int = 0,
        include_deleted: bool = False,
    ) -> list[Job]:
        """Jobs matching the filters, newest first.

        Jobs created within one millisecond (their creation dates tie) come newest first
        in the order the database stored them, so pages are stable and in creation order.

        Args:
            state: One of :data:`datacatalog.states.STATES`.
            pipeline: A pipeline UUID or id.
            metadata: A metadata entity UUID the jobs are a ``child_of``.
            agent: The agent that created the jobs.
            limit: Page size (at most 1000; 0 means 1000).
            skip: Jobs to skip (paging).
            include_deleted: Include soft-deleted jobs.
        """
        if limit < 0 or limit > MAX_PAGE or skip < 0:
            raise InvalidRequestError(
                f"limit must be within 0-{MAX_PAGE} (0: {MAX_PAGE}) and skip non-negative"
            )
        limit = limit or MAX_PAGE
        query: dict[str, Any] = {}
        if state is not None:
            if state not in states.STATES:
                raise InvalidRequestError(
                    f"unknown state {state!r}; known states: {', '.join(states.STATES)}"
                )
            query["state"] = state
        if pipeline is not None:
            query["pipeline_uuid"] = self.pipelines.get(pipeline).uuid
        if metadata is not None:
            if kind_of(metadata) not in METADATA_LEVELS:
                raise InvalidRequestError(f"{metadata!r} is not a metadata UUID")
            query["child_of"] = metadata
        if agent is not None:
            query["agent"] = agent
        if not include_deleted:
            query["_visible"] = True
        docs = self.store.find(
            "job",
            query,
            sort=[("_properties.created_date", -1), ("_id", -1)],
            skip=skip,
            limit=limit,
            projection={"history": 0},
        )
        return [Job.from_document(d) for d in docs]
