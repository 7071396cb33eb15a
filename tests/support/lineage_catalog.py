"""The hand-built catalog of the lineage tests, on any store.

design → experiment → sample → measurement → job A → A's files (raw.csv, summary.csv)
→ a product (plot.png, derived from raw.csv) → job B acting on the product → B's file
(report.html). Names are returned so the tests can say what they expect by label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datacatalog.catalog import Catalog
from datacatalog.identifiers import file_uuid
from datacatalog.jobs import Job
from datacatalog.settings import Settings
from datacatalog.store import Store


@dataclass(frozen=True)
class Built:
    """The catalog and the UUIDs of its entities, by short name."""

    catalog: Catalog
    ids: dict[str, str]
    job_a: Job
    job_b: Job

    def name_of(self, uuid: str) -> str:
        """The short name of ``uuid`` (the inverse of ``ids``)."""
        return {v: k for k, v in self.ids.items()}[uuid]


def add_file(
    store: Store,
    job: Job,
    name: str,
    *,
    derived_from: tuple[str, ...] = (),
    generated_by: tuple[str, ...] | None = None,
    content: bytes = b"abc",
) -> str:
    """Insert one file record under ``job``'s archive path; return its UUID."""
    import hashlib

    path = f"{job.archive_path}/{name}"
    store.insert(
        "file",
        {
            "uuid": file_uuid(path),
            "name": path,
            "storage_system": job.archive_system,
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "level": "1",
            "type": name.rsplit(".", 1)[-1].upper(),
            "generated_by": list(generated_by if generated_by is not None else (job.uuid,)),
            "derived_from": list(derived_from),
            "derived_using": [],
            "child_of": job.child_of,
            "_visible": True,
        },
    )
    return file_uuid(path)


def build(store: Store, tmp_path: Path) -> Built:
    """Build the catalog on ``store``."""
    settings = Settings.load(env={}, data_dir=tmp_path, secret="l" * 32)
    catalog = Catalog(store, settings=settings)
    align = catalog.pipelines.register({"id": "align", "components": [{"image": "align:1"}]})[0]
    report = catalog.pipelines.register({"id": "report", "components": [{"image": "rep:1"}]})[0]
    catalog.metadata.load(
        [
            {"experiment_design_id": "design-1"},
            {"experiment_id": "exp-1", "experiment_design_id": "design-1"},
            {"sample_id": "sample-1", "experiment_id": "exp-1"},
            {"measurement_id": "meas-1", "sample_id": "sample-1"},
        ]
    )
    job_a = catalog.jobs.create(
        catalog.jobs.plan(pipeline="align", metadata={"measurement_id": "meas-1"}, data={"k": 1})
    )[0]
    raw = add_file(store, job_a, "raw.csv", content=b"raw")
    summary = add_file(store, job_a, "summary.csv", content=b"summary")
    plot = add_file(store, job_a, "plot.png", derived_from=(raw,), content=b"plot")
    plot_path = f"{job_a.archive_path}/plot.png"
    job_b = catalog.jobs.create(
        catalog.jobs.plan(
            pipeline="report",
            metadata={"measurement_id": "meas-1"},
            data={"style": "short"},
            inputs=[plot_path],
        )
    )[0]
    final = add_file(store, job_b, "report.html", content=b"<html/>")
    ids = {
        "design": _uuid(store, "experiment_design", "experiment_design_id", "design-1"),
        "experiment": _uuid(store, "experiment", "experiment_id", "exp-1"),
        "sample": _uuid(store, "sample", "sample_id", "sample-1"),
        "measurement": _uuid(store, "measurement", "measurement_id", "meas-1"),
        "align": align.uuid,
        "report": report.uuid,
        "job_a": job_a.uuid,
        "raw": raw,
        "summary": summary,
        "plot": plot,
        "job_b": job_b.uuid,
        "final": final,
    }
    return Built(catalog=catalog, ids=ids, job_a=job_a, job_b=job_b)


def _uuid(store: Store, kind: str, key: str, value: str) -> str:
    doc = store.get(kind, {key: value})
    assert doc is not None
    return str(doc["uuid"])
