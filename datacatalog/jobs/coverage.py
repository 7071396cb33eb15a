"""Coverage: which entities of a selection have a job of a pipeline, and in which state.

The answer is a matrix: one row per selected metadata entity (an experiment's samples,
a sample's measurements ...), one column per pipeline and parameter set found among
their jobs, each cell the state of the entity's job there (the newest one, when several
jobs of one column name the entity), with the count of cells per state and per column,
and the entities no job covers yet (``missing``).

Cost, whatever the number of jobs: the counts are two aggregations on the server (the
jobs of one entity grouped by column and state as they are, and the rare jobs of
several entities cell by cell; only the groups travel), and a page of rows is one read
of the jobs naming that page's entities.
Columns are told apart by the canonical JSON of their parameters (two stored key
orders of one parameter set are one column).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datacatalog import states
from datacatalog.errors import InvalidRequestError
from datacatalog.identifiers import canonical_json
from datacatalog.pipelines import Pipeline
from datacatalog.selection import Entity, Selection
from datacatalog.store import Store

MISSING = "missing"
"""The count of a column's entities that no job of the column names."""

MAX_ROWS = 1000
"""Most rows one page of a coverage matrix holds."""


@dataclass(frozen=True)
class Column:
    """One pipeline with one parameter set."""

    pipeline_uuid: str
    pipeline_id: str
    parameters: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        """What tells columns apart: the pipeline and the canonical parameters."""
        return (self.pipeline_uuid, canonical_json(self.parameters))

    @property
    def label(self) -> str:
        """``pipeline-id`` or ``pipeline-id {"k":1}``."""
        if not self.parameters:
            return self.pipeline_id
        return f"{self.pipeline_id} {canonical_json(self.parameters)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "pipeline_uuid": self.pipeline_uuid,
            "pipeline_id": self.pipeline_id,
            "parameters": self.parameters,
            "label": self.label,
        }


@dataclass(frozen=True)
class Cell:
    """The job in one cell of the matrix, and its state."""

    job: str
    state: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {"job": self.job, "state": self.state}


@dataclass(frozen=True)
class Row:
    """One selected entity and its cells, aligned with the columns (None: no job)."""

    entity: Entity
    cells: tuple[Cell | None, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "uuid": self.entity.uuid,
            "id": self.entity.id,
            "cells": [c.to_dict() if c is not None else None for c in self.cells],
        }


@dataclass(frozen=True)
class Coverage:
    """The matrix of a selection by columns, with its counts, and one page of its rows.

    Attributes:
        selection: The entities (rows) in all.
        columns: Every column found among the selection's jobs (and the parameter set
            asked for, even when no job has it yet).
        counts: Per column (aligned with ``columns``): cells per state, and ``missing``.
        rows: The rows from ``offset``, at most ``limit`` of them.
    """

    selection: Selection
    columns: tuple[Column, ...]
    counts: tuple[dict[str, int], ...]
    rows: tuple[Row, ...]
    offset: int
    limit: int
    pipeline_ids: tuple[str, ...] = ()

    @property
    def totals(self) -> dict[str, int]:
        """Cells per state over every column, ``missing`` included."""
        out: dict[str, int] = {}
        for column in self.counts:
            for state, n in column.items():
                out[state] = out.get(state, 0) + n
        return out

    @property
    def entity_count(self) -> int:
        """Rows in all (the page holds some of them)."""
        return len(self.selection.entities)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "level": self.selection.kind,
            "under": {"kind": self.selection.given_kind, "uuids": list(self.selection.given)},
            "entities": self.entity_count,
            "columns": [
                {**c.to_dict(), "counts": counts}
                for c, counts in zip(self.columns, self.counts, strict=True)
            ],
            "totals": self.totals,
            "offset": self.offset,
            "limit": self.limit,
            "rows": [r.to_dict() for r in self.rows],
        }


def coverage(
    store: Store,
    *,
    pipelines: Sequence[Pipeline],
    selection: Selection,
    parameters: Mapping[str, Any] | None = None,
    offset: int = 0,
    limit: int = 100,
) -> Coverage:
    """The coverage of ``selection`` by the jobs of ``pipelines``.

    Args:
        store: The catalog's store.
        pipelines: The pipelines (one column each per parameter set); none gives a
            matrix with no columns.
        selection: The entities (rows).
        parameters: Only the jobs with exactly these parameters (one column per
            pipeline); None: every parameter set found.
        offset: The first row of the page.
        limit: Rows in the page (at most :data:`MAX_ROWS`).

    Raises:
        InvalidRequestError: A bad offset or limit.
    """
    if offset < 0 or not 0 < limit <= MAX_ROWS:
        raise InvalidRequestError(
            f"offset must be >= 0 and limit within 1-{MAX_ROWS}, not {offset} and {limit}"
        )
    by_uuid = {p.uuid: p for p in pipelines}
    wanted = None if parameters is None else canonical_json(dict(parameters))
    entity_uuids = selection.uuids
    tally = _tally(store, list(by_uuid), entity_uuids)

    columns: dict[tuple[str, str], Column] = {}
    counts: dict[tuple[str, str], dict[str, int]] = {}
    if parameters is not None:  # the asked-for set is a column even before any job has it
        for pipeline in pipelines:
            column = Column(pipeline.uuid, pipeline.id, dict(parameters))
            columns[column.key] = column
    for (pipeline_uuid, data_json, state), n in tally.items():
        if wanted is not None and data_json != wanted:
            continue
        column = Column(pipeline_uuid, by_uuid[pipeline_uuid].id, json.loads(data_json))
        columns.setdefault(column.key, column)
        per_state = counts.setdefault(column.key, {})
        per_state[state] = per_state.get(state, 0) + n
    order = sorted(columns, key=lambda k: (columns[k].pipeline_id, k[1]))
    column_counts = []
    for key in order:
        found = counts.get(key, {})
        ordered = {s: found[s] for s in states.STATES if s in found}
        ordered[MISSING] = len(entity_uuids) - sum(found.values())
        column_counts.append(ordered)

    page = selection.entities[offset : offset + limit]
    rows = _rows(store, page, [columns[k] for k in order], list(by_uuid))
    return Coverage(
        selection=selection,
        columns=tuple(columns[k] for k in order),
        counts=tuple(column_counts),
        rows=rows,
        offset=offset,
        limit=limit,
        pipeline_ids=tuple(p.id for p in pipelines),
    )


def pipelines_on(store: Store, selection: Selection) -> list[str]:
    """The UUIDs of the pipelines with a job naming a selected entity (one aggregation)."""
    found = store.aggregate(
        "job",
        [
            {"$match": {"child_of": {"$in": selection.uuids}, "_visible": True}},
            {"$group": {"_id": "$pipeline_uuid"}},
            {"$project": {"pipeline": "$_id"}},  # the store's results drop _id
        ],
    )
    return sorted(str(d["pipeline"]) for d in found)


def _tally(
    store: Store, pipeline_uuids: list[str], entity_uuids: list[str]
) -> dict[tuple[str, str, str], int]:
    """Cells per (pipeline, canonical parameters, state).

    A job for one entity is one cell (its pipeline, parameters and entity make its
    identity): those are counted by one aggregation that groups them as they are. Jobs
    for several entities are rare; each names one cell per selected entity, which a job
    for that entity alone, or another of them, may name too: the newest job of a cell
    counts. They are resolved cell by cell: one aggregation, and one read of the
    single-entity jobs in their cells (only when there are any).
    """
    tally: dict[tuple[str, str, str], int] = {}
    if not pipeline_uuids:
        return tally
    within = {"$in": entity_uuids}
    match = {"pipeline_uuid": {"$in": pipeline_uuids}, "child_of": within, "_visible": True}
    singles = store.aggregate(
        "job",
        [
            {"$match": {**match, "child_of.1": {"$exists": False}}},
            {
                "$group": {
                    "_id": {"p": "$pipeline_uuid", "d": "$data", "s": "$state"},
                    "n": {"$sum": 1},
                }
            },
            {"$project": {"column": "$_id", "n": 1}},  # the store's results drop _id
        ],
    )
    for group in singles:
        ident = group["column"]
        key = (ident["p"], canonical_json(ident.get("d") or {}), ident["s"])
        tally[key] = tally.get(key, 0) + int(group["n"])
    shared = store.aggregate(
        "job",
        [
            {"$match": {**match, "child_of.1": {"$exists": True}}},
            {
                "$project": {
                    "_id": 0,
                    "p": "$pipeline_uuid",
                    "d": "$data",
                    "s": "$state",
                    "e": "$child_of",
                    "c": "$_properties.created_date",
                }
            },
            {"$unwind": "$e"},
            {"$match": {"e": within}},
            {"$sort": {"c": 1}},
            {
                "$group": {
                    "_id": {"p": "$p", "d": "$d", "e": "$e"},
                    "s": {"$last": "$s"},
                    "c": {"$last": "$c"},
                }
            },
            {"$project": {"cell": "$_id", "s": 1, "c": 1}},
        ],
    )
    if not shared:
        return tally
    newest: dict[tuple[str, str, str], tuple[Any, str]] = {}
    for row in shared:
        cell = row["cell"]
        key = (cell["p"], canonical_json(cell.get("d") or {}), cell["e"])
        if key not in newest or newest[key][0] < row["c"]:
            newest[key] = (row["c"], row["s"])
    alone = store.find(
        "job",
        {
            "pipeline_uuid": {"$in": pipeline_uuids},
            "child_of": {"$in": sorted({k[2] for k in newest})},
            "child_of.1": {"$exists": False},
            "_visible": True,
        },
        projection={"pipeline_uuid": 1, "data": 1, "state": 1, "child_of": 1,
                    "_properties.created_date": 1},
    )  # fmt: skip
    for doc in alone:
        key = (doc["pipeline_uuid"], canonical_json(doc.get("data") or {}), doc["child_of"][0])
        if key not in newest:
            continue
        date, state = newest[key]
        if doc["_properties"]["created_date"] >= date:
            del newest[key]  # the job for the entity alone is the newer: counted already
        else:  # the shared job is newer: the entity's own job no longer counts
            counted = (key[0], key[1], doc["state"])
            tally[counted] -= 1
    for (pipeline_uuid, data_json, _entity), (_date, state) in newest.items():
        counted = (pipeline_uuid, data_json, state)
        tally[counted] = tally.get(counted, 0) + 1
    return {k: n for k, n in tally.items() if n > 0}


def _rows(
    store: Store, page: Sequence[Entity], columns: list[Column], pipeline_uuids: list[str]
) -> tuple[Row, ...]:
    """The page's rows: one read of the jobs naming its entities."""
    if not page or not pipeline_uuids:
        return tuple(Row(e, ()) for e in page)
    index = {c.key: i for i, c in enumerate(columns)}
    on_page = {e.uuid for e in page}
    docs = store.find(
        "job",
        {
            "pipeline_uuid": {"$in": pipeline_uuids},
            "child_of": {"$in": sorted(on_page)},
            "_visible": True,
        },
        projection={"uuid": 1, "state": 1, "pipeline_uuid": 1, "data": 1, "child_of": 1},
        sort=[("_properties.created_date", 1), ("uuid", 1)],
    )
    cells: dict[str, list[Cell | None]] = {e.uuid: [None] * len(columns) for e in page}
    for doc in docs:  # oldest first: the newest job of a cell is written last
        at = index.get((doc["pipeline_uuid"], canonical_json(doc.get("data") or {})))
        if at is None:
            continue
        for entity in doc.get("child_of", []):
            if entity in on_page:
                cells[entity][at] = Cell(doc["uuid"], doc["state"])
    return tuple(Row(e, tuple(cells[e.uuid])) for e in page)
