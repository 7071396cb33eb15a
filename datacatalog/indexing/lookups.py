"""Finding files: a file record by UUID, path or URI, a job's records, a size on storage."""

from __future__ import annotations

from datacatalog.errors import InvalidRequestError, NotFoundError, StorageFailureError
from datacatalog.identifiers import file_uuid, is_uuid, normalize_path, require_kind
from datacatalog.storage import StorageSystem
from datacatalog.store import Document, Store


def file_document(store: Store, uuid_or_path: str) -> Document:
    """The stored file record named by a file UUID, absolute catalog path or storage URI.

    Raises:
        InvalidRequestError: Not a file UUID, absolute path or URI.
        NotFoundError: No record, naming what was asked for.
    """
    if not isinstance(uuid_or_path, str) or not uuid_or_path:
        raise InvalidRequestError(f"expected a file UUID or path, not {uuid_or_path!r}")
    if is_uuid(uuid_or_path):
        uuid = require_kind(uuid_or_path, "file", what="file")
    elif "://" in uuid_or_path:
        path = uri_path(uuid_or_path)
        if path is None:
            raise InvalidRequestError(f"{uuid_or_path!r} names no file path")
        uuid = file_uuid(path)
    else:
        uuid = file_uuid(uuid_or_path)
    doc = store.get("file", {"uuid": uuid})
    if doc is None:
        raise NotFoundError(f"file {uuid_or_path!r} is not indexed", file=uuid_or_path)
    return doc


def job_file_documents(store: Store, job_uuid: str) -> list[Document]:
    """The stored file records ``generated_by`` the job, by name."""
    return store.find("file", {"generated_by": job_uuid}, sort=[("name", 1)])


def file_locations(store: Store, file_uuids: list[str]) -> dict[str, Document]:
    """Where each of ``file_uuids`` is stored (its ``name`` and ``storage_system``), by UUID;
    a UUID with no record is left out. One read for all of them."""
    found = store.find(
        "file",
        {"uuid": {"$in": list(file_uuids)}},
        projection={"uuid": 1, "name": 1, "storage_system": 1},
    )
    return {d["uuid"]: d for d in found}


def stored_size(system: StorageSystem, path: str) -> int | None:
    """The size of the regular file at ``path``, or None if there is none (or it is
    out of reach: outside the root, unreadable)."""
    try:
        if not system.exists(path):
            return None
        info = system.fs.info(system.resolve(path))
    except (NotFoundError, StorageFailureError, InvalidRequestError, OSError):
        return None
    if info.get("type", "file") != "file" or info.get("size") is None:
        return None
    return int(info["size"])


def uri_path(uri: str) -> str | None:
    """``/path`` of ``scheme://system/path`` (None when there is no path)."""
    rest = uri.split("://", 1)[1]
    if "/" not in rest:
        return None
    path = "/" + rest.split("/", 1)[1].lstrip("/")
    if path == "/":
        return None
    try:
        return normalize_path(path)
    except InvalidRequestError:
        return None
