"""The lineage graph: every catalogued entity, its causes (upstream) and effects (downstream).

Nodes are catalogued entities (designs, experiments, samples, measurements, pipelines,
jobs, files, references). Edges are the stored link fields, drawn in the stored
direction, effect → cause:

=================  ====================================================
relation           from → to
=================  ====================================================
``child_of``       job → measurement / sample / experiment; metadata → parent
``generated_by``   job → pipeline; file → job
``acted_on``       job → input file
``acted_using``    job → reference
``derived_from``   file → file / reference
``derived_using``  file → reference / file
=================  ====================================================

*Upstream* follows edges forward, *downstream* backward (a reverse lookup on the
indexed, multikey link fields), *both* is the union of one walk each way (never an
undirected walk, which would pick up unrelated siblings).

The walk is breadth-first with a visited set, so cycles in bad data end it. Each
depth level costs at most one query per collection that can hold a link to the
frontier (``$in`` on the whole frontier), never one per node: the round trips are
bounded by the depth, whatever the catalog's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from datacatalog.errors import InvalidRequestError, NotFoundError
from datacatalog.identifiers import kind_of
from datacatalog.indexing import file_document
from datacatalog.store import Document, Store

Direction = Literal["up", "down", "both"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down", "both")

RELATIONS: tuple[str, ...] = (
    "generated_by",
    "acted_on",
    "acted_using",
    "derived_from",
    "derived_using",
    "child_of",
)

DEFAULT_DEPTH = 5
MAX_DEPTH = 100
DEFAULT_MAX_NODES = 1000
MAX_NODES = 100_000

METADATA_KINDS = ("experiment_design", "experiment", "sample", "measurement")

# A typed UUID's kind → the store kind holding it (jobs are "pipelinejob" UUIDs).
_STORE_KIND = {
    "pipelinejob": "job",
    "file": "file",
    "reference": "reference",
    "pipeline": "pipeline",
    **{k: k for k in METADATA_KINDS},
}

# (store kind holding the field, relation) → the store kinds the field may point at.
_LINKS: dict[tuple[str, str], frozenset[str]] = {
    ("job", "child_of"): frozenset(METADATA_KINDS),
    **{(k, "child_of"): frozenset(METADATA_KINDS) for k in METADATA_KINDS},
    ("job", "generated_by"): frozenset({"pipeline"}),
    ("file", "generated_by"): frozenset({"job"}),
    ("job", "acted_on"): frozenset({"file"}),
    ("job", "acted_using"): frozenset({"reference"}),
    ("file", "derived_from"): frozenset({"file", "reference"}),
    ("file", "derived_using"): frozenset({"file", "reference"}),
}

# Jobs carry their whole event history; the graph never needs it.
_PROJECTION: dict[str, Any] = {"history": 0}


@dataclass(frozen=True)
class Node:
    """One entity of the graph.

    Attributes:
        id: The entity's UUID.
        kind: Its store kind (``job``, ``file``, ``pipeline``, ``sample``, ...).
        label: A short human label (a file's base name, a pipeline's id, ...).
        depth: Edges from the root (0 for the root).
        attrs: A few identifying fields; ``missing: true`` for a link to an entity
            that is not catalogued, ``deleted: true`` for a soft-deleted one.
    """

    id: str
    kind: str
    label: str
    depth: int
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "depth": self.depth,
            "attrs": dict(self.attrs),
        }


@dataclass(frozen=True)
class Edge:
    """One stored link, effect (``source``) → cause (``target``)."""

    source: str
    target: str
    relation: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {"source": self.source, "target": self.target, "relation": self.relation}


@dataclass(frozen=True)
class LineageGraph:
    """The result of :func:`graph`.

    Attributes:
        root: The UUID the walk started from.
        direction: ``up``, ``down`` or ``both``.
        depth: The depth bound, in edges.
        relations: The relations followed.
        truncated: True when ``max_nodes`` cut the walk short.
        frontier: UUIDs the walk reached but left out because of ``max_nodes``.
        nodes: Sorted by depth, kind, label and id.
        edges: Sorted by source, target and relation.
        round_trips: Database queries the walk made (not part of :meth:`to_dict`).
    """

    root: str
    direction: Direction
    depth: int
    relations: tuple[str, ...]
    truncated: bool
    frontier: tuple[str, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    round_trips: int = 0

    def node(self, uuid: str) -> Node:
        """The node of ``uuid``; a NotFoundError when it is not in the graph."""
        for item in self.nodes:
            if item.id == uuid:
                return item
        raise NotFoundError(f"{uuid} is not in the lineage graph of {self.root}", uuid=uuid)

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape (flat node and edge lists)."""
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "relations": list(self.relations),
            "truncated": self.truncated,
            "frontier": list(self.frontier),
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }


def graph(
    store_or_catalog: Any,
    ref: str,
    *,
    direction: str = "up",
    depth: int = DEFAULT_DEPTH,
    relations: Iterable[str] | None = None,
    include_deleted: bool = False,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> LineageGraph:
    """Walk the lineage graph from one entity.

    Args:
        store_or_catalog: A :class:`~datacatalog.store.Store`, or anything with a
            ``store`` attribute holding one (a :class:`~datacatalog.catalog.Catalog`).
        ref: A typed UUID of a catalogued entity, or a file's catalog path or URI.
        direction: ``up`` (causes), ``down`` (effects) or ``both``.
        depth: How many edges to follow, 0 to :data:`MAX_DEPTH`.
        relations: The relations to follow (default: all of :data:`RELATIONS`).
        include_deleted: Keep soft-deleted entities (left out by default).
        max_nodes: The most nodes to return, root included.

    Returns:
        The graph; ``truncated`` and ``frontier`` say what ``max_nodes`` cut off.

    Raises:
        InvalidRequestError: A bad direction, depth, relation or cap, or a ``ref``
            that names no kind of catalogued entity.
        NotFoundError: ``ref`` is not catalogued (or is soft-deleted and
            ``include_deleted`` is false).
    """
    store = _store_of(store_or_catalog)
    chosen_direction = _direction(direction)
    chosen_depth = _bounded("depth", depth, 0, MAX_DEPTH)
    cap = _bounded("max_nodes", max_nodes, 1, MAX_NODES)
    chosen = _relations(relations)
    walk = _Walk(store, chosen, include_deleted=include_deleted, cap=cap)
    root = walk.start(ref)
    if chosen_direction in ("up", "both"):
        walk.run([root], chosen_depth, upstream=True)
    if chosen_direction in ("down", "both"):
        walk.run([root], chosen_depth, upstream=False)
    return walk.result(root, chosen_direction, chosen_depth)


def _store_of(value: Any) -> Store:
    if isinstance(value, Store):
        return value
    inner = getattr(value, "store", None)
    if isinstance(inner, Store):
        return inner
    raise InvalidRequestError(
        f"lineage needs a Store or a Catalog, not {type(value).__name__}",
        type=type(value).__name__,
    )


def _direction(value: object) -> Direction:
    if value not in DIRECTIONS:
        raise InvalidRequestError(
            f"direction {value!r} is not one of {', '.join(DIRECTIONS)}",
            value=str(value),
            allowed=list(DIRECTIONS),
        )
    return value


def _bounded(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequestError(
            f"{name} must be a whole number from {low} to {high}, not {value!r}",
            field=name,
            value=str(value),
        )
    return value


def _relations(values: Iterable[str] | None) -> tuple[str, ...]:
    if values is None:
        return RELATIONS
    if isinstance(values, str):
        values = [values]
    given = list(values)
    unknown = sorted({str(v) for v in given} - set(RELATIONS))
    if unknown:
        raise InvalidRequestError(
            f"unknown relation(s) {', '.join(unknown)}; choose from {', '.join(RELATIONS)}",
            unknown=unknown,
            allowed=list(RELATIONS),
        )
    if not given:
        raise InvalidRequestError("relations is empty: name at least one relation to follow")
    # Keep the documented order, whatever order they were given in.
    return tuple(r for r in RELATIONS if r in given)


class _Walk:
    """The state of one graph walk: nodes found, edges, what the cap cut off."""

    def __init__(
        self, store: Store, relations: Sequence[str], *, include_deleted: bool, cap: int
    ) -> None:
        self.store = store
        self.relations = tuple(relations)
        self.include_deleted = include_deleted
        self.cap = cap
        self.nodes: dict[str, Node] = {}
        self.docs: dict[str, Document] = {}
        self.edges: set[Edge] = set()
        self.cut: set[str] = set()
        self.round_trips = 0

    # -- the root ---------------------------------------------------------------------------

    def start(self, ref: str) -> str:
        if not isinstance(ref, str) or not ref:
            raise InvalidRequestError(
                f"a lineage root must be a UUID or a file path, not {ref!r}", value=str(ref)
            )
        kind = kind_of(ref)
        if kind is None and not ref.startswith("/") and "://" not in ref:
            raise InvalidRequestError(
                f"lineage root {ref!r} is neither a typed UUID nor a file's absolute "
                "catalog path or URI",
                value=ref,
            )
        if kind is None:
            # Not a typed UUID: a file's catalog path or URI.
            doc = file_document(self.store, ref)
            self.round_trips += 1
            store_kind = "file"
        else:
            store_kind = _STORE_KIND.get(kind, "")
            if not store_kind:
                raise InvalidRequestError(
                    f"{ref} is a {kind} UUID; the lineage graph holds "
                    f"{', '.join(sorted(set(_STORE_KIND.values())))}",
                    value=ref,
                    kind=kind,
                )
            found = self._fetch(store_kind, [ref])
            if not found:
                raise NotFoundError(f"no {store_kind} {ref} in the catalog", uuid=ref)
            doc = found[0]
        if _hidden(doc) and not self.include_deleted:
            raise NotFoundError(
                f"{store_kind} {doc['uuid']} is deleted; ask with include_deleted to see it",
                uuid=doc["uuid"],
            )
        self._add(store_kind, doc, 0)
        return str(doc["uuid"])

    # -- one walk ---------------------------------------------------------------------------

    def run(self, start: list[str], depth: int, *, upstream: bool) -> None:
        frontier = list(start)
        seen = set(start)
        for level in range(1, depth + 1):
            if not frontier:
                return
            found = self._causes(frontier) if upstream else self._effects(frontier)
            fresh: list[tuple[str, Document]] = []
            for store_kind, doc in found:
                if doc["uuid"] not in seen:
                    seen.add(doc["uuid"])
                    fresh.append((store_kind, doc))
            next_frontier: list[str] = []
            for store_kind, doc in sorted(fresh, key=lambda item: str(item[1]["uuid"])):
                uuid = str(doc["uuid"])
                if uuid in self.nodes:
                    # Reached already by the other direction's walk, nearer the root.
                    next_frontier.append(uuid)
                elif len(self.nodes) < self.cap:
                    self._add(store_kind, doc, level)
                    next_frontier.append(uuid)
                else:
                    self.cut.add(uuid)
            frontier = next_frontier
            if self.cut:
                return

    def _causes(self, frontier: list[str]) -> list[tuple[str, Document]]:
        """What the frontier's link fields point at: one query per target kind."""
        links = self._links_out(frontier)
        wanted: dict[str, set[str]] = {}
        for _source, target, _relation, target_kind in links:
            wanted.setdefault(target_kind, set()).add(target)
        found: dict[str, tuple[str, Document]] = {}
        for store_kind in sorted(wanted):
            values = sorted(wanted[store_kind])
            docs = {d["uuid"]: d for d in self._fetch(store_kind, values)}
            for value in values:
                # A link to something never catalogued (an input file that was not
                # indexed) is kept as a "missing" node: the link itself is provenance.
                doc = docs.get(value, {"uuid": value, "_missing": True})
                if _hidden(doc) and not self.include_deleted:
                    continue
                found[value] = (store_kind, doc)
        for source, target, relation, _kind in links:
            if target in found or target in self.nodes:
                self.edges.add(Edge(source, target, relation))
        return list(found.values())

    def _links_out(self, frontier: list[str]) -> list[tuple[str, str, str, str]]:
        """``(source, target, relation, target's store kind)`` of every link the
        frontier's link fields hold to a kind that relation may point at."""
        links: list[tuple[str, str, str, str]] = []
        for uuid in frontier:
            kind, doc = self.nodes[uuid].kind, self.docs[uuid]
            for relation in self.relations:
                allowed = _LINKS.get((kind, relation))
                if allowed is None:
                    continue
                for target in _strings(doc.get(relation)):
                    target_kind = _STORE_KIND.get(kind_of(target) or "")
                    if target_kind is not None and target_kind in allowed:
                        links.append((uuid, target, relation, target_kind))
        return links

    def _effects(self, frontier: list[str]) -> list[tuple[str, Document]]:
        """What links to the frontier: one query per collection that may hold such links."""
        frontier_kinds = {self.nodes[u].kind for u in frontier}
        by_kind: dict[str, list[str]] = {}
        for (holder, relation), targets in _LINKS.items():
            if relation in self.relations and targets & frontier_kinds:
                by_kind.setdefault(holder, []).append(relation)
        members = set(frontier)
        values = sorted(frontier)
        found: list[tuple[str, Document]] = []
        for holder in sorted(by_kind):
            fields = by_kind[holder]
            query: dict[str, Any] = {"$or": [{f: {"$in": values}} for f in fields]}
            if not self.include_deleted:
                query["_visible"] = {"$ne": False}
            # What comes back is either a node already (at most all of them) or new; one
            # more than the cap is enough to fill the graph and to know it was cut off.
            # (Past the cap, which of the many matches come back is the server's choice.)
            docs = self._query(holder, query, limit=self.cap + 1)
            for doc in docs:
                for relation in fields:
                    for target in _strings(doc.get(relation)):
                        if target in members:
                            self.edges.add(Edge(str(doc["uuid"]), target, relation))
                found.append((holder, doc))
        return found

    # -- queries ----------------------------------------------------------------------------

    def _fetch(self, store_kind: str, uuids: list[str]) -> list[Document]:
        """The documents of ``uuids``, soft-deleted ones too (the caller decides)."""
        return self._query(store_kind, {"uuid": {"$in": uuids}}, limit=0)

    def _query(self, store_kind: str, query: Mapping[str, Any], *, limit: int) -> list[Document]:
        self.round_trips += 1
        # No server-side sort: sorting on ``uuid`` would tempt the planner to walk the
        # whole uuid index instead of the link fields' indexes. Results are sorted here.
        found = self.store.find(
            store_kind,
            query,
            limit=limit,
            projection=_PROJECTION if store_kind == "job" else None,
        )
        return sorted(found, key=lambda d: str(d["uuid"]))

    # -- results ----------------------------------------------------------------------------

    def _add(self, store_kind: str, doc: Document, depth: int) -> None:
        uuid = str(doc["uuid"])
        self.docs[uuid] = doc
        self.nodes[uuid] = Node(
            id=uuid,
            kind=store_kind,
            label=_label(store_kind, doc),
            depth=depth,
            attrs=_attrs(store_kind, doc),
        )

    def result(self, root: str, direction: Direction, depth: int) -> LineageGraph:
        nodes = sorted(self.nodes.values(), key=lambda n: (n.depth, n.kind, n.label, n.id))
        edges = sorted(
            (e for e in self.edges if e.source in self.nodes and e.target in self.nodes),
            key=lambda e: (e.source, e.target, e.relation),
        )
        frontier = sorted(self.cut - set(self.nodes))
        return LineageGraph(
            root=root,
            direction=direction,
            depth=depth,
            relations=self.relations,
            truncated=bool(frontier),
            frontier=tuple(frontier),
            nodes=tuple(nodes),
            edges=tuple(edges),
            round_trips=self.round_trips,
        )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _hidden(doc: Mapping[str, Any]) -> bool:
    return doc.get("_visible") is False


def _label(store_kind: str, doc: Mapping[str, Any]) -> str:
    if doc.get("_missing"):
        return str(doc["uuid"])
    if store_kind == "file":
        name = str(doc.get("name", doc["uuid"]))
        return name.rstrip("/").rsplit("/", 1)[-1] or name
    if store_kind == "pipeline":
        return str(doc.get("id") or doc.get("name") or doc["uuid"])
    if store_kind == "job":
        return f"{str(doc['uuid'])[:13]} ({doc.get('state', '?')})"
    if store_kind == "reference":
        return str(doc.get("name") or doc.get("uri") or doc["uuid"])
    return str(doc.get(f"{store_kind}_id") or doc["uuid"])


_ATTR_FIELDS = {
    "file": ("name", "storage_system", "level", "type", "size", "sha256"),
    "job": ("state", "pipeline_uuid", "archive_system", "archive_path"),
    "pipeline": ("id", "name"),
    "reference": ("name", "uri"),
    **{k: (f"{k}_id", "title") for k in METADATA_KINDS},
}


def _attrs(store_kind: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    if doc.get("_missing"):
        return {"missing": True}
    attrs = {
        name: doc[name] for name in _ATTR_FIELDS.get(store_kind, ()) if doc.get(name) is not None
    }
    if _hidden(doc):
        attrs["deleted"] = True
    return attrs
