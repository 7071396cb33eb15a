"""Listings: the files found under a directory, and the entries left out with why.

Listings never follow a symbolic link whose target is outside the root: it is reported
as a :class:`SkippedEntry` instead, so an indexer can say what it left out and why.
Listing a directory that does not exist gives an empty :class:`Listing`: a job that
wrote nothing has nothing to index. The backends make listings
(:mod:`~datacatalog.storage.local`, :mod:`~datacatalog.storage.remote`); this module
holds what a listing is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "SKIP_BROKEN_SYMLINK",
    "SKIP_NOT_REGULAR",
    "SKIP_SYMLINK_LOOP",
    "SKIP_SYMLINK_OUTSIDE_ROOT",
    "SKIP_UNREADABLE",
    "Listing",
    "SkippedEntry",
    "StoredFile",
]

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
