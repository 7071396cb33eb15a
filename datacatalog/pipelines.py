"""The pipeline registry.

A pipeline is identified by *what it runs*: its ``id`` plus its exact component
list (``pipeline_uuid(id, components)``). Registering the same document again
returns the same pipeline and changes nothing; changing the components makes a
new pipeline (the old one, and every job it generated, stays as it was).

Looking a pipeline up by ``id`` returns the most recently registered pipeline
with that id; look it up by UUID to be exact.

A pipeline named by UUID never changes and is never removed, so a registry keeps the
pipelines it has read by UUID and answers those lookups without a round trip. Lookups by
``id`` always ask the store (a newer registration may have taken the name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from datacatalog.errors import InvalidRequestError, NotFoundError
from datacatalog.freeform import check_json
from datacatalog.identifiers import is_uuid, pipeline_uuid, require_kind
from datacatalog.store import Document, Store
from datacatalog.stored import from_stored

PROCESSING_LEVELS = ("0", "1", "2", "3")
FIELDS = (
    "id",
    "name",
    "description",
    "components",
    "processing_levels",
    "accepts",
    "produces",
    "pipeline_type",
)
MAX_PIPELINE_BYTES = 256 * 1024
# Registrations in the same millisecond share a created date; the database's own
# ``_id`` (an ObjectId, increasing as documents are created) breaks the tie.
_NEWEST_FIRST = [("_properties.created_date", -1), ("_id", -1)]


@dataclass(frozen=True)
class Pipeline:
    """A registered pipeline."""

    uuid: str
    id: str
    name: str
    components: list[Any]
    processing_levels: list[str]
    description: str | None = None
    accepts: list[str] = field(default_factory=list)
    produces: list[str] = field(default_factory=list)
    pipeline_type: str | None = None
    created_date: datetime | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Pipeline:
        """Build from a stored document."""
        return from_stored(
            cls,
            doc,
            processing_levels=list(doc.get("processing_levels", [])),
            created_date=doc.get("_properties", {}).get("created_date"),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "uuid": self.uuid,
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "components": self.components,
            "processing_levels": self.processing_levels,
            "accepts": self.accepts,
            "produces": self.produces,
            "pipeline_type": self.pipeline_type,
            "created_date": self.created_date.isoformat() if self.created_date else None,
        }


def pipeline_document(spec: Mapping[str, Any]) -> Document:
    """Check a pipeline definition and return the document to store (with its UUID).

    Raises:
        InvalidRequestError: A field is missing, unknown or of the wrong type.
    """
    pid, components = _identity(spec)
    levels = spec.get("processing_levels", ["1"])
    if not isinstance(levels, list) or any(lv not in PROCESSING_LEVELS for lv in levels):
        raise InvalidRequestError(
            f"pipeline {pid!r} 'processing_levels' must be a list of {', '.join(PROCESSING_LEVELS)}"
        )
    for name in ("accepts", "produces"):
        if not isinstance(spec.get(name) or [], list):
            raise InvalidRequestError(f"pipeline {pid!r} '{name}' must be a list of strings")
    doc: Document = {
        "uuid": pipeline_uuid(pid, components),
        "id": pid,
        "name": spec.get("name") or pid,
        "description": spec.get("description"),
        "components": components,
        "processing_levels": list(levels),
        "accepts": list(spec.get("accepts") or []),
        "produces": list(spec.get("produces") or []),
        "pipeline_type": spec.get("pipeline_type"),
        "_visible": True,
    }
    given = spec.get("uuid")
    if given is not None and given != doc["uuid"]:
        raise InvalidRequestError(
            f"pipeline {pid!r} declares uuid {given} but its id and components give {doc['uuid']}"
        )
    _check_texts(pid, doc)
    return doc


def _identity(spec: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The definition's id and components, checked, once it names only known fields."""
    if not isinstance(spec, Mapping):
        raise InvalidRequestError(f"a pipeline must be a JSON object, not {type(spec).__name__}")
    unknown = sorted(str(k) for k in set(spec) - set(FIELDS) - {"uuid", "_properties", "_visible"})
    if unknown:
        raise InvalidRequestError(
            f"pipeline has unknown field(s): {', '.join(unknown)}; known: {', '.join(FIELDS)}"
        )
    pid = spec.get("id")
    if not isinstance(pid, str) or not pid.strip():
        raise InvalidRequestError("pipeline 'id' must be a non-empty string")
    if "components" not in spec:
        raise InvalidRequestError(f"pipeline {pid!r} has no 'components' list")
    components = spec["components"]
    if not isinstance(components, list):
        raise InvalidRequestError(
            f"pipeline {pid!r} 'components' must be a list, not {type(components).__name__}"
        )
    check_json(components, where=f"pipeline {pid!r} components", max_bytes=MAX_PIPELINE_BYTES)
    return pid, components


def _check_texts(pid: str, doc: Document) -> None:
    """Refuse a name, description or type that is not a string, or a non-string in
    ``accepts`` / ``produces``."""
    for name in ("name", "description", "pipeline_type"):
        if doc[name] is not None and not isinstance(doc[name], str):
            raise InvalidRequestError(f"pipeline {pid!r} '{name}' must be a string")
    for name in ("accepts", "produces"):
        if not all(isinstance(v, str) for v in doc[name]):
            raise InvalidRequestError(f"pipeline {pid!r} '{name}' must be a list of strings")


class PipelineRegistry:
    """Register and look up pipelines."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Pipelines read by UUID; their documents are immutable (see the module docstring).
        self._by_uuid: dict[str, Pipeline] = {}

    def register(self, spec: Mapping[str, Any]) -> tuple[Pipeline, bool]:
        """Register a pipeline; return it and whether it was new."""
        doc, created = self.store.insert_if_absent("pipeline", pipeline_document(spec))
        pipeline = Pipeline.from_document(doc)
        self._by_uuid[pipeline.uuid] = pipeline
        return pipeline, created

    def get(self, id_or_uuid: str) -> Pipeline:
        """Return a pipeline by UUID or by ``id`` (the newest registration)."""
        if not isinstance(id_or_uuid, str):
            # Anything else would reach the query as it is ({"$ne": None} matches all).
            raise InvalidRequestError(
                f"a pipeline is named by its UUID or id, not a {type(id_or_uuid).__name__}"
            )
        if is_uuid(id_or_uuid):
            require_kind(id_or_uuid, "pipeline", what="pipeline")
            known = self._by_uuid.get(id_or_uuid)
            if known is not None:
                return known
            doc = self.store.get("pipeline", {"uuid": id_or_uuid})
        else:
            found = self.store.find("pipeline", {"id": id_or_uuid}, sort=_NEWEST_FIRST, limit=1)
            doc = found[0] if found else None
        if doc is None:
            raise NotFoundError(f"pipeline {id_or_uuid!r} is not registered", pipeline=id_or_uuid)
        pipeline = Pipeline.from_document(doc)
        self._by_uuid[pipeline.uuid] = pipeline
        return pipeline

    def find(self, *, limit: int = 0, skip: int = 0) -> list[Pipeline]:
        """All pipelines, newest first."""
        docs = self.store.find("pipeline", {}, sort=_NEWEST_FIRST, limit=limit, skip=skip)
        return [Pipeline.from_document(d) for d in docs]
