"""The metadata registry: experiment designs, experiments, samples, measurements.

Metadata forms a chain linked upward by ``child_of``::

    experiment_design  <-  experiment  <-  sample  <-  measurement

Each entity has a canonical id (``experiment_id``, ``sample_id``, ...) and a
typed UUID derived from it (``typed_uuid(canonical id, kind)``). A document to
load names its own id and, optionally, its parent's id (a sample may carry
``experiment_id``) or a ``child_of`` list of parent ids or UUIDs; any other
fields are kept as free-form metadata.

:meth:`MetadataRegistry.resolve` turns the metadata arguments of a job
(``experiment_id=...``, ``sample_id=...``, ...) into the UUIDs the job is a
``child_of``: exactly one kind, every id checked to exist, never dropped. Entities are
never removed and never change their id or UUID, so a registry remembers what it has
resolved and answers a resolution of known ids and UUIDs without a round trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datacatalog import schemas
from datacatalog.clock import utc_now
from datacatalog.errors import ConflictError, InvalidRequestError, NotFoundError
from datacatalog.freeform import check_json
from datacatalog.identifiers import is_uuid, kind_of, typed_uuid
from datacatalog.store import BulkResult, Document, Store, Upsert

# Kinds from the top of the chain down, with their id field and their parent kind.
LEVELS: tuple[str, ...] = ("experiment_design", "experiment", "sample", "measurement")
ID_FIELDS: dict[str, str] = {kind: f"{kind}_id" for kind in LEVELS}
PARENTS: dict[str, str | None] = {
    "experiment_design": None,
    "experiment": "experiment_design",
    "sample": "experiment",
    "measurement": "sample",
}
ARGUMENTS: dict[str, str] = {ID_FIELDS[kind]: kind for kind in LEVELS}
MAX_METADATA_BYTES = 64 * 1024


@dataclass(frozen=True)
class MetadataEntity:
    """One stored metadata entity."""

    kind: str
    uuid: str
    id: str
    child_of: list[str]
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_document(cls, kind: str, doc: Mapping[str, Any]) -> MetadataEntity:
        """Build from a stored document."""
        skip = {"uuid", ID_FIELDS[kind], "child_of", "_properties", "_visible"}
        return cls(
            kind=kind,
            uuid=doc["uuid"],
            id=doc[ID_FIELDS[kind]],
            child_of=list(doc.get("child_of", [])),
            fields={k: v for k, v in doc.items() if k not in skip},
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind,
            "uuid": self.uuid,
            ID_FIELDS[self.kind]: self.id,
            "child_of": self.child_of,
            **self.fields,
        }


@dataclass(frozen=True)
class LoadResult:
    """What a bulk load did."""

    created: int
    updated: int
    entities: list[MetadataEntity]
    unchanged: int = 0


class MetadataRegistry:
    """Load and resolve metadata entities."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Per kind, every canonical id and UUID resolved so far -> the entity's UUID.
        self._resolved: dict[str, dict[str, str]] = {kind: {} for kind in LEVELS}

    # -- loading ----------------------------------------------------------------------------

    def load(self, documents: Sequence[Any]) -> LoadResult:
        """Load (insert or update) metadata documents, parents before children.

        Every document is checked first; if any is wrong, nothing is written.
        """
        if not isinstance(documents, (list, tuple)):
            raise InvalidRequestError("metadata must be a list of documents")
        prepared = [self._prepare(doc, i) for i, doc in enumerate(documents)]
        batch = {doc["uuid"] for _, doc in prepared}
        self._check_parents(prepared, batch)
        created = updated = unchanged = 0
        for kind in LEVELS:
            wanted = {doc["uuid"]: doc for k_, doc in prepared if k_ == kind}
            if not wanted:
                continue
            found = self.store.find(kind, {"uuid": {"$in": sorted(wanted)}})
            stored = {d["uuid"]: d for d in found}
            # A document loaded again as it is changes nothing (not even its revision).
            changed = [doc for uuid, doc in wanted.items() if _fields(stored.get(uuid)) != doc]
            unchanged += len(wanted) - len(changed)
            if changed:
                result = self._replace(kind, changed, stored)
                created += result.upserted
                updated += result.modified
        entities = [MetadataEntity.from_document(kind, doc) for kind, doc in prepared]
        return LoadResult(created=created, updated=updated, unchanged=unchanged, entities=entities)

    def _replace(
        self, kind: str, documents: Sequence[Document], stored: Mapping[str, Document]
    ) -> BulkResult:
        """Make each stored entity equal its document, in one bulk write.

        Each replacement is conditional on the revision read (a new entity on its
        absence): an entity another load changed in between is not overwritten
        half-and-half but refused with a :class:`ConflictError`.
        """
        operations = []
        for doc in documents:
            before = stored.get(doc["uuid"])
            query: Document = {"uuid": doc["uuid"]}
            if before is not None:
                query["_properties.revision"] = before["_properties"]["revision"]
            operations.append(Upsert(query, _replacement(doc, _fields(before))))
        try:
            return self.store.bulk_upsert(kind, operations)
        except ConflictError as exc:
            raise ConflictError(
                f"{exc.details.get('failed', 'some')} {kind} document(s) were changed by "
                "another load while this one ran and were left as that load made them; "
                "the rest were loaded; load again to apply this list",
                kind=kind,
            ) from exc

    def _prepare(self, raw: Mapping[str, Any], index: int) -> tuple[str, Document]:
        where = f"metadata document {index}"
        if not isinstance(raw, Mapping):
            raise InvalidRequestError(f"{where} must be a JSON object")
        doc = dict(raw)
        kind = doc.pop("kind", None)
        if kind is None:
            kind = next((k for k in reversed(LEVELS) if ID_FIELDS[k] in doc), None)
        if kind not in LEVELS:
            raise InvalidRequestError(
                f"{where} has no kind: give 'kind' ({', '.join(LEVELS)}) or one of "
                f"{', '.join(ID_FIELDS.values())}"
            )
        id_field = ID_FIELDS[kind]
        ident = doc.get(id_field)
        if not isinstance(ident, str) or not ident.strip():
            raise InvalidRequestError(f"{where} ({kind}) needs a non-empty '{id_field}'")
        where = f"{kind} {ident!r}"
        doc.pop("_properties", None)
        doc.pop("_visible", None)
        expected = typed_uuid(ident, kind)
        if doc.get("uuid", expected) != expected:
            raise InvalidRequestError(f"{where} declares uuid {doc['uuid']}, expected {expected}")
        parent_kind = PARENTS[kind]
        parents: list[str] = []
        given = doc.pop("child_of", None)
        if given is not None:
            parents.extend(_as_list(given, f"{where} child_of"))
        if parent_kind is not None and ID_FIELDS[parent_kind] in doc:
            parents.extend(_as_list(doc.pop(ID_FIELDS[parent_kind]), f"{where} parent"))
        if parent_kind is None and parents:
            raise InvalidRequestError(f"{where}: an experiment design has no parent")
        child_of = sorted(
            {_parent_uuid(p, parent_kind, where) for p in parents} if parent_kind else set()
        )
        other_ids = [f for f in ID_FIELDS.values() if f in doc and f != id_field]
        if other_ids:
            raise InvalidRequestError(
                f"{where} also names {', '.join(other_ids)}; a {kind} may name only its parent"
            )
        extras = {k: v for k, v in doc.items() if k not in (id_field, "uuid")}
        check_json(extras, where=where, max_bytes=MAX_METADATA_BYTES)
        stored: Document = {"uuid": expected, id_field: ident, "child_of": child_of, **extras}
        schemas.validate(kind, {**stored, "_properties": _placeholder_properties()})
        return kind, stored

    def _check_parents(self, prepared: list[tuple[str, Document]], batch: set[str]) -> None:
        wanted: dict[str, set[str]] = {}
        for _, doc in prepared:
            for parent in doc["child_of"]:
                if parent not in batch:
                    wanted.setdefault(kind_of(parent) or "", set()).add(parent)
        for kind, uuids in wanted.items():
            found = {d["uuid"] for d in self.store.find(kind, {"uuid": {"$in": sorted(uuids)}})}
            missing = sorted(uuids - found)
            if missing:
                raise NotFoundError(
                    f"parent {kind} not found: {', '.join(missing)} (load parents first or in "
                    "the same list)",
                    missing=missing,
                )

    # -- reading ----------------------------------------------------------------------------

    def get(self, kind: str, id_or_uuid: str) -> MetadataEntity:
        """One entity by canonical id or UUID."""
        if kind not in LEVELS:
            raise InvalidRequestError(f"unknown metadata kind {kind!r}; known: {', '.join(LEVELS)}")
        uuids = self.resolve(**{ID_FIELDS[kind]: id_or_uuid})
        doc = self.store.get(kind, {"uuid": uuids[0]})
        assert doc is not None
        return MetadataEntity.from_document(kind, doc)

    def find(self, kind: str, *, limit: int = 0, skip: int = 0) -> list[MetadataEntity]:
        """Entities of one kind, ordered by canonical id."""
        if kind not in LEVELS:
            raise InvalidRequestError(f"unknown metadata kind {kind!r}; known: {', '.join(LEVELS)}")
        docs = self.store.find(kind, {}, sort=[(ID_FIELDS[kind], 1)], limit=limit, skip=skip)
        return [MetadataEntity.from_document(kind, d) for d in docs]

    # -- resolving --------------------------------------------------------------------------

    def resolve(self, **arguments: str | Iterable[str] | None) -> list[str]:
        """Resolve metadata arguments (exactly one kind) into sorted entity UUIDs.

        Args:
            **arguments: One of ``experiment_design_id``, ``experiment_id``,
                ``sample_id``, ``measurement_id``: a string or a list of strings, each a
                canonical id or a typed UUID of that kind.

        Raises:
            InvalidRequestError: No kind, several kinds, an unknown argument, a UUID of
                the wrong kind, or a value that is not a string.
            NotFoundError: An id or UUID that does not resolve (all are named).
        """
        unknown = sorted(set(arguments) - set(ARGUMENTS))
        if unknown:
            raise InvalidRequestError(
                f"unknown metadata argument(s): {', '.join(unknown)}; "
                f"expected one of {', '.join(ARGUMENTS)}"
            )
        given = {k: v for k, v in arguments.items() if v not in (None, "", [], ())}
        if not given:
            raise InvalidRequestError(
                f"exactly one of {', '.join(ARGUMENTS)} is required; none was given"
            )
        if len(given) > 1:
            raise InvalidRequestError(
                f"exactly one kind of metadata id is allowed; got {', '.join(sorted(given))}"
            )
        ((argument, value),) = given.items()
        kind = ARGUMENTS[argument]
        values = _as_list(value, argument)
        uuids: set[str] = set()
        ids: set[str] = set()
        for item in values:
            if is_uuid(item):
                actual = kind_of(item)
                if actual != kind:
                    raise InvalidRequestError(
                        f"{argument} {item!r} is a {actual or 'untyped'} UUID, not a {kind} UUID",
                        argument=argument,
                        value=item,
                    )
                uuids.add(item)
            else:
                ids.add(item)
        known = self._resolved[kind]
        if all(v in known for v in uuids | ids):
            return sorted({known[v] for v in uuids | ids})
        id_field = ID_FIELDS[kind]
        query: dict[str, Any] = {
            "$or": [{"uuid": {"$in": sorted(uuids)}}, {id_field: {"$in": sorted(ids)}}]
        }
        docs = self.store.find(kind, query, projection={"uuid": 1, id_field: 1})
        found_uuids = {d["uuid"] for d in docs}
        found_ids = {d[id_field] for d in docs}
        missing = sorted((uuids - found_uuids) | (ids - found_ids))
        if missing:
            raise NotFoundError(f"unknown {kind}: {', '.join(missing)}", kind=kind, missing=missing)
        for doc in docs:
            known[doc["uuid"]] = known[doc[id_field]] = doc["uuid"]
        return sorted({d["uuid"] for d in docs if d["uuid"] in uuids or d[id_field] in ids})


def _fields(stored: Document | None) -> Document | None:
    """A stored entity as :meth:`MetadataRegistry._prepare` makes it (no bookkeeping)."""
    if stored is None:
        return None
    return {k: v for k, v in stored.items() if k not in ("_properties", "_visible")}


def _replacement(doc: Document, stored: Document | None) -> Document:
    """An update making the stored entity equal ``doc`` (fields it no longer has are removed)."""
    update: Document = {
        "$set": {k: v for k, v in doc.items() if k != "uuid"},
        "$setOnInsert": {"uuid": doc["uuid"]},
    }
    dropped = sorted(set(stored or {}) - set(doc))
    if dropped:
        update["$unset"] = {k: "" for k in dropped}
    return update


def _as_list(value: Any, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise InvalidRequestError(f"{where} must be a string or a list of strings")
    out = list(items)
    if not out or not all(isinstance(v, str) and v.strip() for v in out):
        raise InvalidRequestError(f"{where} must be non-empty strings, got {out!r}")
    return out


def _parent_uuid(value: str, parent_kind: str, where: str) -> str:
    if is_uuid(value):
        if kind_of(value) != parent_kind:
            raise InvalidRequestError(
                f"{where}: parent {value!r} is not a {parent_kind} UUID", value=value
            )
        return value
    return typed_uuid(value, parent_kind)


def _placeholder_properties() -> dict[str, Any]:
    now = utc_now()
    return {"created_date": now, "modified_date": now, "revision": 0}
