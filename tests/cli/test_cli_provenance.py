"""``datacatalog provenance``: lineage, PROV-JSON export and job diffs from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from datacatalog.catalog import Catalog
from datacatalog.cli import cli
from datacatalog.settings import Settings

pytestmark = pytest.mark.usefixtures("no_configuration")


def _run(data_dir: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture
def indexed(tmp_path: Path) -> dict[str, Any]:
    """An embedded catalog with two jobs, one of them with indexed outputs."""
    data_dir = tmp_path / "data"
    catalog = Catalog.open(settings=Settings.load(env={}, data_dir=data_dir))
    catalog.pipelines.register({"id": "count", "components": [{"image": "count:1"}]})
    catalog.metadata.load(
        [
            {"experiment_design_id": "design-a"},
            {"experiment_id": "exp-a", "experiment_design_id": "design-a"},
            {"sample_id": "s-1", "experiment_id": "exp-a"},
        ]
    )
    jobs = [
        catalog.jobs.create(
            catalog.jobs.plan(pipeline="count", metadata={"sample_id": "s-1"}, data={"k": k})
        )[0]
        for k in (1, 2)
    ]
    job = jobs[0]
    out = data_dir / "archive" / job.archive_path.lstrip("/") / "counts.csv"
    out.write_text("gene,count\na,1\n", encoding="utf-8")
    for event in ("run", "finish"):
        catalog.jobs.send(job.uuid, event)
    report = catalog.indexing.index(job.uuid, fixity=True, transition=True)
    return {"data_dir": data_dir, "jobs": jobs, "file": report.files[0], "path": str(out)}


def test_lineage_prints_the_chain_and_json(indexed: dict[str, Any]) -> None:
    data_dir, job = indexed["data_dir"], indexed["jobs"][0]

    human = _run(data_dir, "provenance", "lineage", indexed["file"])
    assert f"job {job.uuid} (FINISHED)" in human
    for name in ("pipeline count", "sample s-1", "experiment exp-a", "experiment design design-a"):
        assert name in human

    body = json.loads(_run(data_dir, "--json", "provenance", "lineage", indexed["file"]))
    assert body["file"]["uuid"] == indexed["file"]
    assert [j["uuid"] for j in body["jobs"]] == [job.uuid]
    assert [m["kind"] for m in body["metadata"]] == ["sample", "experiment", "experiment_design"]


def test_lineage_of_an_unknown_file_exits_not_found(indexed: dict[str, Any]) -> None:
    _run(indexed["data_dir"], "provenance", "lineage", "/not/indexed.csv", code=3)


def test_export_writes_prov_json(indexed: dict[str, Any], tmp_path: Path) -> None:
    data_dir, job = indexed["data_dir"], indexed["jobs"][0]
    printed = json.loads(_run(data_dir, "provenance", "export", job.uuid))
    assert f"dc:{indexed['file']}" in printed["entity"]

    target = tmp_path / "job.prov.json"
    _run(data_dir, "provenance", "export", job.uuid, "--output", str(target))
    assert json.loads(target.read_text(encoding="utf-8")) == printed


def test_export_to_a_file_reports_as_json_and_write_errors_in_one_line(
    indexed: dict[str, Any], tmp_path: Path
) -> None:
    data_dir, job = indexed["data_dir"], indexed["jobs"][0]
    target = tmp_path / "out.prov.json"
    body = json.loads(
        _run(data_dir, "--json", "provenance", "export", job.uuid, "--output", str(target))
    )
    assert body == {"job": job.uuid, "output": str(target)}
    assert target.exists()

    unwritable = tmp_path / "no-such-dir" / "out.json"
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "provenance", "export", job.uuid, "-o", str(unwritable)],
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot write {unwritable}: No such file or directory\n"


def test_diff_names_what_differs(indexed: dict[str, Any]) -> None:
    data_dir = indexed["data_dir"]
    first, second = (j.uuid for j in indexed["jobs"])

    body = json.loads(_run(data_dir, "--json", "provenance", "diff", first, second))
    assert body["same_identity"] is False
    assert body["data"] == {"data.k": {"left": 1, "right": 2}}
    assert "data.k" in _run(data_dir, "provenance", "diff", first, second)
    assert "same identity" in _run(data_dir, "provenance", "diff", first, first)
