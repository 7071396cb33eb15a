"""Lineage queries, PROV export and job identity diffs, on both engines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datacatalog import provenance
from datacatalog.catalog import Catalog
from datacatalog.errors import InvalidRequestError, NotFoundError
from datacatalog.identifiers import file_uuid
from datacatalog.jobs import Job
from datacatalog.settings import Settings
from datacatalog.store import Store


@pytest.fixture
def catalog(store: Store, tmp_path: Path) -> Catalog:
    settings = Settings.load(env={}, data_dir=tmp_path, secret="p" * 32)
    cat = Catalog(store, settings=settings)
    cat.pipelines.register({"id": "align", "components": [{"image": "aligner:1"}]})
    cat.metadata.load(
        [
            {"experiment_design_id": "design-1"},
            {"experiment_id": "exp-1", "experiment_design_id": "design-1"},
            {"sample_id": "sample-1", "experiment_id": "exp-1"},
            {"sample_id": "sample-2", "experiment_id": "exp-1"},
        ]
    )
    return cat


def _admin(catalog: Catalog) -> str:
    return catalog.jobs.admin_token()


def _job(catalog: Catalog, sample: str, data: dict[str, object]) -> Job:
    plan = catalog.jobs.plan(pipeline="align", metadata={"sample_id": sample}, data=data)
    return catalog.jobs.create(plan)[0]


def _file(store: Store, job: Job, name: str, *, derived_from: list[str] | None = None) -> str:
    path = f"{job.archive_path}/{name}"
    store.insert(
        "file",
        {
            "uuid": file_uuid(path),
            "name": path,
            "storage_system": job.archive_system,
            "size": 3,
            "sha256": "a" * 64,
            "level": "1",
            "type": "CSV",
            "generated_by": [job.uuid],
            "derived_from": derived_from or [],
            "derived_using": [],
            "child_of": job.child_of,
            "_visible": True,
        },
    )
    return file_uuid(path)


def test_lineage_walks_to_pipeline_metadata_and_upstream_files(
    catalog: Catalog, store: Store
) -> None:
    first = _job(catalog, "sample-1", {"step": 1})
    second = _job(catalog, "sample-1", {"step": 2})
    raw = _file(store, first, "raw.csv")
    middle = _file(store, second, "middle.csv", derived_from=[raw])
    final = _file(store, second, "final.csv", derived_from=[middle])

    found = provenance.lineage(store, final)

    assert found.file["uuid"] == final
    assert {f["uuid"] for f in found.upstream_files} == {middle, raw}
    assert {j["uuid"] for j in found.jobs} == {first.uuid, second.uuid}
    assert [p["id"] for p in found.pipelines] == ["align"]
    kinds = [(m["kind"], m.get(f"{m['kind']}_id")) for m in found.metadata]
    assert kinds == [
        ("sample", "sample-1"),
        ("experiment", "exp-1"),
        ("experiment_design", "design-1"),
    ]
    as_json = json.loads(json.dumps(found.to_dict()))
    assert as_json["file"]["name"].endswith("/final.csv")


def test_lineage_by_path_and_unknown_file(catalog: Catalog, store: Store) -> None:
    job = _job(catalog, "sample-2", {})
    uuid = _file(store, job, "out.csv")
    assert provenance.lineage(store, f"{job.archive_path}/out.csv").file["uuid"] == uuid
    uri = f"agave://{job.archive_system}{job.archive_path}/out.csv"
    assert provenance.lineage(store, uri).file["uuid"] == uuid
    with pytest.raises(NotFoundError, match="not indexed"):
        provenance.lineage(store, "/nowhere/x.csv")
    with pytest.raises(InvalidRequestError):
        provenance.lineage(store, job.uuid)  # a job UUID is not a file UUID


def test_prov_document_links_outputs_inputs_and_pipeline(catalog: Catalog, store: Store) -> None:
    job = _job(catalog, "sample-1", {"inputs": ["/uploads/reads.fastq"]})
    output = _file(store, job, "counts.csv")

    document = json.loads(provenance.prov_json(store, job.uuid))

    assert f"dc:{job.uuid}" in document["activity"]
    assert f"dc:{output}" in document["entity"]
    assert document["entity"][f"dc:{output}"]["dc:sha256"] == "a" * 64
    generated = list(document["wasGeneratedBy"].values())
    assert {"prov:entity": f"dc:{output}", "prov:activity": f"dc:{job.uuid}"} in generated
    used = {u["prov:entity"] for u in document["used"].values()}
    assert f"dc:{file_uuid('/uploads/reads.fastq')}" in used
    assert f"dc:{job.child_of[0]}" in used
    associated = list(document["wasAssociatedWith"].values())
    assert associated[0]["prov:agent"] == f"dc:{job.pipeline_uuid}"


def test_diff_names_the_identity_inputs_that_differ(catalog: Catalog, store: Store) -> None:
    a = _job(catalog, "sample-1", {"k": 5, "mode": {"fast": True}})
    b = _job(catalog, "sample-2", {"k": 7, "mode": {"fast": True}, "extra": 1})

    diff = provenance.diff_jobs(store, a.uuid, b.uuid)

    assert not diff.same_identity
    assert diff.pipeline is None
    assert diff.child_of_only_left == a.child_of
    assert diff.child_of_only_right == b.child_of
    assert diff.data == {"data.k": (5, 7), "data.extra": ("<absent>", 1)}
    assert provenance.diff_jobs(store, a.uuid, a.uuid).same_identity
    with pytest.raises(NotFoundError):
        provenance.diff_jobs(store, a.uuid, "107" + a.uuid[3:-1] + "0")


def test_a_deleted_job_is_hidden(catalog: Catalog, store: Store) -> None:
    kept = _job(catalog, "sample-1", {"kept": True})
    gone = _job(catalog, "sample-2", {"gone": True})
    raw = _file(store, kept, "raw.csv")
    output = _file(store, gone, "out.csv", derived_from=[raw])
    catalog.jobs.delete(gone.uuid, token=_admin(catalog))

    for read in (
        lambda: provenance.prov_json(store, gone.uuid),
        lambda: provenance.diff_jobs(store, kept.uuid, gone.uuid),
        lambda: provenance.diff_jobs(store, gone.uuid, kept.uuid),
    ):
        with pytest.raises(NotFoundError, match=gone.uuid):
            read()
    found = provenance.lineage(store, output)
    assert [j["uuid"] for j in found.jobs] == [kept.uuid]
    assert [f["uuid"] for f in found.upstream_files] == [raw]

    catalog.jobs.undelete(gone.uuid, token=_admin(catalog))
    assert {j["uuid"] for j in provenance.lineage(store, output).jobs} == {kept.uuid, gone.uuid}
    assert provenance.diff_jobs(store, kept.uuid, gone.uuid).data
