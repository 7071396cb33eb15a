"""``datacatalog lineage`` and ``datacatalog export`` on the embedded catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pydot
import pytest
from click.testing import CliRunner
from rocrate.rocrate import ROCrate

from datacatalog.catalog import Catalog
from datacatalog.cli import cli
from datacatalog.provenance import node_id
from datacatalog.settings import Settings

pytestmark = pytest.mark.usefixtures("no_configuration")


def _run(data_dir: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result.stdout if code == 0 else result.stderr


@pytest.fixture
def indexed(tmp_path: Path) -> dict[str, Any]:
    """An embedded catalog with one finished, indexed job."""
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
    job = catalog.jobs.create(
        catalog.jobs.plan(pipeline="count", metadata={"sample_id": "s-1"}, data={"k": 1})
    )[0]
    out = data_dir / "archive" / job.archive_path.lstrip("/") / "counts.csv"
    out.write_text("gene,count\na,1\n", encoding="utf-8")
    catalog.jobs.send(job.uuid, "run")
    catalog.jobs.send(job.uuid, "finish")
    report = catalog.indexing.index(job.uuid, fixity=True, transition=True)
    sample = catalog.store.get("sample", {"sample_id": "s-1"})
    assert sample is not None
    catalog.close()
    return {"data_dir": data_dir, "job": job, "file": report.files[0], "sample": sample["uuid"]}


def test_lineage_tree_and_json_upstream(indexed: dict[str, Any]) -> None:
    data_dir, file_uuid = indexed["data_dir"], indexed["file"]
    tree = _run(data_dir, "lineage", file_uuid, "--depth", "6")
    assert "counts.csv" in tree and "generated_by → job" in tree and "design-a" in tree
    plain = json.loads(_run(data_dir, "lineage", file_uuid, "--format", "json"))
    assert plain["root"] == file_uuid and plain["direction"] == "up"
    same = json.loads(_run(data_dir, "--json", "lineage", file_uuid))
    assert same == plain


def test_lineage_down_with_relation_filter_as_dot(indexed: dict[str, Any], tmp_path: Path) -> None:
    data_dir = indexed["data_dir"]
    target = tmp_path / "down.dot"
    _run(
        data_dir,
        "lineage",
        indexed["sample"],
        "--down",
        "--relation",
        "child_of",
        "--relation",
        "generated_by",
        "--format",
        "dot",
        "--output",
        str(target),
    )
    (parsed,) = pydot.graph_from_dot_data(target.read_text())
    names = {n.get_name().strip('"') for n in parsed.get_nodes()}
    assert {indexed["sample"], indexed["job"].uuid, indexed["file"]} <= names


def test_lineage_mermaid_both_and_svg_without_the_system_graphviz(
    indexed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = indexed["data_dir"]
    text = _run(data_dir, "lineage", indexed["job"].uuid, "--both", "--format", "mermaid")
    assert text.startswith("flowchart BT")
    monkeypatch.setenv("PATH", "")  # no `dot`: the WebAssembly Graphviz lays it out
    svg = _run(data_dir, "lineage", indexed["job"].uuid, "--format", "svg")
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    ids = {g.get("id") for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert {node_id(indexed["job"].uuid), node_id(indexed["sample"])} <= ids


def test_lineage_unknown_root_and_relation(indexed: dict[str, Any]) -> None:
    data_dir = indexed["data_dir"]
    assert "not indexed" in _run(data_dir, "lineage", "/nowhere/x.csv", code=3)
    _run(data_dir, "lineage", indexed["job"].uuid, "--relation", "made_by", code=2)


def test_export_formats(indexed: dict[str, Any], tmp_path: Path) -> None:
    data_dir, job = indexed["data_dir"], indexed["job"]
    prov = json.loads(_run(data_dir, "export", job.uuid))
    assert f"dc:{job.uuid}" in prov["activity"]
    lines = _run(data_dir, "export", job.uuid, "--format", "openlineage").splitlines()
    assert [json.loads(line)["eventType"] for line in lines] == ["START", "COMPLETE", "OTHER"]
    crate_dir = tmp_path / "crate"
    _run(data_dir, "export", job.uuid, "--format", "ro-crate", "-o", str(crate_dir), "--with-files")
    crate = ROCrate(str(crate_dir))
    assert crate.get(f"urn:uuid:{job.uuid}").type == "CreateAction"
    copied = list(crate_dir.glob("outputs/**/counts.csv"))
    assert len(copied) == 1 and copied[0].read_text() == "gene,count\na,1\n"


def test_export_refusals_write_nothing(indexed: dict[str, Any], tmp_path: Path) -> None:
    data_dir, job = indexed["data_dir"], indexed["job"]
    assert "needs --output" in _run(data_dir, "export", job.uuid, "--format", "ro-crate", code=2)
    assert "ro-crate only" in _run(data_dir, "export", job.uuid, "--with-files", code=2)
    assert "'://'" in _run(
        data_dir, "export", job.uuid, "--format", "openlineage", "--namespace", "a://b", code=2
    )
    assert list(tmp_path.glob("*crate*")) == []
