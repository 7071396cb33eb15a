"""OpenLineage run events and RO-Crate exports of a job, on both engines."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.serde import Serde
from rocrate.rocrate import ROCrate

from datacatalog.catalog import Catalog
from datacatalog.errors import ConflictError, InvalidRequestError
from datacatalog.provenance import openlineage as ol
from datacatalog.provenance import rocrate as crates
from datacatalog.store import Store
from tests.support.lineage_catalog import Built, build


@pytest.fixture
def built(store: Store, tmp_path: Path) -> Built:
    return build(store, tmp_path / "data")


def _finish_with_outputs(catalog: Catalog, job_uuid: str) -> dict[str, bytes]:
    """Run a job, write two outputs into its archive path, finish and index it."""
    job = catalog.jobs.get(job_uuid)
    catalog.jobs.send(job_uuid, "run")
    root = catalog.storage.get(job.archive_system)
    written = {"counts.csv": b"gene,count\na,1\n", "notes.txt": b"all good\n"}
    for name, content in written.items():
        local = Path(root.resolve(f"{job.archive_path}/{name}"))
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(content)
    catalog.jobs.send(job_uuid, "finish")
    catalog.indexing.index(job_uuid, fixity=True, transition=True)
    return written


def _rebuilt(plain: dict[str, Any]) -> RunEvent:
    """The event rebuilt with the client's own model classes (their validators run)."""
    return RunEvent(
        eventType=RunState(plain["eventType"]),
        eventTime=plain["eventTime"],
        run=Run(runId=plain["run"]["runId"], facets=plain["run"].get("facets")),
        job=Job(
            namespace=plain["job"]["namespace"],
            name=plain["job"]["name"],
            facets=plain["job"].get("facets"),
        ),
        producer=plain["producer"],
        inputs=[
            InputDataset(namespace=d["namespace"], name=d["name"], facets=d.get("facets"))
            for d in plain.get("inputs", [])
        ],
        outputs=[
            OutputDataset(
                namespace=d["namespace"],
                name=d["name"],
                facets=d.get("facets"),
                outputFacets=d.get("outputFacets"),
            )
            for d in plain.get("outputs", [])
        ],
    )


def test_openlineage_events_of_a_run_round_trip_through_the_client_model(built: Built) -> None:
    job_uuid = built.ids["job_a"]
    written = _finish_with_outputs(built.catalog, job_uuid)
    lines = ol.export(built.catalog.store, job_uuid, storage=built.catalog.storage).splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "OTHER"]
    for plain in events:
        again = Serde.to_dict(_rebuilt(plain))
        assert again == plain
        assert plain["run"]["runId"] == job_uuid
        assert plain["job"] == {**plain["job"], "namespace": "datacatalog", "name": "align"}
        assert plain["job"]["facets"]["jobType"]["processingType"] == "BATCH"
        assert plain["run"]["facets"]["datacatalog"]["childOf"][0]["kind"] == "measurement"
    complete = events[1]
    by_name = {Path(d["name"]).name: d for d in complete["outputs"]}
    assert {"counts.csv", "notes.txt"} <= set(by_name)
    counts = by_name["counts.csv"]
    assert counts["namespace"].startswith("file://")
    assert counts["facets"]["version"]["datasetVersion"] == (
        "sha256:" + hashlib.sha256(written["counts.csv"]).hexdigest()
    )
    assert counts["outputFacets"]["outputStatistics"]["size"] == len(written["counts.csv"])
    plot = by_name["plot.png"]
    assert [Path(i["name"]).name for i in plot["facets"]["lineage"]["inputs"]] == ["raw.csv"]
    # Exporting again gives the same events.
    assert (
        ol.export(built.catalog.store, job_uuid, storage=built.catalog.storage).splitlines()
        == lines
    )


def test_openlineage_life_cycle_rules_after_failure_and_reset(built: Built) -> None:
    jobs = built.catalog.jobs
    job_uuid = built.ids["job_b"]
    jobs.send(job_uuid, "run")
    jobs.send(job_uuid, "fail", data={"message": "out of memory"})
    jobs.reset(job_uuid, token=jobs.admin_token())
    jobs.ready(job_uuid, token=jobs.admin_token())
    jobs.send(job_uuid, "run")
    jobs.reset(job_uuid, token=jobs.admin_token())  # a running job reset: ABORT
    jobs.ready(job_uuid, token=jobs.admin_token())
    jobs.send(job_uuid, "run")
    jobs.send(job_uuid, "run")  # a repeated run is not a second START
    jobs.send(job_uuid, "finish")

    found = ol.lifecycle(built.catalog.store, job_uuid, storage=built.catalog.storage)
    states = [(e.execution, e.event.eventType.value) for e in found]
    assert states == [
        (0, "START"),
        (0, "FAIL"),
        (1, "START"),
        (1, "ABORT"),
        (2, "START"),
        (2, "COMPLETE"),
    ]
    run_ids = {e.execution: e.event.run.runId for e in found}
    assert len(set(run_ids.values())) == 3 and run_ids[0] == job_uuid
    for execution in run_ids:
        mine = [e.event.eventType for e in found if e.execution == execution]
        assert mine.count(RunState.START) == 1
        terminal = {RunState.COMPLETE, RunState.FAIL, RunState.ABORT}
        assert sum(1 for s in mine if s in terminal) == 1
    fail = Serde.to_dict(found[1].event)
    assert fail["run"]["facets"]["errorMessage"]["message"] == "out of memory"
    assert fail["inputs"][0]["name"].endswith("/plot.png")


def test_openlineage_namespace_is_checked(built: Built) -> None:
    with pytest.raises(InvalidRequestError, match="without '://'"):
        ol.export(built.catalog.store, built.ids["job_a"], namespace="http://x")


def _crate_files(crate: ROCrate) -> dict[str, Any]:
    return {e["name"]: e for e in crate.get_entities() if "File" in e.type}


def test_ro_crate_metadata_only_reads_back(built: Built, tmp_path: Path) -> None:
    job_uuid = built.ids["job_a"]
    written = _finish_with_outputs(built.catalog, job_uuid)
    out = crates.export(
        built.catalog.store, job_uuid, tmp_path / "crate", storage=built.catalog.storage
    )
    crate = ROCrate(str(out))
    action = crate.get(f"urn:uuid:{job_uuid}")
    assert action.type == "CreateAction"
    assert action["instrument"]["identifier"] == "align"
    assert action["actionStatus"] == "http://schema.org/CompletedActionStatus"
    assert action["startTime"].endswith("+00:00") and "." not in action["startTime"]
    files = _crate_files(crate)
    result_names = {r["name"] for r in action["result"]}
    assert {"counts.csv", "notes.txt", "raw.csv", "plot.png"} <= result_names
    for name, content in written.items():
        assert files[name]["sha256"] == hashlib.sha256(content).hexdigest()
        assert files[name]["contentSize"] == str(len(content))
        assert files[name].id.startswith("file://")
    assert files["counts.csv"]["encodingFormat"] == "text/csv"
    metadata = json.loads((out / "ro-crate-metadata.json").read_text())
    assert {"sha256": crates.SHA256_TERM} in metadata["@context"]
    root = next(e for e in metadata["@graph"] if e["@id"] == "./")
    assert root["conformsTo"] == {"@id": crates.PROFILE}


def test_ro_crate_zip_with_files_has_matching_checksums(built: Built, tmp_path: Path) -> None:
    job_uuid = built.ids["job_a"]
    written = _finish_with_outputs(built.catalog, job_uuid)
    # The hand-built records of job A get their files too (their checksums are of these).
    root = built.catalog.storage.get(built.job_a.archive_system)
    for name, content in {
        "raw.csv": b"raw",
        "summary.csv": b"summary",
        "plot.png": b"plot",
    }.items():
        Path(root.resolve(f"{built.job_a.archive_path}/{name}")).write_bytes(content)
        written[name] = content
    out = crates.export(
        built.catalog.store,
        job_uuid,
        tmp_path / "run.zip",
        storage=built.catalog.storage,
        with_files=True,
    )
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert "ro-crate-metadata.json" in names
        crate = ROCrate(str(out))
        for name, content in written.items():
            entity = _crate_files(crate)[name]
            assert entity.id.startswith("outputs/")
            stored = archive.read(entity.id)
            assert stored == content
            assert hashlib.sha256(stored).hexdigest() == entity["sha256"]


def test_ro_crate_refuses_an_unfinished_job(built: Built, tmp_path: Path) -> None:
    with pytest.raises(ConflictError, match="is CREATED"):
        crates.export(built.catalog.store, built.ids["job_a"], tmp_path / "c")
    assert not (tmp_path / "c").exists()
