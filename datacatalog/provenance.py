"""Provenance: where a file came from, in the catalog's own terms and in W3C PROV.

Lineage of a file
    file --generated_by--> job --generated_by--> pipeline
                            |--child_of--> measurement/sample/experiment --> ... --> design
                            |--acted_on / acted_using--> input files and references
    file --derived_from--> upstream files (followed transitively, bounded depth)

Every step is a bounded, indexed query: the upstream file graph is one
``$graphLookup`` on the ``uuid`` index with a maximum depth, the metadata chain is
at most one query per level, so answering "where did this file come from?" costs a
handful of round trips whatever the catalog's size.

:func:`prov_document` exports a job (its outputs, inputs, pipeline and metadata) as
a PROV document (PROV-JSON via the ``prov`` package). :func:`diff_jobs` explains why
two jobs are different jobs: which of the identity inputs (pipeline, metadata,
parameters) differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import prov.model as prov_model

from datacatalog.identifiers import kind_of
from datacatalog.indexing import file_document
from datacatalog.jobs import job_document
from datacatalog.metadata import LEVELS
from datacatalog.store import Document, Store

MAX_UPSTREAM_DEPTH = 16
NAMESPACE = "https://datacatalog.local/ns#"


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


@dataclass(frozen=True)
class JobDiff:
    """Why two jobs have different identities."""

    left: str
    right: str
    pipeline: tuple[str, str] | None
    child_of_only_left: list[str]
    child_of_only_right: list[str]
    data: dict[str, tuple[Any, Any]]

    @property
    def same_identity(self) -> bool:
        """True when the identity inputs are equal (the jobs are the same job)."""
        return (
            self.pipeline is None
            and not self.child_of_only_left
            and not self.child_of_only_right
            and not self.data
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "left": self.left,
            "right": self.right,
            "same_identity": self.same_identity,
            "pipeline": list(self.pipeline) if self.pipeline else None,
            "child_of": {
                "only_left": self.child_of_only_left,
                "only_right": self.child_of_only_right,
            },
            "data": {k: {"left": a, "right": b} for k, (a, b) in self.data.items()},
        }


_MISSING = "<absent>"


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


def prov_document(store: Store, job_uuid: str) -> prov_model.ProvDocument:
    """A W3C PROV document of one job: outputs, inputs, pipeline and metadata."""
    job = job_document(store, job_uuid)
    document = prov_model.ProvDocument()
    document.add_namespace("dc", NAMESPACE)
    activity = document.activity(
        f"dc:{job['uuid']}",
        other_attributes={
            "dc:state": job["state"],
            "dc:archive_path": job["archive_path"],
            "dc:archive_system": job["archive_system"],
        },
    )
    for pipeline in store.find("pipeline", {"uuid": job["pipeline_uuid"]}):
        agent = document.agent(
            f"dc:{pipeline['uuid']}",
            other_attributes={"dc:id": pipeline["id"], "dc:name": pipeline["name"]},
        )
        document.wasAssociatedWith(activity, agent)
    for entity in metadata_chain(store, list(job.get("child_of", []))):
        ident = entity[f"{entity['kind']}_id"]
        document.entity(
            f"dc:{entity['uuid']}", other_attributes={"dc:kind": entity["kind"], "dc:id": ident}
        )
        for parent in entity.get("child_of", []):
            document.wasDerivedFrom(f"dc:{entity['uuid']}", f"dc:{parent}")
    for used in [*job.get("child_of", []), *job.get("acted_on", []), *job.get("acted_using", [])]:
        document.used(activity, f"dc:{used}")
    for record in store.find("file", {"generated_by": job["uuid"]}, sort=[("name", 1)]):
        attributes: dict[str, Any] = {
            "dc:name": record["name"],
            "dc:storage_system": record["storage_system"],
            "dc:level": record["level"],
            "dc:type": record["type"],
        }
        if record.get("sha256"):
            attributes["dc:sha256"] = record["sha256"]
        if record.get("size") is not None:
            attributes["dc:size"] = int(record["size"])
        output = document.entity(f"dc:{record['uuid']}", other_attributes=attributes)
        document.wasGeneratedBy(output, activity)
        for source in [*record.get("derived_from", []), *record.get("derived_using", [])]:
            document.wasDerivedFrom(output, f"dc:{source}")
    return document


def prov_json(store: Store, job_uuid: str) -> str:
    """The PROV-JSON serialization of :func:`prov_document`."""
    return str(prov_document(store, job_uuid).serialize(format="json", indent=2))


def diff_jobs(store: Store, left: str, right: str) -> JobDiff:
    """Compare the identity inputs of two jobs."""
    a, b = job_document(store, left), job_document(store, right)
    changed: dict[str, tuple[Any, Any]] = {}
    _diff_values(a.get("data", {}), b.get("data", {}), "data", changed)
    return JobDiff(
        left=left,
        right=right,
        pipeline=None
        if a["pipeline_uuid"] == b["pipeline_uuid"]
        else (a["pipeline_uuid"], b["pipeline_uuid"]),
        child_of_only_left=sorted(set(a["child_of"]) - set(b["child_of"])),
        child_of_only_right=sorted(set(b["child_of"]) - set(a["child_of"])),
        data=changed,
    )


def _diff_values(a: Any, b: Any, path: str, out: dict[str, tuple[Any, Any]]) -> None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b)):
            _diff_values(a.get(key, _MISSING), b.get(key, _MISSING), f"{path}.{key}", out)
    elif a != b or type(a) is not type(b):
        out[path] = (a, b)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
