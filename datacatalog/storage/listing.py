"""Listings: the files found under a directory, and the entries left out with why.

Listings never follow a symbolic link whose target is outside the root: it is reported
as a :class:`SkippedEntry` instead, so an indexer can say what it left out and why.
Listing a directory that does not exist gives an empty :class:`Listing`: a job that
wrote nothing has nothing to index.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from datacatalog.clock import as_utc
from datacatalog.storage.failures import failures, not_a_directory
from datacatalog.storage.paths import join_catalog, within

if TYPE_CHECKING:
    from datacatalog.storage.system import StorageSystem

# Reasons given in SkippedEntry.reason (stable codes; SkippedEntry.detail is for people).
SKIP_SYMLINK_OUTSIDE_ROOT = "symlink_outside_root"
SKIP_BROKEN_SYMLINK = "broken_symlink"
SKIP_SYMLINK_LOOP = "symlink_loop"
SKIP_NOT_REGULAR = "not_regular_file"
SKIP_UNREADABLE = "unreadable"


@dataclass(frozen=True)
class StoredFile:
    """One regular file found by :meth:`StorageSystem.list_files`.

    Attributes:
        path: Catalog-absolute path of the file.
        relative_path: Path relative to the listed directory (``/``-separated).
        size: Size in bytes.
        modified: Last modification time (UTC, timezone-aware), when the backend knows it.
    """

    path: str
    relative_path: str
    size: int
    modified: datetime | None


@dataclass(frozen=True)
class SkippedEntry:
    """An entry a listing did not descend into or report as a file.

    Attributes:
        path: Catalog-absolute path of the entry.
        reason: Stable code: one of the ``SKIP_*`` constants of this module.
        detail: Human-readable explanation.
    """

    path: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Listing:
    """The result of listing a directory tree: files found and entries left out.

    Iterating a listing yields its files.

    Attributes:
        path: The catalog path that was listed.
        files: Regular files, sorted by path.
        skipped: Entries not listed (outside-root or broken links, special files,
            unreadable directories), sorted by path.
    """

    path: str
    files: tuple[StoredFile, ...] = ()
    skipped: tuple[SkippedEntry, ...] = ()

    def __iter__(self) -> Iterator[StoredFile]:
        return iter(self.files)

    @property
    def total_size(self) -> int:
        """Sum of the sizes of the listed files, in bytes."""
        return sum(f.size for f in self.files)


def list_remote(system: StorageSystem, path: str, backend: str) -> Listing:
    """List an object store's files under ``backend`` (what :meth:`StorageSystem.list_files`
    does there)."""
    with failures(system.name, "list", path):
        found = cast(
            "dict[str, dict[str, Any]]",
            system.fs.find(backend, withdirs=False, detail=True),
        )
        prefix = backend.rstrip("/") + "/"
        files: list[StoredFile] = []
        for name, info in found.items():
            stripped = str(name)
            if stripped == backend:
                raise not_a_directory(system.name, path)
            if not stripped.startswith(prefix) or info.get("type", "file") != "file":
                continue
            relative = stripped[len(prefix) :]
            size = info.get("size")
            if size is None:
                size = system.fs.size(stripped)
            files.append(
                StoredFile(
                    path=join_catalog(path, relative),
                    relative_path=relative,
                    size=int(size),
                    modified=_modified_from_info(info),
                )
            )
    files.sort(key=lambda f: f.path)
    return Listing(path=path, files=tuple(files))


def list_local(system: StorageSystem, path: str, backend: str) -> Listing:
    """List a local directory tree, following only links that stay inside the root."""
    real_root = os.path.realpath(system.root)
    with failures(system.name, "list", path):
        if not os.path.lexists(backend):
            return Listing(path=path)
        if not os.path.isdir(backend):
            raise not_a_directory(system.name, path)
        # Fail loudly if the top directory itself cannot be read.
        os.scandir(backend).close()
    files: list[StoredFile] = []
    skipped: list[SkippedEntry] = []
    # Iterative walk: (backend directory, path relative to the listed one, the real
    # paths of the directories above it, to stop symlink loops).
    stack: list[tuple[str, str, frozenset[str]]] = [
        (backend, "", frozenset({os.path.realpath(backend)}))
    ]
    while stack:
        directory, rel_dir, ancestors = stack.pop()
        try:
            with os.scandir(directory) as entries:
                children = list(entries)
        except OSError as exc:
            skipped.append(SkippedEntry(join_catalog(path, rel_dir), SKIP_UNREADABLE, str(exc)))
            continue
        for entry in children:
            relative = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            catalog = join_catalog(path, relative)
            try:
                if entry.is_symlink():
                    real = os.path.realpath(entry.path)
                    if not within(real_root, real):
                        skipped.append(
                            SkippedEntry(
                                catalog,
                                SKIP_SYMLINK_OUTSIDE_ROOT,
                                f"symbolic link to {real!r}, outside the root "
                                f"{system.root!r}; not followed",
                            )
                        )
                        continue
                    if not os.path.exists(entry.path):
                        skipped.append(
                            SkippedEntry(
                                catalog,
                                SKIP_BROKEN_SYMLINK,
                                f"symbolic link to missing {real!r}",
                            )
                        )
                        continue
                    info = os.stat(entry.path)
                else:
                    info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                skipped.append(SkippedEntry(catalog, SKIP_UNREADABLE, str(exc)))
                continue
            if stat.S_ISDIR(info.st_mode):
                real_dir = os.path.realpath(entry.path)
                if real_dir in ancestors:
                    skipped.append(
                        SkippedEntry(
                            catalog,
                            SKIP_SYMLINK_LOOP,
                            f"symbolic link back to an enclosing directory {real_dir!r}",
                        )
                    )
                    continue
                stack.append((entry.path, relative, ancestors | {real_dir}))
            elif stat.S_ISREG(info.st_mode):
                files.append(
                    StoredFile(
                        path=catalog,
                        relative_path=relative,
                        size=info.st_size,
                        modified=datetime.fromtimestamp(info.st_mtime, tz=timezone.utc),
                    )
                )
            else:
                skipped.append(
                    SkippedEntry(
                        catalog,
                        SKIP_NOT_REGULAR,
                        "not a regular file (device, socket or pipe)",
                    )
                )
    files.sort(key=lambda f: f.path)
    skipped.sort(key=lambda s: s.path)
    return Listing(path=path, files=tuple(files), skipped=tuple(skipped))


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
