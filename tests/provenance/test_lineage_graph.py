"""The lineage graph both ways: golden graphs, cycles, the node cap, deleted entities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datacatalog import provenance
from datacatalog.errors import InvalidRequestError, NotFoundError
from datacatalog.identifiers import file_uuid
from datacatalog.store import Store
from tests.support.lineage_catalog import Built, add_file, build


@pytest.fixture
def built(store: Store, tmp_path: Path) -> Built:
    return build(store, tmp_path)


def _named(built: Built, result: provenance.LineageGraph) -> tuple[set[tuple[str, int]], set[str]]:
    """Nodes as (name, depth) and edges as "effect -relation-> cause", by short name."""
    nodes = {(built.name_of(n.id), n.depth) for n in result.nodes}
    edges = {
        f"{built.name_of(e.source)} -{e.relation}-> {built.name_of(e.target)}" for e in result.edges
    }
    return nodes, edges


UP_FROM_FINAL = {
    ("final", 0),
    ("job_b", 1),
    ("report", 2),
    ("measurement", 2),
    ("plot", 2),
    ("sample", 3),
    ("job_a", 3),
    ("raw", 3),
    ("experiment", 4),
    ("align", 4),
    ("design", 5),
}
UP_FROM_FINAL_EDGES = {
    "final -generated_by-> job_b",
    "job_b -generated_by-> report",
    "job_b -child_of-> measurement",
    "job_b -acted_on-> plot",
    "measurement -child_of-> sample",
    "plot -generated_by-> job_a",
    "plot -derived_from-> raw",
    "sample -child_of-> experiment",
    "job_a -generated_by-> align",
    "job_a -child_of-> measurement",
    "raw -generated_by-> job_a",
    "experiment -child_of-> design",
}


def test_upstream_to_depth_five_reaches_the_design(built: Built) -> None:
    result = provenance.graph(built.catalog, built.ids["final"], direction="up", depth=5)
    nodes, edges = _named(built, result)
    assert nodes == UP_FROM_FINAL
    assert edges == UP_FROM_FINAL_EDGES
    assert result.truncated is False and result.frontier == ()
    assert result.relations == provenance.RELATIONS


def test_upstream_at_depth_three_stops_there(built: Built) -> None:
    result = provenance.graph(built.catalog.store, built.ids["final"], depth=3)
    nodes, edges = _named(built, result)
    assert nodes == {item for item in UP_FROM_FINAL if item[1] <= 3}
    assert edges == {
        "final -generated_by-> job_b",
        "job_b -generated_by-> report",
        "job_b -child_of-> measurement",
        "job_b -acted_on-> plot",
        "measurement -child_of-> sample",
        "plot -generated_by-> job_a",
        "plot -derived_from-> raw",
    }


def test_upstream_without_child_of_leaves_the_metadata_out(built: Built) -> None:
    relations = [r for r in provenance.RELATIONS if r != "child_of"]
    result = provenance.graph(built.catalog, built.ids["final"], depth=5, relations=relations)
    nodes, edges = _named(built, result)
    assert nodes == {
        ("final", 0),
        ("job_b", 1),
        ("report", 2),
        ("plot", 2),
        ("job_a", 3),
        ("raw", 3),
        ("align", 4),
    }
    assert edges == {
        "final -generated_by-> job_b",
        "job_b -generated_by-> report",
        "job_b -acted_on-> plot",
        "plot -generated_by-> job_a",
        "plot -derived_from-> raw",
        "job_a -generated_by-> align",
        "raw -generated_by-> job_a",
    }
    assert "child_of" not in result.to_dict()["relations"]


def test_downstream_from_the_sample(built: Built) -> None:
    result = provenance.graph(built.catalog, built.ids["sample"], direction="down", depth=5)
    nodes, edges = _named(built, result)
    assert nodes == {
        ("sample", 0),
        ("measurement", 1),
        ("job_a", 2),
        ("job_b", 2),
        ("raw", 3),
        ("summary", 3),
        ("plot", 3),
        ("final", 3),
    }
    assert edges == {
        "measurement -child_of-> sample",
        "job_a -child_of-> measurement",
        "job_b -child_of-> measurement",
        "raw -generated_by-> job_a",
        "summary -generated_by-> job_a",
        "plot -generated_by-> job_a",
        "final -generated_by-> job_b",
        "plot -derived_from-> raw",
        "job_b -acted_on-> plot",
    }
    one = provenance.graph(built.catalog, built.ids["sample"], direction="down", depth=1)
    assert _named(built, one) == (
        {("sample", 0), ("measurement", 1)},
        {"measurement -child_of-> sample"},
    )


def test_downstream_from_a_file_without_child_of(built: Built) -> None:
    result = provenance.graph(
        built.catalog,
        built.ids["raw"],
        direction="down",
        depth=10,
        relations=["generated_by", "acted_on", "derived_from"],
    )
    assert _named(built, result) == (
        {("raw", 0), ("plot", 1), ("job_b", 2), ("final", 3)},
        {"plot -derived_from-> raw", "job_b -acted_on-> plot", "final -generated_by-> job_b"},
    )


def test_both_is_one_walk_each_way_not_an_undirected_walk(built: Built) -> None:
    result = provenance.graph(built.catalog, built.ids["plot"], direction="both", depth=1)
    # raw and summary are siblings through job A: an undirected walk would reach summary.
    assert _named(built, result) == (
        {("plot", 0), ("job_a", 1), ("raw", 1), ("job_b", 1)},
        {"plot -generated_by-> job_a", "plot -derived_from-> raw", "job_b -acted_on-> plot"},
    )
    assert result.direction == "both"
    deep = provenance.graph(built.catalog, built.ids["plot"], direction="both", depth=2)
    assert ("summary", 2) not in _named(built, deep)[0]


def test_to_dict_has_the_documented_shape(built: Built) -> None:
    result = provenance.graph(built.catalog, built.ids["plot"], direction="up", depth=1)
    plain = json.loads(json.dumps(result.to_dict()))
    assert set(plain) == {
        "root",
        "direction",
        "depth",
        "relations",
        "truncated",
        "frontier",
        "nodes",
        "edges",
    }
    assert plain["root"] == built.ids["plot"]
    assert (plain["direction"], plain["depth"], plain["truncated"]) == ("up", 1, False)
    root = plain["nodes"][0]
    assert root == {
        "id": built.ids["plot"],
        "kind": "file",
        "label": "plot.png",
        "depth": 0,
        "attrs": {
            "name": f"{built.job_a.archive_path}/plot.png",
            "storage_system": built.job_a.archive_system,
            "level": "1",
            "type": "PNG",
            "size": 4,
            "sha256": root["attrs"]["sha256"],
        },
    }
    kinds = {n["kind"] for n in plain["nodes"]}
    assert kinds == {"file", "job"}
    assert all(set(e) == {"source", "target", "relation"} for e in plain["edges"])


def test_a_file_is_found_by_its_catalog_path(built: Built) -> None:
    path = f"{built.job_a.archive_path}/raw.csv"
    assert provenance.graph(built.catalog, path, depth=1).root == built.ids["raw"]


def test_a_cycle_in_bad_data_ends_the_walk(built: Built, store: Store) -> None:
    x_path = f"{built.job_a.archive_path}/x.csv"
    y = add_file(store, built.job_a, "y.csv", derived_from=(file_uuid(x_path),))
    x = add_file(store, built.job_a, "x.csv", derived_from=(y,))
    for direction in ("up", "down", "both"):
        result = provenance.graph(
            store, x, direction=direction, depth=50, relations=["derived_from"]
        )
        assert {n.id for n in result.nodes} == {x, y}
        assert {(e.source, e.target) for e in result.edges} == {(x, y), (y, x)}
        assert {n.id: n.depth for n in result.nodes} == {x: 0, y: 1}


def test_the_node_cap_truncates_and_lists_the_frontier(built: Built) -> None:
    result = provenance.graph(built.catalog, built.ids["final"], depth=5, max_nodes=3)
    assert len(result.nodes) == 3
    assert result.truncated is True
    level_two = {built.ids[n] for n in ("report", "measurement", "plot")}
    kept = {n.id for n in result.nodes} - {built.ids["final"], built.ids["job_b"]}
    assert kept < level_two
    assert set(result.frontier) == level_two - kept
    assert sorted(result.frontier) == list(result.frontier)
    assert all(e.source in {n.id for n in result.nodes} for e in result.edges)

    down = provenance.graph(built.catalog, built.ids["job_a"], direction="down", max_nodes=2)
    assert down.truncated and len(down.nodes) == 2 and len(down.frontier) == 2


def test_deleted_entities_are_left_out_unless_asked(built: Built) -> None:
    jobs = built.catalog.jobs
    jobs.delete(built.ids["job_a"], token=jobs.admin_token())

    up = provenance.graph(built.catalog, built.ids["plot"], depth=2)
    assert {built.name_of(n.id) for n in up.nodes} == {"plot", "raw"}
    down = provenance.graph(built.catalog, built.ids["measurement"], direction="down", depth=1)
    assert {built.name_of(n.id) for n in down.nodes} == {"measurement", "job_b"}

    shown = provenance.graph(built.catalog, built.ids["plot"], depth=1, include_deleted=True)
    assert shown.node(built.ids["job_a"]).attrs["deleted"] is True
    down_all = provenance.graph(
        built.catalog, built.ids["measurement"], direction="down", depth=1, include_deleted=True
    )
    assert {built.name_of(n.id) for n in down_all.nodes} == {"measurement", "job_a", "job_b"}

    with pytest.raises(NotFoundError, match="deleted"):
        provenance.graph(built.catalog, built.ids["job_a"])
    assert provenance.graph(built.catalog, built.ids["job_a"], include_deleted=True).nodes


def test_a_link_to_an_uncatalogued_input_is_a_missing_node(built: Built) -> None:
    jobs = built.catalog.jobs
    job = jobs.create(
        jobs.plan(
            pipeline="align",
            metadata={"measurement_id": "meas-1"},
            data={"k": 2},
            inputs=["/uploads/never-indexed.fastq"],
        )
    )[0]
    result = provenance.graph(built.catalog, job.uuid, depth=1, relations=["acted_on"])
    missing = result.node(file_uuid("/uploads/never-indexed.fastq"))
    assert (missing.kind, missing.attrs) == ("file", {"missing": True})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"direction": "sideways"}, "direction 'sideways'"),
        ({"depth": -1}, "depth must be"),
        ({"depth": 1.5}, "depth must be"),
        ({"depth": True}, "depth must be"),
        ({"max_nodes": 0}, "max_nodes must be"),
        ({"relations": ["made_by"]}, "unknown relation"),
        ({"relations": []}, "relations is empty"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    built: Built, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        provenance.graph(built.catalog, built.ids["final"], **kwargs)  # type: ignore[arg-type]


def test_unknown_and_unsupported_roots(built: Built) -> None:
    from datacatalog.identifiers import typed_uuid

    with pytest.raises(NotFoundError, match="no job"):
        provenance.graph(built.catalog, typed_uuid("nothing", "pipelinejob"))
    with pytest.raises(InvalidRequestError, match="is a upload UUID"):
        provenance.graph(built.catalog, typed_uuid("nothing", "upload"))
    with pytest.raises(NotFoundError):
        provenance.graph(built.catalog, "/nowhere/x.csv")
    with pytest.raises(InvalidRequestError, match="neither a typed UUID"):
        provenance.graph(built.catalog, "sample-1")
    with pytest.raises(InvalidRequestError, match="Store or a Catalog"):
        provenance.graph(object(), built.ids["final"])
