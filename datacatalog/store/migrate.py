"""Importing a ``catalog.json`` from the embedded engine into the managed server, once.

Runs under the managed server's start lock, so one process imports and the others wait.
A marker in ``datacatalog_local.migrations`` (keyed by the file's sha256) records the
import: ``started`` before the first document is written, ``done`` once every collection's
count matches the file. Then the file is renamed ``catalog.json.migrated-<UTC time>`` and
kept. An import that was interrupted (marker still ``started``) is started over: the
collections it wrote are emptied first. Re-running after success is a no-op.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bson import json_util

from datacatalog.errors import ConflictError, DataCatalogError, StorageFailureError
from datacatalog.store.admin import AdminClient
from datacatalog.store.embedded import _JSON_OPTIONS, FORMAT

META_DATABASE = "datacatalog_local"
MARKERS = "migrations"
BATCH = 1000


def migrated_name(path: Path, when: datetime) -> Path:
    """Where an imported file is kept."""
    return path.with_name(f"{path.name}.migrated-{when.strftime('%Y%m%dT%H%M%SZ')}")


def import_snapshot(uri: str, database: str, path: Path) -> dict[str, int] | None:
    """Import the embedded catalog ``path`` into ``database`` on ``uri`` if not yet done.

    Returns:
        The documents imported per collection, or ``None`` when there was nothing to do.

    Raises:
        DataCatalogError: The file is not an embedded catalog.
        ConflictError: The database already holds data that did not come from this file.
        StorageFailureError: The counts did not match after the import (nothing renamed).
    """
    if not path.is_file():
        return None
    raw = path.read_bytes()
    fingerprint = hashlib.sha256(raw).hexdigest()
    with AdminClient(uri, role="migrate", timeout=30.0) as admin:
        markers = admin.database(META_DATABASE)[MARKERS]
        marker = markers.find_one({"_id": fingerprint})
        if marker is not None and marker.get("state") == "done":
            _keep(path)
            return None
        collections = _collections(path, raw)
        target = admin.database(database)
        if marker is not None:
            for name in marker.get("collections", []):
                target[name].delete_many({})  # the interrupted import's part
        else:
            busy = sorted(name for name in collections if target[name].estimated_document_count())
            if busy:
                raise ConflictError(
                    f"cannot import {path}: the local server's database {database!r} "
                    f"already holds {', '.join(busy)}; move one of them aside first",
                    path=str(path),
                )
        markers.replace_one(
            {"_id": fingerprint},
            {"state": "started", "file": str(path), "database": database,
             "collections": sorted(collections), "started_at": time.time()},
            upsert=True,
        )  # fmt: skip
        for name, documents in collections.items():
            for start in range(0, len(documents), BATCH):
                _insert_batch(target[name], documents[start : start + BATCH])
        counts = {name: target[name].count_documents({}) for name in collections}
        expected = {name: len(documents) for name, documents in collections.items()}
        if counts != expected:
            raise StorageFailureError(
                f"importing {path} did not verify: expected {expected}, found {counts}; "
                "the file is kept and the import will start over",
                path=str(path),
            )
        markers.update_one({"_id": fingerprint}, {"$set": {"state": "done", "counts": counts}})
    _keep(path)
    return counts


def _insert_batch(collection: Any, documents: list[Any]) -> None:
    """Insert one ordered batch (a seam tests use to interrupt an import)."""
    collection.insert_many(documents, ordered=True)


def _collections(path: Path, raw: bytes) -> dict[str, list[Any]]:
    try:
        snapshot = json_util.loads(raw.decode("utf-8"), json_options=_JSON_OPTIONS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataCatalogError(f"cannot read the embedded catalog {path}: {exc}") from exc
    if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
        raise DataCatalogError(f"{path} is not an embedded catalog ({FORMAT})")
    collections = snapshot.get("collections", {})
    if not isinstance(collections, dict):
        raise DataCatalogError(f"{path} is not an embedded catalog: no collections")
    return {str(name): list(docs) for name, docs in collections.items()}


def _keep(path: Path) -> None:
    target = migrated_name(path, datetime.now(timezone.utc))
    try:
        path.rename(target)
    except OSError as exc:
        raise StorageFailureError(
            f"imported {path} but could not rename it to {target.name}: {exc}",
            path=str(path),
        ) from exc
