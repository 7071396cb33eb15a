"""Tests for the end-to-end demo (``datacatalog demo``) and the example files.

The demo runs through the command line on a temporary data dir, as ``make demo`` runs it
on the user's: the embedded catalog with zero configuration (and, on the real-server
lane, on MongoDB through ``--mongodb-uri``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from datacatalog import demo
from datacatalog.cli import cli
from datacatalog.identifiers import typed_uuid

ROOT = Path(__file__).resolve().parent.parent
CHAIN = ["file", "pipelinejob", "pipeline", "sample", "experiment", "experiment_design"]


pytestmark = pytest.mark.usefixtures("no_configuration")


@pytest.fixture
def options(
    engine: str, tmp_path: Path, database_name: str, request: pytest.FixtureRequest
) -> Iterator[list[str]]:
    """Global options for the current engine, on a fresh temporary data dir."""
    base = ["--data-dir", str(tmp_path / "data")]
    if engine == "memory":
        yield base
        return
    from datacatalog.store import connect

    uri = request.getfixturevalue("mongo_uri")
    yield [*base, "--mongodb-uri", uri, "--database", database_name]
    store = connect(uri, database=database_name)
    try:
        store.drop_database()
    finally:
        store.close()


def run(options: list[str], *args: str) -> Result:
    result = CliRunner().invoke(cli, [*options, *args], catch_exceptions=False)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def run_json(options: list[str], *args: str) -> Any:
    return json.loads(run(options, "--json", *args).stdout)


def test_demo_runs_twice_without_duplicating_anything(options: list[str], tmp_path: Path) -> None:
    first = run(options, "demo")
    out = first.stdout
    assert "created job" in out
    assert "run -> RUNNING" in out and "finish -> FINISHED" in out and "indexed -> FINISHED" in out
    assert "provenance" in out
    for name in demo.OUTPUTS:
        assert name in out
    for label in ("demo-stats", demo.SAMPLE_ID, "experiment.demo.1", "design.demo.growth"):
        assert label in out
    assert "registered pipeline demo-stats" in first.stderr

    job_uuid = run_json(options, "jobs", "list")["jobs"][0]["uuid"]
    history = run_json(options, "jobs", "history", job_uuid)["history"]

    second = run(options, "demo")
    assert f"found the existing job {job_uuid}" in second.stdout
    assert "nothing is duplicated" in second.stderr
    assert run_json(options, "jobs", "history", job_uuid)["history"] == history
    assert [j["uuid"] for j in run_json(options, "jobs", "list")["jobs"]] == [job_uuid]
    assert len(run_json(options, "pipelines", "list")["pipelines"]) == 1


def test_demo_json_reports_files_with_sha256_and_provenance(
    options: list[str], tmp_path: Path
) -> None:
    result = run_json(options, "demo")
    assert result["job_created"] is True and result["ran"] and result["indexed"]
    job = result["job"]
    assert job["state"] == "FINISHED"
    assert job["child_of"] == [typed_uuid(demo.SAMPLE_ID, "sample")]
    names = [e["name"] for e in result["history"]]
    assert names[:2] == ["create", "run"] and names[-3:] == ["finish", "index", "indexed"]
    assert {e["agent"] for e in result["history"]} == {demo.AGENT}
    assert names.count("update") >= 3

    archive = tmp_path / "data" / "archive" / job["archive_path"].lstrip("/")
    files = {Path(f["name"]).name: f for f in result["files"]}
    assert sorted(files) == sorted(demo.OUTPUTS)
    for name, record in files.items():
        content = (archive / name).read_bytes()
        assert record["sha256"] == hashlib.sha256(content).hexdigest()
        assert record["size"] == len(content)
        assert job["uuid"] in record["generated_by"]
        chain = result["provenance"][record["name"]]
        assert [step["kind"] for step in chain] == CHAIN
        assert [step["label"] for step in chain[3:]] == [
            demo.SAMPLE_ID, "experiment.demo.1", "design.demo.growth",
        ]  # fmt: skip
    report = json.loads((archive / "report.json").read_text(encoding="utf-8"))
    assert report["sample_id"] == demo.SAMPLE_ID and report["rows"] == 50
    assert 0 < report["doubling_time_h"] < 5

    again = run_json(options, "demo")
    assert (again["job_created"], again["ran"], again["indexed"]) == (False, False, False)
    assert again["files"] == result["files"]
    verify = CliRunner().invoke(cli, [*options, "--json", "jobs", "verify", job["uuid"]])
    assert verify.exit_code == 0 and json.loads(verify.stdout)["ok"] is True


def test_the_demo_input_is_a_catalogued_raw_file(options: list[str], tmp_path: Path) -> None:
    job = run_json(options, "demo")["job"]
    source = tmp_path / "data" / "archive" / demo.INPUT_PATH.lstrip("/")
    (input_uuid,) = job["acted_on"]
    # The job's page and its lineage find the input in the catalog, raw, with its sha256.
    shown = run_json(options, "jobs", "show", job["uuid"])
    (used,) = shown["linkages"]["acted_on"]
    assert not used.get("missing") and used["uuid"] == input_uuid
    lineage = run_json(options, "lineage", job["uuid"])
    (node,) = [n for n in lineage["nodes"] if n["id"] == input_uuid]
    assert node["kind"] == "file" and not node["attrs"].get("missing")
    assert node["attrs"]["name"] == demo.INPUT_PATH and node["attrs"]["level"] == "0"
    assert node["attrs"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


def test_demo_runs_again_after_an_admin_reset(options: list[str]) -> None:
    job = run_json(options, "demo")["job"]["uuid"]
    run_json(options, "admin", "reset", job, "--yes")
    run_json(options, "admin", "ready", job, "--yes")
    again = run_json(options, "demo")
    assert (again["job_created"], again["ran"], again["indexed"]) == (False, True, True)
    assert again["job"]["state"] == "FINISHED" and len(again["files"]) == len(demo.OUTPUTS)
    names = [e["name"] for e in again["history"]]
    assert names.count("run") == 2 and names.count("finish") == 2


def test_examples_hold_the_demo_data() -> None:
    pipeline = json.loads((ROOT / "examples" / "pipeline.json").read_text(encoding="utf-8"))
    assert pipeline == demo.PIPELINE
    metadata = yaml.safe_load((ROOT / "examples" / "metadata.yaml").read_text(encoding="utf-8"))
    assert metadata == demo.METADATA
    kinds = [next(k for k in doc if k.endswith("_id")) for doc in metadata]
    assert kinds.count("experiment_design_id") == 1 and kinds.count("experiment_id") == 1
    assert kinds.count("sample_id") == 2 and kinds.count("measurement_id") == 4


def test_the_computation_is_deterministic() -> None:
    assert demo.measurements_csv() == demo.measurements_csv()
    rows = demo.read_measurements(demo.measurements_csv(), sample_id=demo.SAMPLE_ID)
    first = demo.compute(rows, job_uuid="j", sample_id=demo.SAMPLE_ID)
    assert first == demo.compute(rows, job_uuid="j", sample_id=demo.SAMPLE_ID)
    assert sorted(first) == sorted(demo.OUTPUTS)
    assert (
        first["summary.csv"].splitlines()[0] == "measurement_id,channel,n,mean,stdev,min,median,max"
    )
    histogram = demo.text_histogram([1.0, 2.0, 2.5, 4.0], bins=3, title="t")
    assert histogram.splitlines()[0] == "t" and len(histogram.splitlines()) == 4
