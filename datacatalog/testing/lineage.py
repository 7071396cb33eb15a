"""Synthetic catalogs for the lineage tests and benchmark, written with bulk upserts.

A catalog of ``jobs`` jobs is made of chains of :data:`CHAIN` jobs. Every job has
``files_per_job`` outputs; the first job of a chain reads nothing, each later job acts
on the first output of the job before it, and that output's first file is derived from
it. Every chain has its own sample (under one experiment and design) and all jobs share
a few pipelines, so a walk of depth 10 from a chain's end stays inside the chain (plus
its sample, experiment, design and pipeline) however many chains there are: its size,
and so its round trips, do not depend on the size of the catalog.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from datacatalog.identifiers import file_uuid, typed_uuid
from datacatalog.store import Document, Store, Upsert

CHAIN = 12
PIPELINES = 4
_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class SyntheticCatalog:
    """Where the interesting entities of a synthetic catalog are."""

    jobs: int
    files_per_job: int
    chains: int

    def job(self, chain: int, position: int) -> str:
        """The UUID of the job at ``position`` (0 first) of ``chain``."""
        return typed_uuid(f"synthetic-job-{chain}-{position}", "pipelinejob")

    def file(self, chain: int, position: int, index: int = 0) -> str:
        """The UUID of output ``index`` of that job."""
        return file_uuid(_path(chain, position, index))

    def sample(self, chain: int) -> str:
        """The UUID of the chain's sample."""
        return typed_uuid(f"synthetic-sample-{chain}", "sample")


def _path(chain: int, position: int, index: int) -> str:
    return f"/products/v2/synthetic/{chain}/{position}/out-{index}.dat"


def _pipeline(number: int) -> str:
    return typed_uuid(f"synthetic-pipeline-{number}", "pipeline")


def _properties() -> dict[str, object]:
    return {"created_date": _DATE, "modified_date": _DATE, "revision": 0}


def documents(
    jobs: int, *, files_per_job: int = 10
) -> tuple[SyntheticCatalog, list[tuple[str, Iterator[Document]]]]:
    """The documents of a synthetic catalog, per kind, in the order to write them.

    Each document is complete (``_properties`` included), so a benchmark can insert
    them as they are with the driver's bulk inserts.
    """
    chains = max(1, -(-jobs // CHAIN))
    design = typed_uuid("synthetic-design", "experiment_design")
    experiment = typed_uuid("synthetic-experiment", "experiment")
    meta = SyntheticCatalog(jobs=chains * CHAIN, files_per_job=files_per_job, chains=chains)

    def metadata() -> Iterator[Document]:
        yield _stamped({"uuid": design, "experiment_design_id": "synthetic-design", "child_of": []})

    def experiments() -> Iterator[Document]:
        yield _stamped(
            {"uuid": experiment, "experiment_id": "synthetic-experiment", "child_of": [design]}
        )

    def samples() -> Iterator[Document]:
        for c in range(chains):
            yield _stamped(
                {
                    "uuid": meta.sample(c),
                    "sample_id": f"synthetic-sample-{c}",
                    "child_of": [experiment],
                }
            )

    return meta, [
        ("experiment_design", metadata()),
        ("experiment", experiments()),
        ("pipeline", _pipelines()),
        ("sample", samples()),
        ("job", _job_docs(meta)),
        ("file", _file_docs(meta)),
    ]


def _stamped(doc: Document) -> Document:
    return {**doc, "_properties": _properties()}


def _pipelines() -> Iterator[Document]:
    for n in range(PIPELINES):
        yield _stamped(
            {
                "uuid": _pipeline(n),
                "id": f"synthetic-{n}",
                "name": f"synthetic {n}",
                "components": [{"image": f"synthetic:{n}"}],
                "processing_levels": ["1"],
                "_visible": True,
            }
        )


def _job_docs(meta: SyntheticCatalog) -> Iterator[dict[str, object]]:
    for c in range(meta.chains):
        for p in range(CHAIN):
            pipeline = _pipeline((c + p) % PIPELINES)
            yield _stamped(
                {
                    "uuid": meta.job(c, p),
                    "pipeline_uuid": pipeline,
                    "state": "FINISHED",
                    "last_event": "finish",
                    "history": [],
                    "data": {"chain": c, "position": p},
                    "archive_path": f"/products/v2/synthetic/{c}/{p}",
                    "archive_system": "local",
                    "instanced": False,
                    "archive_patterns": [],
                    "product_patterns": [],
                    "generated_by": [pipeline],
                    "child_of": [meta.sample(c)],
                    "acted_on": [meta.file(c, p - 1)] if p else [],
                    "acted_using": [],
                    "_visible": True,
                }
            )


def _file_docs(meta: SyntheticCatalog) -> Iterator[dict[str, object]]:
    for c in range(meta.chains):
        for p in range(CHAIN):
            for i in range(meta.files_per_job):
                yield _stamped(
                    {
                        "uuid": meta.file(c, p, i),
                        "name": _path(c, p, i),
                        "storage_system": "local",
                        "level": "1",
                        "type": "DAT",
                        "size": 1024,
                        "generated_by": [meta.job(c, p)],
                        "derived_from": [meta.file(c, p - 1)] if p and i == 0 else [],
                        "derived_using": [],
                        "child_of": [meta.sample(c)],
                        "_visible": True,
                    }
                )


def generate(
    store: Store, *, jobs: int, files_per_job: int = 10, batch_size: int = 2000
) -> SyntheticCatalog:
    """Write a synthetic catalog of ``jobs`` jobs (rounded up to whole chains) to ``store``."""
    meta, kinds = documents(jobs, files_per_job=files_per_job)
    for kind, docs in kinds:
        batch: list[Upsert] = []
        for doc in docs:
            batch.append(Upsert({"uuid": doc["uuid"]}, {"$setOnInsert": doc}))
            if len(batch) >= batch_size:
                store.bulk_upsert(kind, batch, batch_size=batch_size)
                batch = []
        if batch:
            store.bulk_upsert(kind, batch, batch_size=batch_size)
    return meta
