"""Lineage pictures on the job and file pages: the lineage graph drawn as inline SVG.

The graph (:func:`datacatalog.provenance.graph`, both directions from the page's entity)
is laid out by Graphviz (:func:`datacatalog.provenance.to_svg`: the system's ``dot`` or
the WebAssembly build that comes with the package) with each node linking
to its own dashboard page, and placed inline in the page so the links work. Graphviz
escapes the labels it writes (file names are user input); before the SVG is inlined it
is also parsed and refused if it holds anything that could run (``script``,
``foreignObject``, event attributes, ``javascript:`` links), so a picture can never
carry markup into the page. The Content-Security-Policy forbids inline script anyway.

When Graphviz fails the pages say so and keep their linked lists, which they show in
every case.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree

from markupsafe import Markup

from datacatalog import provenance
from datacatalog.errors import UnavailableError
from datacatalog.provenance import LineageGraph, Node
from datacatalog.store import Store

PICTURE_DEPTH = 3
PICTURE_MAX_NODES = 60
_PROLOG = re.compile(r"\A\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FORBIDDEN_TAGS = {"script", "foreignobject", "iframe", "object", "embed"}


@dataclass(frozen=True)
class Picture:
    """A lineage picture: inline SVG (None when it could not be drawn) and its graph."""

    graph: LineageGraph
    svg: Markup | None
    problem: str | None = None


def picture(store: Store, uuid: str, *, link: Callable[[str], str | None]) -> Picture:
    """The lineage picture around ``uuid``; ``link`` gives a UUID's page (or None)."""
    found = provenance.graph(
        store, uuid, direction="both", depth=PICTURE_DEPTH, max_nodes=PICTURE_MAX_NODES
    )

    def node_link(node: Node) -> str | None:
        return None if node.attrs.get("missing") else link(node.id)

    try:
        return Picture(found, inline_svg(provenance.to_svg(found, link=node_link)))
    except UnavailableError as exc:
        return Picture(found, None, exc.message)


def inline_svg(svg: str) -> Markup:
    """``svg`` ready to sit inside an HTML page: no prolog or comments, nothing active.

    Raises:
        UnavailableError: The text is not well-formed SVG, or holds active content.
    """
    body = _COMMENT.sub("", _PROLOG.sub("", svg, count=1)).strip()
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise UnavailableError(f"the lineage picture is not well-formed SVG: {exc}") from exc
    if _local(root.tag) != "svg":
        raise UnavailableError("the lineage picture is not an SVG document")
    for element in root.iter():
        if _local(element.tag).lower() in _FORBIDDEN_TAGS:
            raise UnavailableError(f"the lineage picture holds a {_local(element.tag)} element")
        for name, value in element.attrib.items():
            attribute = _local(name).lower()
            if attribute.startswith("on") or (
                attribute == "href" and value.strip().lower().startswith(("javascript:", "data:"))
            ):
                raise UnavailableError(f"the lineage picture holds an active {attribute} attribute")
    return Markup(body)  # checked above, and Graphviz escaped the labels


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]
