"""Lookups of the job, file, pipeline and metadata pages: labels, trees, downstream files,
and a file's bytes (a download and a preview, from local storage).

Each is a bounded query or one query per kind (``$in`` on the UUIDs a page shows); none
writes. The jobs listing is in :mod:`datacatalog.service.ui.queries`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from datacatalog.errors import DataCatalogError, InvalidRequestError, NotFoundError
from datacatalog.identifiers import kind_of
from datacatalog.metadata import ID_FIELDS, LEVELS
from datacatalog.storage import StorageRegistry
from datacatalog.store import Document, Store

MAX_CHILDREN = 500
PREVIEW_BYTES = 4096
PREVIEW_LINES = 40
"""A file's text preview: at most its first 4 KiB and 40 lines."""
"""Most child entities (or jobs) one metadata page lists before linking to more."""

NEWEST_FIRST = [("_properties.created_date", -1), ("uuid", 1)]


@dataclass(frozen=True)
class Label:
    """How the pages name an entity: its kind, UUID, a readable label, and whether it exists
    in the catalog (a job's input need not be indexed)."""

    kind: str
    uuid: str
    label: str
    known: bool = True


# -- labels ----------------------------------------------------------------------------------


def labels(store: Store, uuids: Iterable[str]) -> dict[str, Label]:
    """A :class:`Label` for each UUID: one query per kind; unknown ones keep their UUID."""
    by_kind: dict[str, set[str]] = {}
    for value in uuids:
        by_kind.setdefault(kind_of(value) or "generic", set()).add(value)
    out: dict[str, Label] = {}
    for kind, values in by_kind.items():
        found: dict[str, str] = {}
        wanted = {"uuid": {"$in": sorted(values)}}
        if kind == "pipeline":
            docs = store.find("pipeline", wanted, projection={"uuid": 1, "id": 1})
            found = {d["uuid"]: str(d["id"]) for d in docs}
        elif kind in LEVELS:
            field_name = ID_FIELDS[kind]
            docs = store.find(kind, wanted, projection={"uuid": 1, field_name: 1})
            found = {d["uuid"]: str(d[field_name]) for d in docs}
        elif kind == "file":
            docs = store.find("file", wanted, projection={"uuid": 1, "name": 1})
            found = {d["uuid"]: str(d["name"]) for d in docs}
        elif kind == "reference":
            docs = store.find("reference", wanted, projection={"uuid": 1, "uri": 1, "name": 1})
            found = {d["uuid"]: str(d.get("name") or d.get("uri") or d["uuid"]) for d in docs}
        for value in values:
            out[value] = Label(kind, value, found.get(value, value), known=value in found)
    return out


# -- metadata --------------------------------------------------------------------------------


def children(store: Store, entity: str, *, limit: int = MAX_CHILDREN) -> list[Document]:
    """The entities one level below ``entity`` (a design's experiments, ...), by id."""
    kind = kind_of(entity)
    if kind not in LEVELS or kind == LEVELS[-1]:
        return []
    below = LEVELS[LEVELS.index(kind) + 1]
    docs = store.find(below, {"child_of": entity}, sort=[(ID_FIELDS[below], 1)], limit=limit)
    return [{"kind": below, **d} for d in docs]


def roots(store: Store, kind: str, *, limit: int = MAX_CHILDREN) -> list[Document]:
    """Entities of ``kind`` with no parent: the tops of the metadata trees."""
    docs = store.find(kind, {"child_of": {"$size": 0}}, sort=[(ID_FIELDS[kind], 1)], limit=limit)
    return [{"kind": kind, **d} for d in docs]


def metadata_entity(store: Store, uuid: str) -> Document:
    """One metadata entity by UUID, with its ``kind``.

    Raises:
        InvalidRequestError: Not a metadata UUID.
        NotFoundError: No such entity.
    """
    kind = kind_of(uuid)
    if kind not in LEVELS:
        raise InvalidRequestError(f"{uuid!r} is not the UUID of a metadata entity")
    doc = store.get(kind, {"uuid": uuid})
    if doc is None:
        raise NotFoundError(f"{kind.replace('_', ' ')} {uuid} not found", uuid=uuid)
    return {"kind": kind, **doc}


# -- files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Downstream:
    """What was made from a file: files derived from it, jobs that read it."""

    files: list[Document] = field(default_factory=list)
    jobs: list[Document] = field(default_factory=list)
    truncated: bool = False


def downstream(store: Store, file_uuid: str, *, limit: int = MAX_CHILDREN) -> Downstream:
    """Files ``derived_from``/``derived_using`` the file and jobs that ``acted_on`` it."""
    files = store.find(
        "file",
        {"$or": [{"derived_from": file_uuid}, {"derived_using": file_uuid}]},
        sort=[("name", 1)],
        limit=limit + 1,
        projection={"uuid": 1, "name": 1, "level": 1, "type": 1},
    )
    jobs = store.find(
        "job",
        {"acted_on": file_uuid, "_visible": True},
        sort=NEWEST_FIRST,
        limit=limit + 1,
        projection={"uuid": 1, "state": 1, "pipeline_uuid": 1},
    )
    truncated = len(files) > limit or len(jobs) > limit
    return Downstream(files=files[:limit], jobs=jobs[:limit], truncated=truncated)


def job_files(
    store: Store, job_uuid: str, *, after_name: str | None = None, limit: int
) -> tuple[list[Document], bool]:
    """One page of a job's file records by name, and whether more follow."""
    query: dict[str, Any] = {"generated_by": job_uuid}
    if after_name is not None:
        query["name"] = {"$gt": after_name}
    docs = store.find("file", query, sort=[("name", 1)], limit=limit + 1)
    return docs[:limit], len(docs) > limit


# -- a file's content -------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """What the file page offers of a file's bytes: a download and a short text preview,
    where its storage system is local and configured here (else ``problem`` says why not).
    """

    downloadable: bool
    preview: str | None = None
    cut: bool = False  # the preview is the file's beginning only
    problem: str | None = None


def open_local(storage: StorageRegistry, record: Document) -> BinaryIO:
    """The file of ``record``, opened for reading from its local storage system.

    Raises:
        NotFoundError: Its storage system is not configured here, not local, or the file
            is not there.
        StorageFailureError: It cannot be read (or leaves the system's root).
    """
    name = record["storage_system"]
    if name not in storage:
        raise NotFoundError(f"storage system {name!r} is not configured on this service")
    system = storage.get(name)
    if not system.is_local:
        raise NotFoundError(
            f"the file is on storage system {name!r}, which is not local: "
            "read it where that storage is"
        )
    return system.open(record["name"])


def content(storage: StorageRegistry, record: Document) -> Content:
    """The download and preview the file page shows for ``record``."""
    try:
        stream = open_local(storage, record)
    except DataCatalogError as exc:
        return Content(downloadable=False, problem=exc.message)
    with stream:
        head = stream.read(PREVIEW_BYTES + 1)
    cut = len(head) > PREVIEW_BYTES
    head = head[:PREVIEW_BYTES]
    if b"\0" in head:
        return Content(downloadable=True)  # binary: no preview
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not cut or exc.start < len(head) - 3:
            return Content(downloadable=True)
        text = head[: exc.start].decode("utf-8")  # a character cut at the end
    lines = text.splitlines()
    if len(lines) > PREVIEW_LINES:
        text, cut = "\n".join(lines[:PREVIEW_LINES]), True
    return Content(downloadable=True, preview=text, cut=cut)
