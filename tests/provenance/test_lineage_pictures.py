"""Pictures of the lineage graph, checked by structure: DOT parsed back, Mermaid ids and
classes, SVG when Graphviz ``dot`` is installed and a clear refusal when it is not."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pydot
import pytest

from datacatalog import provenance
from datacatalog.errors import InvalidRequestError, UnavailableError
from datacatalog.provenance.graph import Edge, LineageGraph, Node
from datacatalog.store import Store
from tests.support.lineage_catalog import Built, build


@pytest.fixture
def built(store: Store, tmp_path: Path) -> Built:
    return build(store, tmp_path)


@pytest.fixture
def upstream(built: Built) -> LineageGraph:
    return provenance.graph(built.catalog, built.ids["final"], direction="up", depth=5)


def _link(node: Node) -> str:
    return f"/ui/{node.kind}/{node.id}"


def test_dot_parses_back_with_prov_colours_shapes_and_links(upstream: LineageGraph) -> None:
    (parsed,) = pydot.graph_from_dot_data(provenance.to_dot(upstream, link=_link))
    nodes = {
        n.get_name().strip('"'): n
        for n in parsed.get_nodes()
        if n.get_name() not in ("node", "edge", "graph")
    }
    assert set(nodes) == {n.id for n in upstream.nodes}
    for node in upstream.nodes:
        drawn = nodes[node.id]
        expected = {"job": ("box", "#9FB1FC"), "pipeline": ("house", "#FED37F")}
        shape, fill = expected.get(node.kind, ("ellipse", "#FFFC87"))
        assert drawn.get("shape") == shape
        assert drawn.get("fillcolor").strip('"') == fill
        assert drawn.get("URL").strip('"') == f"/ui/{node.kind}/{node.id}"
        assert drawn.get("id").strip('"') == provenance.node_id(node.id)
    edges = {
        (e.get_source().strip('"'), e.get_destination().strip('"'), e.get("label").strip('"'))
        for e in parsed.get_edges()
    }
    assert edges == {(e.source, e.target, e.relation) for e in upstream.edges}


def test_mermaid_has_generated_ids_quoted_labels_and_classes(upstream: LineageGraph) -> None:
    text = provenance.to_mermaid(upstream, link=_link)
    lines = text.splitlines()
    assert lines[0] == "flowchart BT"
    defs = {line.split()[1]: line for line in lines if line.strip().startswith("classDef")}
    assert set(defs) == {"entity", "activity", "agent"}
    assert "fill:#9FB1FC" in defs["activity"] and "stroke:#0000FF" in defs["activity"]
    declared = dict(re.findall(r'^\s+(n[0-9a-f]{32})\W+"([^"]*)"', text, flags=re.M))
    assert set(declared) == {provenance.node_id(n.id) for n in upstream.nodes}
    assert "report.html" in declared.values()
    arrows = re.findall(r"^\s+(n[0-9a-f]{32}) -->\|(\w+)\| (n[0-9a-f]{32})$", text, flags=re.M)
    assert len(arrows) == len(upstream.edges)
    classes = {
        name: set(members.split(","))
        for members, name in re.findall(r"^\s+class (\S+) (\w+)$", text, flags=re.M)
    }
    jobs = {provenance.node_id(n.id) for n in upstream.nodes if n.kind == "job"}
    assert classes["activity"] == jobs
    assert len(re.findall(r'^\s+click n[0-9a-f]{32} href "/ui/', text, flags=re.M)) == len(
        upstream.nodes
    )


def _tiny(label: str, edges: int = 0) -> LineageGraph:
    root = "10500000-0000-5000-8000-000000000000"
    nodes = (Node(root, "file", label, 0),)
    links = tuple(Edge(root, root, f"r{i}") for i in range(edges))
    return LineageGraph(root, "up", 1, ("derived_from",), False, (), nodes, links)


def test_mermaid_escapes_quotes_and_refuses_oversized_graphs() -> None:
    text = provenance.to_mermaid(_tiny('a "quoted" <name> & end'))
    assert '"a #quot;quoted#quot; #lt;name#gt; #amp; end"' in text
    with pytest.raises(InvalidRequestError, match="at most 500"):
        provenance.to_mermaid(_tiny("x", edges=501))
    with pytest.raises(InvalidRequestError, match="characters"):
        provenance.to_mermaid(_tiny("x" * 60_000))


def test_text_tree_lists_both_directions(built: Built) -> None:
    result = provenance.graph(built.catalog, built.ids["plot"], direction="both", depth=2)
    text = provenance.to_text(result)
    assert text.splitlines()[0].startswith("file plot.png")
    assert "upstream" in text and "downstream" in text
    assert "generated_by → job" in text
    assert "acted_on ← job" in text
    assert "report.html" in text


def test_render_refuses_an_unknown_format(upstream: LineageGraph) -> None:
    with pytest.raises(InvalidRequestError, match="picture format 'png'"):
        provenance.render(upstream, "png")


@pytest.fixture(params=["wasm", "dot"])
def layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each SVG test runs on the WebAssembly Graphviz (``dot`` taken off ``PATH``) and on
    the system's ``dot`` where it is installed."""
    if request.param == "wasm":
        monkeypatch.setenv("PATH", "")
    elif not provenance.dot_available():
        pytest.skip("the system's Graphviz dot is not installed (the wasm case covers SVG)")
    assert provenance.layout_program() == request.param
    return str(request.param)


def test_svg_needs_no_system_graphviz(upstream: LineageGraph, layout: str) -> None:
    svg = provenance.render(upstream, "svg")
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {n.label for n in upstream.nodes} <= texts


def test_a_graphviz_failure_is_unavailable_naming_what(layout: str) -> None:
    with pytest.raises(UnavailableError, match="could not draw the sketch"):
        provenance.lay_out("digraph { a -> ", what="the sketch")


def test_svg_has_a_linked_group_per_node(upstream: LineageGraph, layout: str) -> None:
    svg = provenance.to_svg(upstream, link=_link)
    root = ElementTree.fromstring(svg)
    ns = {"svg": "http://www.w3.org/2000/svg", "xlink": "http://www.w3.org/1999/xlink"}
    ids = {g.get("id") for g in root.iterfind(".//svg:g", ns)}
    assert {provenance.node_id(n.id) for n in upstream.nodes} <= ids
    hrefs = {a.get(f"{{{ns['xlink']}}}href") for a in root.iterfind(".//svg:a", ns)}
    assert {_link(n) for n in upstream.nodes} <= hrefs
    # A query string survives as XML (dot copies URLs as they are).
    amp = provenance.to_svg(upstream, link=lambda n: f"/x?id={n.id}&f=svg")
    hrefs = {
        a.get(f"{{{ns['xlink']}}}href")
        for a in ElementTree.fromstring(amp).iterfind(".//svg:a", ns)
    }
    assert f"/x?id={upstream.root}&f=svg" in hrefs
