"""Provenance: the lineage graph both ways, its pictures, and standard exports.

The public names, all importable from ``datacatalog.provenance``:

Lineage graph (:mod:`.graph`)
    ``graph(store_or_catalog, ref, *, direction="up"|"down"|"both", depth=5,
    relations=None, include_deleted=False, max_nodes=1000) -> LineageGraph``;
    ``LineageGraph`` (``to_dict()`` gives the documented JSON shape), ``Node``,
    ``Edge``, ``RELATIONS``, ``DIRECTIONS``, ``MAX_DEPTH``, ``MAX_NODES``. (The
    name ``graph`` is the function; the module is ``datacatalog.provenance.graph``
    only through ``sys.modules``, so import its other names from this package.)

Pictures (:mod:`.pictures`), each taking an optional ``link=`` callable mapping a
``Node`` to a URL
    ``to_tree`` (a rich ``Tree``), ``to_text``, ``to_dot``, ``to_digraph``,
    ``to_svg`` (Graphviz: the system's ``dot`` or its WebAssembly build; ``lay_out``
    lays out any DOT text, ``layout_program()`` says which), ``to_mermaid``,
    ``render(graph, fmt)`` for any of ``PICTURE_FORMATS``; ``node_id(uuid)`` is the
    id each picture gives a node.

A file's upstream view (:mod:`.files`)
    ``lineage(store, file)`` -> ``Lineage``; ``find_file``, ``metadata_chain``.

Exports
    ``prov_document`` / ``prov_json`` (W3C PROV, :mod:`.provjson`);
    :mod:`.openlineage` (``lifecycle``, ``export``: run events as JSON Lines);
    :mod:`.rocrate` (``build``, ``export``: a Process Run Crate);
    :mod:`.emitter` (``OpenLineageEmitter``: live emission as events happen).

Why two jobs differ (:mod:`.diff`)
    ``diff_jobs`` -> ``JobDiff``.
"""

from datacatalog.provenance.diff import JobDiff, diff_jobs
from datacatalog.provenance.files import (
    MAX_UPSTREAM_DEPTH,
    Lineage,
    find_file,
    lineage,
    metadata_chain,
)
from datacatalog.provenance.graph import (
    DEFAULT_DEPTH,
    DEFAULT_MAX_NODES,
    DIRECTIONS,
    MAX_DEPTH,
    MAX_NODES,
    RELATIONS,
    Direction,
    Edge,
    LineageGraph,
    Node,
    graph,
)
from datacatalog.provenance.pictures import FORMATS as PICTURE_FORMATS
from datacatalog.provenance.pictures import (
    dot_available,
    lay_out,
    layout_program,
    node_id,
    render,
    to_digraph,
    to_dot,
    to_mermaid,
    to_svg,
    to_text,
    to_tree,
)
from datacatalog.provenance.provjson import NAMESPACE, prov_document, prov_json

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_MAX_NODES",
    "DIRECTIONS",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_UPSTREAM_DEPTH",
    "NAMESPACE",
    "PICTURE_FORMATS",
    "RELATIONS",
    "Direction",
    "Edge",
    "JobDiff",
    "Lineage",
    "LineageGraph",
    "Node",
    "diff_jobs",
    "dot_available",
    "find_file",
    "graph",
    "lay_out",
    "layout_program",
    "lineage",
    "metadata_chain",
    "node_id",
    "prov_document",
    "prov_json",
    "render",
    "to_digraph",
    "to_dot",
    "to_mermaid",
    "to_svg",
    "to_text",
    "to_tree",
]
