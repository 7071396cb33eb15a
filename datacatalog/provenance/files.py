"""Where a file came from: the file-centred upstream view.

    file --generated_by--> job --generated_by--> pipeline
                            |--child_of--> measurement/sample/experiment --> ... --> design
                            |--acted_on / acted_using--> input files and references
    file --derived_from--> upstream files (followed transitively, bounded depth)

Every step is a bounded, indexed query: the upstream file graph is one
``$graphLookup`` on the ``uuid`` index with a maximum depth, the metadata chain is
at most one query per level, so answering "where did this file come from?" costs a
handful of round trips whatever the catalog's size. The general graph over every
kind of entity, in both directions, is :mod:`datacatalog.provenance.graph`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datacatalog.identifiers import kind_of
from datacatalog.indexing import file_document
from datacatalog.metadata import LEVELS
from datacatalog.store import Document, Store

MAX_UPSTREAM_DEPTH = 16


@dataclass(frozen=True)
class Lineage:
    """Everything upstream of one file."""

    file: Document
    jobs: list[Document] = field(default_factory=list)
    pipelines: list[Document] = field(default_factory=list)
    metadata: list[Document] = field(default_factory=list)
    upstream_files: list[Document] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        plain: dict[str, Any] = _jsonable(
            {
                "file": self.file,
                "jobs": self.jobs,
                "pipelines": self.pipelines,
                "metadata": self.metadata,
                "upstream_files": self.upstream_files,
            }
        )
        return plain


def find_file(store: Store, uuid_or_path: str) -> Document:
    """A file record by UUID, absolute catalog path or storage URI."""
    return file_document(store, uuid_or_path)


def metadata_chain(store: Store, uuids: list[str]) -> list[Document]:
    """The metadata entities ``uuids`` and all their ancestors, most specific first."""
    chain: list[Document] = []
    pending = sorted(set(uuids))
    seen: set[str] = set()
    for _level in LEVELS:
        by_kind: dict[str, list[str]] = {}
        for value in pending:
            if value not in seen and kind_of(value) in LEVELS:
                by_kind.setdefault(str(kind_of(value)), []).append(value)
        if not by_kind:
            break
        pending = []
        for kind, values in by_kind.items():
            for doc in store.find(kind, {"uuid": {"$in": values}}, sort=[("uuid", 1)]):
                seen.add(doc["uuid"])
                chain.append({"kind": kind, **doc})
                pending.extend(doc.get("child_of", []))
    return chain


def lineage(store: Store, uuid_or_path: str, *, max_depth: int = MAX_UPSTREAM_DEPTH) -> Lineage:
    """Trace a file back to the jobs, pipelines, metadata and files behind it.

    Soft-deleted jobs are left out, as from every other read.
    """
    record = find_file(store, uuid_or_path)
    upstream: list[Document] = []
    if record.get("derived_from"):
        result = store.aggregate(
            "file",
            [
                {"$match": {"uuid": record["uuid"]}},
                {
                    "$graphLookup": {
                        "from": "files",
                        "startWith": "$derived_from",
                        "connectFromField": "derived_from",
                        "connectToField": "uuid",
                        "as": "upstream",
                        "maxDepth": max_depth,
                    }
                },
                {"$project": {"upstream": 1}},
            ],
        )
        upstream = [
            {k: v for k, v in d.items() if k != "_id"}
            for d in (result[0].get("upstream", []) if result else [])
        ]
        upstream.sort(key=lambda d: str(d.get("name")))
    job_uuids = sorted(
        {
            g
            for d in [record, *upstream]
            for g in d.get("generated_by", [])
            if kind_of(g) == "pipelinejob"
        }
    )
    jobs = store.find(
        "job",
        {"uuid": {"$in": job_uuids}, "_visible": True},  # deleted jobs stay hidden
        projection={"history": 0},
        sort=[("uuid", 1)],
    )
    pipeline_uuids = sorted({j["pipeline_uuid"] for j in jobs})
    pipelines = store.find("pipeline", {"uuid": {"$in": pipeline_uuids}}, sort=[("uuid", 1)])
    child_of = sorted({c for j in jobs for c in j.get("child_of", [])})
    return Lineage(
        file=record,
        jobs=jobs,
        pipelines=pipelines,
        metadata=metadata_chain(store, child_of),
        upstream_files=upstream,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
