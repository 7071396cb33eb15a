"""The storage system: one named root, opened from an fsspec URL.

Safety rules, applied by every operation:

- a catalog path must be absolute and normalized, without ``..`` components or NUL
  characters (:class:`~datacatalog.errors.InvalidRequestError` otherwise);
- on local (``file://``) systems, the real path (:func:`os.path.realpath`) of anything
  read, listed, created or removed must lie inside the real root; a path that leaves the
  root through a symbolic link is refused (:class:`~datacatalog.errors.StorageFailureError`);
- listings never follow a symbolic link whose target is outside the root
  (:mod:`datacatalog.storage.listing`);
- removals never follow symbolic links: a link inside the root is removed as a link and
  its target is left alone, and the root itself can never be removed or emptied
  (:mod:`datacatalog.storage.removal`).

Object stores (memory, S3) have no symbolic links, so only the path rules apply there.
Filesystem failures surface as :class:`~datacatalog.errors.StorageFailureError` naming
the path (a missing file that was asked for by name is a
:class:`~datacatalog.errors.NotFoundError`).

Local (``file://``) systems take fast paths that skip fsspec: a plain root needs no
fsspec until a file is touched, and reads open files straight from the operating system.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from datacatalog.errors import InvalidRequestError
from datacatalog.storage import removal
from datacatalog.storage.failures import failures, outside_root
from datacatalog.storage.listing import Listing, list_local, list_remote
from datacatalog.storage.paths import (
    backend_path,
    join_catalog,
    plain_file_root,
    validate_path,
    within,
)

CHUNK_SIZE = 1024 * 1024
"""Default read size when hashing: files are streamed, never read whole."""


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
        plain = plain_file_root(self.url)
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
        return backend_path(self.root, path)

    def _real_root(self) -> str:
        return os.path.realpath(self.root)

    def _inside_root(self, real: str) -> bool:
        """True if the real path ``real`` lies inside the real root.

        The real root is remembered between calls (working it out again costs a system
        call per component, for every file read); a path that seems outside is checked
        against a fresh one, so a root that was moved or re-linked is still judged right.
        """
        remembered = self._real_root_cache
        if remembered and within(remembered[0], real):
            return True
        fresh = self._real_root()
        object.__setattr__(self, "_real_root_cache", (fresh,))
        return within(fresh, real)

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
                raise outside_root(self.name, self.root, path, real)
        return backend

    # -- simple operations --------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """Return True if something exists at the catalog path ``path``."""
        backend = self.resolve(path)
        with failures(self.name, "check", path):
            if self.is_local:
                return os.path.lexists(backend)
            return bool(self.fs.exists(backend))

    def makedirs(self, path: str) -> None:
        """Create the directory ``path`` and its parents; an existing directory is fine."""
        backend = self.resolve(path)
        with failures(self.name, "create directory", path):
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
        with failures(self.name, "open", path):
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
        with failures(self.name, "open", path):
            # The builtin open (this method shadows the name); the caller closes it.
            stream = io.open(backend, "rb")  # noqa: SIM115, UP020
        try:
            real = opened_path(stream.fileno()) or os.path.realpath(backend)
            if not self._inside_root(real):
                raise outside_root(self.name, self.root, path, real)
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
        with self.open(path) as stream, failures(self.name, "read", path):
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
            return list_local(self, path, backend)
        return list_remote(self, path, backend)

    # -- uploading and removal -------------------------------------------------------

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
        with failures(self.name, "upload to", path):
            for current, _dirs, names in os.walk(root):
                for name in sorted(names):
                    local = Path(current) / name
                    if local.is_symlink() or not local.is_file():
                        continue
                    target = join_catalog(base, local.relative_to(root).as_posix())
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
        return removal.remove_tree_contents(self, path)

    def remove_tree(self, path: str) -> list[str]:
        """Remove ``path`` and everything under it (a file or a link is removed alone).

        Returns:
            The catalog paths removed, sorted; empty if nothing was there.

        Raises:
            InvalidRequestError: ``path`` is invalid or is the root.
            StorageFailureError: ``path`` leaves the root through a symbolic link, or a
                removal failed.
        """
        return removal.remove_tree(self, path)


def open_system(name: str, url: str) -> StorageSystem:
    """Open the storage system ``name`` rooted at the fsspec ``url``."""
    return StorageSystem(name=name, url=url)


def opened_path(fd: int) -> str | None:
    """The real path of the open file ``fd`` (None where the system cannot tell)."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return real if real.startswith("/") and not real.endswith(" (deleted)") else None
