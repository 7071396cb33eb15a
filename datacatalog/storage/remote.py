"""The remote backend: an object store (memory, S3, ...) reached through an fsspec filesystem.

Object stores have no symbolic links, so only the catalog path rules apply here: the
backend path is the root followed by the catalog path. Listings report every object
under a prefix; removal deletes what the prefix holds.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, cast

from datacatalog.clock import as_utc
from datacatalog.storage.failures import failures, not_a_directory
from datacatalog.storage.listing import Listing, StoredFile
from datacatalog.storage.paths import backend_path, join_catalog


class RemoteBackend:
    """A storage root on an fsspec filesystem that is not this machine's.

    Args:
        system: The storage system's name, for error messages.
        root: The root as the filesystem names it (no protocol, no trailing ``/``).
        fs: The fsspec filesystem.
    """

    def __init__(self, system: str, root: str, fs: Any) -> None:
        self.system = system
        self.root = root
        self.fs = fs

    @property
    def is_local(self) -> bool:
        """False: no symbolic links, and no path on this machine."""
        return False

    def resolve(self, path: str) -> str:
        """The backend path of the valid catalog path ``path``."""
        return backend_path(self.root, path)

    def local_path(self, path: str) -> str | None:
        """None: an object store's files are not on this machine."""
        return None

    def exists(self, path: str) -> bool:
        """True if an object or a prefix is at ``path``."""
        backend = self.resolve(path)
        with failures(self.system, "check", path):
            return bool(self.fs.exists(backend))

    def makedirs(self, path: str) -> None:
        """Create the directory ``path`` where the store has directories."""
        backend = self.resolve(path)
        with failures(self.system, "create directory", path):
            self.fs.makedirs(backend, exist_ok=True)

    def open(self, path: str) -> BinaryIO:
        """Open the object at ``path`` for streaming reads."""
        backend = self.resolve(path)
        with failures(self.system, "open", path):
            return cast(BinaryIO, self.fs.open(backend, "rb"))

    def put_file(self, source: Path, path: str) -> None:
        """Upload the local file ``source`` to ``path``."""
        backend = self.resolve(path)
        self.fs.makedirs(posixpath.dirname(backend), exist_ok=True)
        self.fs.put_file(str(source), backend)

    def list_files(self, path: str) -> Listing:
        """List the objects under the prefix ``path``."""
        backend = self.resolve(path)
        with failures(self.system, "list", path):
            found = cast(
                "dict[str, dict[str, Any]]",
                self.fs.find(backend, withdirs=False, detail=True),
            )
            prefix = backend.rstrip("/") + "/"
            files: list[StoredFile] = []
            for name, info in found.items():
                if str(name) == backend:
                    raise not_a_directory(self.system, path)
                if str(name).startswith(prefix) and info.get("type", "file") == "file":
                    files.append(self._stored(path, str(name), str(name)[len(prefix) :], info))
        files.sort(key=lambda f: f.path)
        return Listing(path=path, files=tuple(files))

    def _stored(self, path: str, name: str, relative: str, info: Mapping[str, Any]) -> StoredFile:
        size = info.get("size")
        if size is None:
            size = self.fs.size(name)
        return StoredFile(
            path=join_catalog(path, relative),
            relative_path=relative,
            size=int(size),
            modified=_modified_from_info(info),
        )

    def remove_tree_contents(self, path: str) -> list[str]:
        """Empty the prefix ``path`` (not the root; checked by the system)."""
        backend = self.resolve(path)
        with failures(self.system, "inspect", path):
            if not self.fs.exists(backend):
                return []
            if self.fs.isfile(backend):
                raise not_a_directory(self.system, path)
        return self._remove_contents(path, backend)

    def remove_tree(self, path: str) -> list[str]:
        """Remove ``path`` and everything under it; an object is removed alone."""
        backend = self.resolve(path)
        with failures(self.system, "remove", path):
            if not self.fs.exists(backend):
                return []
            if self.fs.isfile(backend):
                self.fs.rm_file(backend)
                return [path]
        removed = self._remove_contents(path, backend)
        with failures(self.system, "remove", path):
            if self.fs.exists(backend):
                self.fs.rm(backend, recursive=True)
        return [*removed, path]

    def _remove_contents(self, path: str, backend: str) -> list[str]:
        prefix = backend.rstrip("/") + "/"
        with failures(self.system, "empty", path):
            found = [str(p) for p in self.fs.find(backend, withdirs=True, detail=False)]
            removed = [join_catalog(path, p[len(prefix) :]) for p in found if p.startswith(prefix)]
            for child in self.fs.ls(backend, detail=False):
                if str(child).startswith(prefix):
                    self.fs.rm(str(child), recursive=True)
        return removed


def _to_utc(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str):
        try:
            return _to_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _modified_from_info(info: Mapping[str, Any]) -> datetime | None:
    # Backends name the modification time differently; creation time is the fallback
    # for stores whose objects are immutable (memory, S3 without versioning).
    for key in ("mtime", "LastModified", "last_modified", "modified", "updated", "created"):
        if info.get(key) is not None:
            found = _to_utc(info[key])
            if found is not None:
                return found
    return None
