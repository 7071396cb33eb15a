"""Storage systems: named roots on a filesystem or object store, reached through fsspec.

A *storage system* is a name mapped to an fsspec URL that is its root::

    local    -> file:///var/lib/datacatalog/archive
    scratch  -> memory://catalog-archive
    cloud    -> s3://bucket/prefix            (when s3fs is installed)

Paths handed to a storage system are *catalog paths*: absolute, normalized POSIX paths
such as a job's archive path ``/products/v2/AAA/BBB/CCC``. The real location is the root
followed by the catalog path, so the same job layout works on every backend::

    catalog path   /products/v2/AAA/BBB/CCC/out/a.png
    root           file:///var/lib/datacatalog/archive
    backend path   /var/lib/datacatalog/archive/products/v2/AAA/BBB/CCC/out/a.png

Safety rules, applied by every operation:

- a catalog path must be absolute and normalized, without ``..`` components or NUL
  characters (:class:`~datacatalog.errors.InvalidRequestError` otherwise);
- on local (``file://``) systems, the real path (:func:`os.path.realpath`) of anything
  read, listed, created or removed must lie inside the real root; a path that leaves the
  root through a symbolic link is refused (:class:`~datacatalog.errors.StorageFailureError`);
- listings never follow a symbolic link whose target is outside the root: it is reported
  as a :class:`SkippedEntry` instead, so an indexer can say what it left out and why;
- removals never follow symbolic links: a link inside the root is removed as a link and
  its target is left alone, and the root itself can never be removed or emptied.

Object stores (memory, S3) have no symbolic links, so only the path rules apply there.
Filesystem failures surface as :class:`~datacatalog.errors.StorageFailureError` naming
the path (a missing file that was asked for by name is a
:class:`~datacatalog.errors.NotFoundError`). Listing a directory that does not exist
gives an empty :class:`Listing`: a job that wrote nothing has nothing to index.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, cast

from datacatalog.clock import as_utc
from datacatalog.errors import (
    DataCatalogError,
    InvalidRequestError,
    NotFoundError,
    StorageFailureError,
)

DEFAULT_SYSTEM_NAME = "local"
"""Name of the storage system used when a job does not name one."""

CHUNK_SIZE = 1024 * 1024
"""Default read size when hashing: files are streamed, never read whole."""

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


def validate_path(path: object) -> str:
    """Check that ``path`` is a usable catalog path and return it.

    Args:
        path: Candidate catalog path.

    Returns:
        The path, unchanged.

    Raises:
        InvalidRequestError: The path is not a string, contains NUL, is relative, has a
            ``..`` component or is not normalized (``.``, ``//`` or a trailing ``/``).
    """
    if not isinstance(path, str):
        raise InvalidRequestError(
            f"storage path must be a string, not {type(path).__name__}", path=repr(path)
        )
    if "\x00" in path:
        raise InvalidRequestError(f"storage path {path!r} contains a NUL character", path=path)
    if not path.startswith("/"):
        raise InvalidRequestError(
            f"storage path {path!r} must be absolute (start with '/')", path=path
        )
    if ".." in path.split("/"):
        raise InvalidRequestError(
            f"storage path {path!r} must not contain '..' components", path=path
        )
    if path != "/" and (path.startswith("//") or posixpath.normpath(path) != path):
        raise InvalidRequestError(
            f"storage path {path!r} is not normalized (no '.', '//' or trailing '/'); "
            f"did you mean {posixpath.normpath('/' + path.lstrip('/'))!r}?",
            path=path,
        )
    return path


def _join_catalog(base: str, relative: str) -> str:
    return "/" + relative if base == "/" else f"{base}/{relative}"


_PLAIN_FILE_URL = re.compile(r"file://(/[^:?#*\[\]~]*)")


def _plain_file_root(url: str) -> str | None:
    """The root of a plain ``file:///absolute/path`` URL, as fsspec would give it.

    None for anything else (chained, relative, with options or glob characters): those
    go through fsspec.
    """
    match = _PLAIN_FILE_URL.fullmatch(url)
    if match is None:
        return None
    path = match.group(1)
    if path != "/" and posixpath.normpath(path) != path.rstrip("/"):
        return None
    return path if path == "/" else path.rstrip("/")


def _opened_path(fd: int) -> str | None:
    """The real path of the open file ``fd`` (None where the system cannot tell)."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return real if real.startswith("/") and not real.endswith(" (deleted)") else None


def _within(root: str, candidate: str) -> bool:
    # Both are real (absolute, normalized) paths: a prefix test on whole components.
    return candidate == root or candidate.startswith(root if root.endswith("/") else root + "/")


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


@dataclass(frozen=True)
class StorageSystem:
    """A named storage root, opened from an fsspec URL.

    Two systems are equal when their names and URLs are.

    Attributes:
        name: The system's name (what jobs store as ``archive_system``).
        url: The fsspec URL of the root.
        fs: The fsspec filesystem (made on first use for a plain ``file://`` root).
        root: The root as a backend path (no protocol, no trailing ``/``).
    """

    name: str
    url: str
    root: str = field(init=False, repr=False, compare=False)
    _fs: Any = field(init=False, repr=False, compare=False, default=None)
    _local: bool = field(init=False, repr=False, compare=False, default=False)
    _real_root_cache: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidRequestError(
                f"storage system name must be a non-empty string, not {self.name!r}"
            )
        if not isinstance(self.url, str) or not self.url:
            raise InvalidRequestError(
                f"storage system {self.name!r} needs a non-empty URL, not {self.url!r}"
            )
        plain = _plain_file_root(self.url)
        if plain is not None:
            # A plain local root needs no fsspec until a file is touched through it, so a
            # command that only reads the catalog never imports it.
            object.__setattr__(self, "root", plain)
            object.__setattr__(self, "_local", True)
            return
        import fsspec.core
        from fsspec.implementations.local import LocalFileSystem

        try:
            fs, root = fsspec.core.url_to_fs(self.url)
        except (ValueError, ImportError) as exc:
            raise InvalidRequestError(
                f"storage system {self.name!r} has an unusable URL {self.url!r}: {exc}",
                system=self.name,
                url=self.url,
            ) from exc
        root = str(root)
        if root not in ("", "/"):
            root = root.rstrip("/")
        object.__setattr__(self, "_fs", fs)
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "_local", isinstance(fs, LocalFileSystem))

    @classmethod
    def from_url(cls, name: str, url: str) -> StorageSystem:
        """Open the storage system ``name`` rooted at ``url``."""
        return cls(name=name, url=url)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (a plain local one is made on first use)."""
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            object.__setattr__(self, "_fs", LocalFileSystem())
        return self._fs

    @property
    def is_local(self) -> bool:
        """True for local filesystems, where symbolic links exist and are checked."""
        return self._local

    # -- paths -----------------------------------------------------------------------

    def _backend(self, path: str) -> str:
        if path == "/":
            return self.root or "/"
        return self.root.rstrip("/") + path

    def _real_root(self) -> str:
        return os.path.realpath(self.root)

    def _inside_root(self, real: str) -> bool:
        """True if the real path ``real`` lies inside the real root.

        The real root is remembered between calls (working it out again costs a system
        call per component, for every file read); a path that seems outside is checked
        against a fresh one, so a root that was moved or re-linked is still judged right.
        """
        remembered = self._real_root_cache
        if remembered and _within(remembered[0], real):
            return True
        fresh = self._real_root()
        object.__setattr__(self, "_real_root_cache", (fresh,))
        return _within(fresh, real)

    def resolve(self, path: str) -> str:
        """Return the backend path of the catalog path ``path``.

        On local systems the real path is checked to stay inside the real root, so a
        path reaching outside through a symbolic link is refused.

        Args:
            path: Catalog path (absolute, normalized).

        Returns:
            The path the fsspec filesystem understands (root + ``path``).

        Raises:
            InvalidRequestError: ``path`` is not a valid catalog path.
            StorageFailureError: ``path`` leaves the root through a symbolic link.
        """
        validate_path(path)
        backend = self._backend(path)
        if self.is_local:
            real = os.path.realpath(backend)
            if not self._inside_root(real):
                raise self._outside_root(path, real)
        return backend

    def _outside_root(self, path: str, real: str) -> StorageFailureError:
        return StorageFailureError(
            f"path {path!r} on storage system {self.name!r} resolves to {real!r}, "
            f"outside the system's root {self.root!r} (through a symbolic link); "
            "refusing to use it",
            path=path,
            system=self.name,
        )

    @contextmanager
    def _failures(self, action: str, path: str) -> Iterator[None]:
        """Turn filesystem errors raised inside the block into catalog errors."""
        try:
            yield
        except DataCatalogError:
            raise
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"cannot {action} {path!r} on storage system {self.name!r}: "
                "no such file or directory",
                path=path,
                system=self.name,
            ) from exc
        except OSError as exc:
            raise StorageFailureError(
                f"cannot {action} {path!r} on storage system {self.name!r}: {exc}",
                path=path,
                system=self.name,
            ) from exc

    # -- simple operations --------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """Return True if something exists at the catalog path ``path``."""
        backend = self.resolve(path)
        with self._failures("check", path):
            if self.is_local:
                return os.path.lexists(backend)
            return bool(self.fs.exists(backend))

    def makedirs(self, path: str) -> None:
        """Create the directory ``path`` and its parents; an existing directory is fine."""
        backend = self.resolve(path)
        with self._failures("create directory", path):
            self.fs.makedirs(backend, exist_ok=True)

    def open(self, path: str) -> BinaryIO:
        """Open the file at ``path`` for streaming reads (binary).

        Raises:
            NotFoundError: Nothing is stored at ``path``.
            StorageFailureError: The file cannot be opened.
        """
        if self.is_local:
            return self._open_local(path)
        backend = self.resolve(path)
        with self._failures("open", path):
            return cast(BinaryIO, self.fs.open(backend, "rb"))

    def _open_local(self, path: str) -> BinaryIO:
        """Open a local file straight from the operating system, then check where it is.

        fsspec's file object costs more than hashing a small file does. The check looks
        at the file that was opened (``/proc/self/fd`` where there is one), so a link
        swapped in after a check cannot lead the read out of the root; elsewhere it
        falls back to the real path of ``path``.
        """
        validate_path(path)
        backend = self._backend(path)
        with self._failures("open", path):
            # The builtin open (this method shadows the name); the caller closes it.
            stream = io.open(backend, "rb")  # noqa: SIM115, UP020
        try:
            real = _opened_path(stream.fileno()) or os.path.realpath(backend)
            if not self._inside_root(real):
                raise self._outside_root(path, real)
        except BaseException:
            stream.close()
            raise
        return cast(BinaryIO, stream)

    def sha256(self, path: str, *, chunk_size: int = CHUNK_SIZE) -> str:
        """Return the hex SHA-256 of the file at ``path``, reading ``chunk_size`` at a time.

        Raises:
            InvalidRequestError: ``chunk_size`` is not a positive integer.
            NotFoundError: Nothing is stored at ``path``.
            StorageFailureError: The file cannot be read.
        """
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidRequestError(f"chunk_size must be a positive integer, not {chunk_size!r}")
        digest = hashlib.sha256()
        with self.open(path) as stream, self._failures("read", path):
            while chunk := stream.read(chunk_size):
                digest.update(chunk)
        return digest.hexdigest()

    # -- listing ---------------------------------------------------------------------

    def list_files(self, path: str) -> Listing:
        """List the regular files under the directory ``path``, recursively.

        A directory that does not exist gives an empty listing. On local systems,
        symbolic links are followed only when their real target is inside the root;
        other links, special files and unreadable subdirectories are reported in
        :attr:`Listing.skipped`.

        Raises:
            InvalidRequestError: ``path`` is invalid or is a file, not a directory.
            StorageFailureError: The directory itself cannot be listed.
        """
        backend = self.resolve(path)
        if self.is_local:
            return self._list_local(path, backend)
        return self._list_remote(path, backend)

    def _not_a_directory(self, path: str) -> InvalidRequestError:
        return InvalidRequestError(
            f"path {path!r} on storage system {self.name!r} is a file, not a directory",
            path=path,
            system=self.name,
        )

    def _list_remote(self, path: str, backend: str) -> Listing:
        with self._failures("list", path):
            found = cast(
                "dict[str, dict[str, Any]]",
                self.fs.find(backend, withdirs=False, detail=True),
            )
            prefix = backend.rstrip("/") + "/"
            files: list[StoredFile] = []
            for name, info in found.items():
                stripped = str(name)
                if stripped == backend:
                    raise self._not_a_directory(path)
                if not stripped.startswith(prefix) or info.get("type", "file") != "file":
                    continue
                relative = stripped[len(prefix) :]
                size = info.get("size")
                if size is None:
                    size = self.fs.size(stripped)
                files.append(
                    StoredFile(
                        path=_join_catalog(path, relative),
                        relative_path=relative,
                        size=int(size),
                        modified=_modified_from_info(info),
                    )
                )
        files.sort(key=lambda f: f.path)
        return Listing(path=path, files=tuple(files))

    def _list_local(self, path: str, backend: str) -> Listing:
        real_root = self._real_root()
        with self._failures("list", path):
            if not os.path.lexists(backend):
                return Listing(path=path)
            if not os.path.isdir(backend):
                raise self._not_a_directory(path)
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
                skipped.append(
                    SkippedEntry(_join_catalog(path, rel_dir), SKIP_UNREADABLE, str(exc))
                )
                continue
            for entry in children:
                relative = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                catalog = _join_catalog(path, relative)
                try:
                    if entry.is_symlink():
                        real = os.path.realpath(entry.path)
                        if not _within(real_root, real):
                            skipped.append(
                                SkippedEntry(
                                    catalog,
                                    SKIP_SYMLINK_OUTSIDE_ROOT,
                                    f"symbolic link to {real!r}, outside the root "
                                    f"{self.root!r}; not followed",
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

    # -- removal ---------------------------------------------------------------------

    def _removable(self, path: str) -> str:
        """Check ``path`` for removal and return its backend path.

        Removal never follows the last component (a link is unlinked, not entered), so
        on local systems it is the parent directory that must resolve inside the root.
        """
        validate_path(path)
        if path == "/":
            raise InvalidRequestError(
                f"refusing to remove {path!r}: it is the root of storage system {self.name!r}",
                path=path,
                system=self.name,
            )
        if self.is_local:
            self.resolve(posixpath.dirname(path))
        return self._backend(path)

    def put_tree(self, local_dir: str | os.PathLike[str], path: str) -> list[str]:
        """Copy the files under the local directory ``local_dir`` to ``path``, keeping
        their relative paths; return the catalog paths written, sorted.

        Used to upload outputs staged locally for a non-local system. Symbolic links and
        other non-regular files are left out.

        Raises:
            StorageFailureError: A file cannot be read or written.
        """
        base = validate_path(path)
        written: list[str] = []
        root = Path(local_dir)
        with self._failures("upload to", path):
            for current, _dirs, names in os.walk(root):
                for name in sorted(names):
                    local = Path(current) / name
                    if local.is_symlink() or not local.is_file():
                        continue
                    target = _join_catalog(base, local.relative_to(root).as_posix())
                    backend = self.resolve(target)
                    self.fs.makedirs(posixpath.dirname(backend), exist_ok=True)
                    self.fs.put_file(str(local), backend)
                    written.append(target)
        return sorted(written)

    def remove_tree_contents(self, path: str) -> list[str]:
        """Empty the directory ``path``, keeping the directory itself.

        Symbolic links inside are removed as links; their targets are left untouched.
        A missing directory is already empty.

        Returns:
            The catalog paths removed (files, links and directories), sorted.

        Raises:
            InvalidRequestError: ``path`` is invalid, is the root, is a file, or is itself
                a symbolic link.
            StorageFailureError: ``path`` leaves the root through a symbolic link, or a
                removal failed (``details["removed"]`` lists what was already removed).
        """
        backend = self._removable(path)
        if self.is_local:
            with self._failures("inspect", path):
                if os.path.islink(backend):
                    raise InvalidRequestError(
                        f"refusing to empty {path!r} on storage system {self.name!r}: it is "
                        "a symbolic link (remove the link with remove_tree instead)",
                        path=path,
                        system=self.name,
                    )
                if not os.path.lexists(backend):
                    return []
                if not os.path.isdir(backend):
                    raise self._not_a_directory(path)
            return sorted(self._remove_local_contents(path, backend))
        with self._failures("inspect", path):
            if not self.fs.exists(backend):
                return []
            if self.fs.isfile(backend):
                raise self._not_a_directory(path)
        return sorted(self._remove_remote_contents(path, backend))

    def remove_tree(self, path: str) -> list[str]:
        """Remove ``path`` and everything under it (a file or a link is removed alone).

        Returns:
            The catalog paths removed, sorted; empty if nothing was there.

        Raises:
            InvalidRequestError: ``path`` is invalid or is the root.
            StorageFailureError: ``path`` leaves the root through a symbolic link, or a
                removal failed.
        """
        backend = self._removable(path)
        if self.is_local:
            with self._failures("remove", path):
                if not os.path.lexists(backend):
                    return []
                if os.path.islink(backend) or not os.path.isdir(backend):
                    os.unlink(backend)
                    return [path]
            removed = self._remove_local_contents(path, backend)
            with self._failures("remove", path):
                os.rmdir(backend)
            return sorted([*removed, path])
        with self._failures("remove", path):
            if not self.fs.exists(backend):
                return []
            if self.fs.isfile(backend):
                self.fs.rm_file(backend)
                return [path]
        removed = self._remove_remote_contents(path, backend)
        with self._failures("remove", path):
            if self.fs.exists(backend):
                self.fs.rm(backend, recursive=True)
        return sorted([*removed, path])

    def _remove_local_contents(self, path: str, backend: str) -> list[str]:
        removed: list[str] = []

        def fail(exc: OSError) -> None:
            raise exc

        try:
            # Bottom-up and never following links: a link to a directory shows up in
            # ``dirnames`` and is unlinked, not entered.
            for directory, dirnames, filenames in os.walk(
                backend, topdown=False, onerror=fail, followlinks=False
            ):
                rel_dir = os.path.relpath(directory, backend)
                for name in filenames:
                    os.unlink(os.path.join(directory, name))
                    removed.append(self._removed_path(path, rel_dir, name))
                for name in dirnames:
                    full = os.path.join(directory, name)
                    if os.path.islink(full):
                        os.unlink(full)
                    else:
                        os.rmdir(full)
                    removed.append(self._removed_path(path, rel_dir, name))
        except OSError as exc:
            raise StorageFailureError(
                f"cannot empty {path!r} on storage system {self.name!r}: {exc}",
                path=path,
                system=self.name,
                removed=sorted(removed),
            ) from exc
        return removed

    @staticmethod
    def _removed_path(path: str, rel_dir: str, name: str) -> str:
        relative = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
        return _join_catalog(path, relative)

    def _remove_remote_contents(self, path: str, backend: str) -> list[str]:
        prefix = backend.rstrip("/") + "/"
        with self._failures("empty", path):
            found = [str(p) for p in self.fs.find(backend, withdirs=True, detail=False)]
            removed = [_join_catalog(path, p[len(prefix) :]) for p in found if p.startswith(prefix)]
            for child in self.fs.ls(backend, detail=False):
                if str(child).startswith(prefix):
                    self.fs.rm(str(child), recursive=True)
        return removed


def open_system(name: str, url: str) -> StorageSystem:
    """Open the storage system ``name`` rooted at the fsspec ``url``."""
    return StorageSystem(name=name, url=url)


def default_storage_url(data_dir: Path | str) -> str:
    """Return the URL of the default local archive: ``file://<data_dir>/archive``."""
    absolute = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    return "file://" + Path(absolute, "archive").as_posix()


class StorageRegistry:
    """The configured storage systems, by name.

    Args:
        systems: Mapping of system name to fsspec root URL.
        default: Name of the system used when none is named.

    Raises:
        InvalidRequestError: A URL is unusable, or ``default`` is not among ``systems``.
    """

    def __init__(self, *, systems: Mapping[str, str], default: str = DEFAULT_SYSTEM_NAME) -> None:
        self._systems: dict[str, StorageSystem] = {
            name: StorageSystem(name=name, url=url) for name, url in systems.items()
        }
        if default not in self._systems:
            raise InvalidRequestError(
                f"default storage system {default!r} is not configured; "
                f"configured systems: {', '.join(self.names) or '(none)'}",
                system=default,
                known=list(self.names),
            )
        self._default = default

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the configured systems, sorted."""
        return tuple(sorted(self._systems))

    @property
    def default_name(self) -> str:
        """Name of the default system."""
        return self._default

    @property
    def default_system(self) -> StorageSystem:
        """The default system."""
        return self._systems[self._default]

    def __contains__(self, name: object) -> bool:
        return name in self._systems

    def get(self, name: str | None = None) -> StorageSystem:
        """Return the system called ``name`` (the default one when ``name`` is None).

        Raises:
            NotFoundError: No system has that name; the message lists the known ones.
        """
        if name is None:
            return self.default_system
        try:
            return self._systems[name]
        except (KeyError, TypeError):
            raise NotFoundError(
                f"unknown storage system {name!r}; known systems: {', '.join(self.names)}",
                system=name,
                known=list(self.names),
            ) from None

    def __repr__(self) -> str:
        urls = {name: system.url for name, system in sorted(self._systems.items())}
        return f"StorageRegistry(systems={urls!r}, default={self._default!r})"
