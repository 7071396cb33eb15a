"""The jobs listing: filters, sort orders, one page of rows, and live states.

Every query here is bounded: a page is read through an index
(:mod:`datacatalog.service.ui.paging`); the count of the jobs a filter matches stops at
:data:`MAX_COUNT`; per-page extras (pipeline and metadata labels, file counts, why the
failed ones failed) are one query per kind for the whole page (``$in`` on the page's
UUIDs), never one per row. Nothing here writes. The other
pages' lookups are in :mod:`datacatalog.service.ui.lookups`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from datacatalog import states
from datacatalog.clock import utc_now
from datacatalog.errors import InvalidRequestError, NotFoundError
from datacatalog.identifiers import is_uuid, kind_of, require_kind
from datacatalog.jobs import HistoryEntry
from datacatalog.metadata import ID_FIELDS, LEVELS, MetadataRegistry
from datacatalog.service.ui.details import Failure, duration, failure
from datacatalog.service.ui.lookups import Label, labels
from datacatalog.service.ui.paging import Cursor, SortKeys, after, reversed_keys
from datacatalog.store import Document, Store

PAGE_SIZES = (25, 50, 100, 200)
MAX_COUNT = 10_000
"""The jobs listing counts the jobs its filter matches up to this many ("10000+")."""
FAILURE_WINDOW = 5
"""History entries read from the end of a failed job's history to find its fail event."""
DEFAULT_PAGE_SIZE = 50
MAX_SEARCH_CHARS = 200
MAX_DESCENDANTS = 10_000
"""Most metadata entities one metadata filter may expand to (an experiment's samples
and measurements); a larger tree is refused with a hint to filter lower down."""

LIVE_STATES: tuple[str, ...] = ("CREATED", "RUNNING", "INDEXING", "VALIDATING")
"""States a job leaves by itself (agents are at work): the pages refresh these."""

METADATA_FILTERS: dict[str, str] = {
    "design": "experiment_design",
    "experiment": "experiment",
    "sample": "sample",
    "measurement": "measurement",
}
"""Query parameters of the jobs page that filter by metadata, and the kind each names."""

# Sort orders offered, in their natural direction; "order" flips them whole, so one
# index (read forwards or backwards) serves both directions.
SORTS: dict[str, tuple[tuple[str, int], ...]] = {
    "created": (("_properties.created_date", -1), ("uuid", 1)),
    "modified": (("_properties.modified_date", -1), ("uuid", 1)),
    "state": (("state", 1), ("_properties.created_date", -1), ("uuid", 1)),
}
NATURAL_ORDER = {"created": "desc", "modified": "desc", "state": "asc"}

_LISTING_FIELDS = {
    "uuid": 1,
    "state": 1,
    "pipeline_uuid": 1,
    "child_of": 1,
    "agent": 1,
    "task": 1,
    "last_event": 1,
    "_properties": 1,
}
_UUID_PREFIX = re.compile(r"[0-9a-f-]{3,36}")


# -- the jobs listing ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobQuery:
    """What the jobs page was asked for: filters, sort order and page size."""

    state: str | None = None
    pipeline: str | None = None
    design: str | None = None
    experiment: str | None = None
    sample: str | None = None
    measurement: str | None = None
    agent: str | None = None
    q: str | None = None
    sort: str = "created"
    order: str = "desc"
    limit: int = DEFAULT_PAGE_SIZE

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> JobQuery:
        """Read and check the jobs page's query parameters (empty values are unset).

        Raises:
            InvalidRequestError: A parameter has a value it cannot take, named.
        """

        def given(name: str) -> str | None:
            value = params.get(name, "").strip()
            return value or None

        state = given("state")
        if state is not None:
            state = state.upper()
            if state not in states.STATES:
                raise InvalidRequestError(
                    f"state {state!r} is not a job state; known: {', '.join(states.STATES)}"
                )
        sort = given("sort") or "created"
        if sort not in SORTS:
            raise InvalidRequestError(f"sort {sort!r} is not one of {', '.join(SORTS)}")
        order = given("order") or NATURAL_ORDER[sort]
        if order not in ("asc", "desc"):
            raise InvalidRequestError(f"order {order!r} must be 'asc' or 'desc'")
        raw_limit = given("limit") or str(DEFAULT_PAGE_SIZE)
        if not raw_limit.isdigit() or int(raw_limit) not in PAGE_SIZES:
            raise InvalidRequestError(
                f"limit {raw_limit!r} must be one of {', '.join(map(str, PAGE_SIZES))}"
            )
        q = given("q")
        if q is not None and len(q) > MAX_SEARCH_CHARS:
            raise InvalidRequestError(f"the search text is over {MAX_SEARCH_CHARS} characters")
        return cls(
            state=state,
            pipeline=given("pipeline"),
            design=given("design"),
            experiment=given("experiment"),
            sample=given("sample"),
            measurement=given("measurement"),
            agent=given("agent"),
            q=q,
            sort=sort,
            order=order,
            limit=int(raw_limit),
        )

    def keys(self) -> SortKeys:
        """The sort keys of this query, in its direction."""
        natural = list(SORTS[self.sort])
        return natural if self.order == NATURAL_ORDER[self.sort] else reversed_keys(natural)

    def params(self, **changes: Any) -> dict[str, str]:
        """The query parameters of this query (with ``changes``), defaults left out."""
        values = {
            "state": self.state,
            "pipeline": self.pipeline,
            "design": self.design,
            "experiment": self.experiment,
            "sample": self.sample,
            "measurement": self.measurement,
            "agent": self.agent,
            "q": self.q,
            "sort": None if self.sort == "created" else self.sort,
            "order": None if self.order == NATURAL_ORDER[self.sort] else self.order,
            "limit": None if self.limit == DEFAULT_PAGE_SIZE else str(self.limit),
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    @property
    def filtered(self) -> bool:
        """True when any filter is set."""
        return any(
            value is not None
            for value in (self.state, self.pipeline, self.agent, self.q, *self.metadata().values())
        )

    def metadata(self) -> dict[str, str | None]:
        """The metadata filters by kind (unset ones are None)."""
        return {kind: getattr(self, name) for name, kind in METADATA_FILTERS.items()}


@dataclass(frozen=True)
class JobRow:
    """One row of the jobs table."""

    uuid: str
    state: str
    pipeline: Label
    child_of: list[Label]
    agent: str | None
    task: str | None
    created: datetime | None
    modified: datetime | None
    revision: int
    files: int
    duration: timedelta | None = None
    failure: Failure | None = None


@dataclass(frozen=True)
class JobPage:
    """One page of the jobs listing, with the cursors of its neighbours (None: no page),
    and how many jobs the filter matches (up to :data:`MAX_COUNT`; ``more``: over it)."""

    rows: list[JobRow]
    next_cursor: str | None
    previous_cursor: str | None
    total: int | None = None
    more: bool = False


def job_page(
    store: Store,
    query: JobQuery,
    *,
    after_cursor: str | None = None,
    before_cursor: str | None = None,
) -> JobPage:
    """One page of jobs matching ``query``: the first, or the one after/before a cursor.

    Raises:
        InvalidRequestError: A bad cursor, both cursors, or a bad filter value.
        NotFoundError: A filter names a pipeline or metadata entity that does not exist.
    """
    if after_cursor and before_cursor:
        raise InvalidRequestError("give 'after' or 'before', not both")
    keys = query.keys()
    base = job_filter(store, query)
    backwards = bool(before_cursor)
    order = reversed_keys(keys) if backwards else list(keys)
    condition = base
    given = before_cursor or after_cursor
    if given:
        cursor = Cursor.decode(given, keys=keys, where="before" if backwards else "after")
        condition = after(cursor, order, within=base)
    docs = store.find(
        "job",
        condition,
        sort=order,
        limit=query.limit + 1,
        projection=_LISTING_FIELDS,
    )
    more = len(docs) > query.limit
    docs = docs[: query.limit]
    if backwards:
        docs.reverse()
    rows = job_rows(store, docs)
    first = Cursor.of(docs[0], keys).encode() if docs else None
    last = Cursor.of(docs[-1], keys).encode() if docs else None
    total, over = count_jobs(store, base)
    if backwards:
        return JobPage(
            rows, next_cursor=last, previous_cursor=first if more else None, total=total,
            more=over,
        )  # fmt: skip
    return JobPage(
        rows,
        next_cursor=last if more else None,
        previous_cursor=first if given else None,
        total=total,
        more=over,
    )


def count_jobs(store: Store, condition: Mapping[str, Any]) -> tuple[int, bool]:
    """How many jobs match ``condition``, counted up to :data:`MAX_COUNT`; and whether
    there are more."""
    found = store.aggregate(
        "job",
        [
            {"$match": dict(condition)},
            {"$limit": MAX_COUNT + 1},
            {"$group": {"_id": None, "n": {"$sum": 1}}},
        ],
    )
    n = int(found[0]["n"]) if found else 0
    return min(n, MAX_COUNT), n > MAX_COUNT


def job_filter(store: Store, query: JobQuery) -> dict[str, Any]:
    """The store query for the filters of ``query`` (deleted jobs are left out)."""
    conditions: dict[str, Any] = {"_visible": True}
    if query.state is not None:
        conditions["state"] = query.state
    if query.pipeline is not None:
        conditions["pipeline_uuid"] = {"$in": pipeline_uuids(store, query.pipeline)}
    if query.agent is not None:
        conditions["agent"] = query.agent
    clauses: list[dict[str, Any]] = [conditions]
    for kind, value in query.metadata().items():
        if value is not None:
            (entity,) = MetadataRegistry(store).resolve(**{ID_FIELDS[kind]: value})
            clauses.append({"child_of": {"$in": [entity, *descendants(store, entity)]}})
    if query.q is not None:
        clauses.append(_text_condition(query.q))
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _text_condition(text: str) -> dict[str, Any]:
    """Jobs whose UUID starts with ``text`` or whose task contains it (any case)."""
    options: list[dict[str, Any]] = [{"task": {"$regex": re.escape(text), "$options": "i"}}]
    lowered = text.lower()
    if _UUID_PREFIX.fullmatch(lowered):
        # Anchored at the start, a prefix is answered from the unique uuid index.
        options.insert(0, {"uuid": {"$regex": "^" + re.escape(lowered)}})
    return {"$or": options}


def pipeline_uuids(store: Store, pipeline: str) -> list[str]:
    """The pipelines a pipeline filter names: one UUID, or every registration of an id."""
    if is_uuid(pipeline):
        require_kind(pipeline, "pipeline", what="pipeline")
        found = store.find("pipeline", {"uuid": pipeline}, projection={"uuid": 1})
    else:
        found = store.find("pipeline", {"id": pipeline}, projection={"uuid": 1})
    if not found:
        raise NotFoundError(f"pipeline {pipeline!r} is not registered", pipeline=pipeline)
    return sorted(d["uuid"] for d in found)


def job_rows(
    store: Store, docs: Sequence[Document], *, now: datetime | None = None
) -> list[JobRow]:
    """Table rows for stored jobs, with their labels, file counts and, for the failed
    ones, why (a query per kind); durations of live jobs run to ``now``."""
    names = labels(
        store,
        [d["pipeline_uuid"] for d in docs] + [c for d in docs for c in d.get("child_of", [])],
    )
    counts = file_counts(store, [d["uuid"] for d in docs])
    failed = failures(store, [d["uuid"] for d in docs if d["state"] == "FAILED"])
    moment = now or utc_now()
    rows = []
    for doc in docs:
        props = doc.get("_properties", {})
        created, modified = props.get("created_date"), props.get("modified_date")
        rows.append(
            JobRow(
                uuid=doc["uuid"],
                state=doc["state"],
                pipeline=names[doc["pipeline_uuid"]],
                child_of=[names[c] for c in doc.get("child_of", [])],
                agent=doc.get("agent"),
                task=doc.get("task"),
                created=created,
                modified=modified,
                revision=int(props.get("revision", 0)),
                files=counts.get(doc["uuid"], 0),
                duration=duration(created, modified, live=doc["state"] in LIVE_STATES, now=moment),
                failure=failed.get(doc["uuid"]),
            )
        )
    return rows


def failures(store: Store, job_uuids: Sequence[str]) -> dict[str, Failure]:
    """Why each of the failed jobs ``job_uuids`` failed (one query; only the end of each
    history is read)."""
    if not job_uuids:
        return {}
    wanted = sorted(set(job_uuids))
    docs = store.find(
        "job",
        {"uuid": {"$in": wanted}},
        limit=len(wanted),
        projection={"uuid": 1, "history": {"$slice": -FAILURE_WINDOW}},
    )
    out: dict[str, Failure] = {}
    for doc in docs:
        found = failure([HistoryEntry.from_document(e) for e in doc.get("history", [])])
        if found is not None:
            out[doc["uuid"]] = found
    return out


def file_counts(store: Store, job_uuids: Sequence[str]) -> dict[str, int]:
    """How many file records each of ``job_uuids`` generated (one aggregation)."""
    if not job_uuids:
        return {}
    wanted = sorted(set(job_uuids))
    found = store.aggregate(
        "file",
        [
            {"$match": {"generated_by": {"$in": wanted}}},
            {"$project": {"generated_by": 1}},
            {"$unwind": "$generated_by"},
            {"$match": {"generated_by": {"$in": wanted}}},
            {"$group": {"_id": "$generated_by", "n": {"$sum": 1}}},
            {"$project": {"job": "$_id", "n": 1}},  # the store's results drop _id
        ],
    )
    return {str(d["job"]): int(d["n"]) for d in found}


def job_states(store: Store, job_uuids: Sequence[str]) -> list[dict[str, Any]]:
    """State, revision and modified date of each job (for live refresh)."""
    wanted = sorted({require_kind(u, "pipelinejob", what="job") for u in job_uuids})
    docs = store.find(
        "job",
        {"uuid": {"$in": wanted}, "_visible": True},
        projection={"uuid": 1, "state": 1, "last_event": 1, "_properties": 1},
    )
    out = []
    for doc in docs:
        props = doc.get("_properties", {})
        modified = props.get("modified_date")
        out.append(
            {
                "uuid": doc["uuid"],
                "state": doc["state"],
                "description": states.STATE_DESCRIPTIONS.get(doc["state"], ""),
                "last_event": doc.get("last_event"),
                "revision": int(props.get("revision", 0)),
                "modified": modified.isoformat() if modified else None,
                "live": doc["state"] in LIVE_STATES,
            }
        )
    return sorted(out, key=lambda d: str(d["uuid"]))


def descendants(store: Store, entity: str) -> list[str]:
    """UUIDs of every entity below ``entity`` (one query per level).

    Raises:
        InvalidRequestError: More than :data:`MAX_DESCENDANTS` of them.
    """
    kind = kind_of(entity)
    if kind not in LEVELS:
        return []
    found: list[str] = []
    frontier = [entity]
    for below in LEVELS[LEVELS.index(kind) + 1 :]:
        if not frontier:
            break
        docs = store.find(
            below,
            {"child_of": {"$in": frontier}},
            projection={"uuid": 1},
            limit=MAX_DESCENDANTS + 1 - len(found),
        )
        frontier = [d["uuid"] for d in docs]
        found.extend(frontier)
        if len(found) > MAX_DESCENDANTS:
            raise InvalidRequestError(
                f"{kind} {entity} has more than {MAX_DESCENDANTS} entities below it; "
                "filter by one of its samples or measurements instead",
                entity=entity,
            )
    return found


def jobs_of(store: Store, parent_field: str, uuid: str, *, limit: int) -> list[JobRow]:
    """The newest jobs whose ``parent_field`` (``child_of``, ``pipeline_uuid``) is ``uuid``."""
    docs = store.find(
        "job",
        {parent_field: uuid, "_visible": True},
        sort=list(SORTS["created"]),
        limit=limit,
        projection=_LISTING_FIELDS,
    )
    return job_rows(store, docs)
