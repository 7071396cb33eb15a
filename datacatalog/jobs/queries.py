"""Reading stored jobs: one job, its history, and filtered listings.

Every read of a job (events, indexing, files, provenance) goes through
:func:`job_document`, so a soft-deleted job is hidden from all of them alike.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypedDict, Unpack

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


class FindFilters(TypedDict, total=False):
    """What jobs to list: the keyword arguments of ``catalog.jobs.find(...)``, all optional.

    Attributes:
        state: One of :data:`datacatalog.states.STATES`.
        pipeline: A pipeline UUID or id.
        metadata: A metadata entity UUID the jobs are a ``child_of``.
        agent: The agent that created the jobs.
        limit: Page size (at most 1000; 0 means 1000; default 100).
        skip: Jobs to skip (paging; default 0).
        include_deleted: Include soft-deleted jobs (default False).
    """

    state: str | None
    pipeline: str | None
    metadata: str | None
    agent: str | None
    limit: int
    skip: int
    include_deleted: bool


_FIND_FILTERS = frozenset(FindFilters.__optional_keys__) | frozenset(FindFilters.__required_keys__)


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

    def find(self, **filters: Unpack[FindFilters]) -> list[Job]:
        """Jobs matching the filters (:class:`FindFilters`), newest first.

        Jobs created within one millisecond (their creation dates tie) come newest first
        in the order the database stored them, so pages are stable and in creation order.

        Raises:
            TypeError: A filter :class:`FindFilters` does not declare.
            InvalidRequestError: A filter of the wrong type or out of range.
        """
        unknown = sorted(filters.keys() - _FIND_FILTERS)
        if unknown:
            raise TypeError(f"find() got unexpected keyword arguments: {', '.join(unknown)}")
        limit, skip = filters.get("limit", 100), filters.get("skip", 0)
        if not _whole(limit, 0, MAX_PAGE) or not _whole(skip, 0, 2**63 - 1):
            raise InvalidRequestError(
                f"limit must be an integer within 0-{MAX_PAGE} (0: {MAX_PAGE}) and skip a "
                "non-negative 64-bit integer"
            )
        docs = self.store.find(
            "job",
            self._query(filters),
            sort=[("_properties.created_date", -1), ("_id", -1)],
            skip=skip,
            limit=limit or MAX_PAGE,
            projection={"history": 0},
        )
        return [Job.from_document(d) for d in docs]

    def _query(self, filters: FindFilters) -> dict[str, Any]:
        """The store query of :meth:`find`'s filters, each checked."""
        state, pipeline = filters.get("state"), filters.get("pipeline")
        metadata, agent = filters.get("metadata"), filters.get("agent")
        for name, value in (("state", state), ("agent", agent), ("metadata", metadata)):
            if value is not None and not isinstance(value, str):
                # A dict here would reach the query as an operator ({"$ne": None}).
                raise InvalidRequestError(f"{name} must be a string, not {type(value).__name__}")
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
        if not filters.get("include_deleted", False):
            query["_visible"] = True
        return query


def _whole(value: object, low: int, high: int) -> bool:
    """Whether ``value`` is an integer (not a bool) within ``low``-``high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
