"""The storage system: one named root, opened from an fsspec URL, on the backend it names.

The URL is looked at once, when the system is made, and picks the backend every
operation goes to:

- a local root (``file://``, or any URL fsspec opens on this machine's filesystem):
  :class:`~datacatalog.storage.local.LocalBackend`, straight through ``os``, where the
  real path of anything read, listed, created or removed must lie inside the real root
  and removals never follow a symbolic link;
- anything else (memory, S3, ...): :class:`~datacatalog.storage.remote.RemoteBackend`,
  through fsspec; object stores have no symbolic links, so only the path rules apply.

The system applies the rules every backend shares: a catalog path must be absolute and
normalized, without ``..`` components or NUL characters
(:class:`~datacatalog.errors.InvalidRequestError` otherwise), and the root itself can
never be removed or emptied. Filesystem failures surface as
:class:`~datacatalog.errors.StorageFailureError` naming the path (a missing file that was
asked for by name is a :class:`~datacatalog.errors.NotFoundError`).

A plain ``file:///absolute/path`` root needs no fsspec at all until a caller asks for
:attr:`StorageSystem.fs`, so a command that only reads the catalog never imports it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from datacatalog.errors import InvalidRequestError
from datacatalog.storage.failures import failures
from datacatalog.storage.listing import Listing
from datacatalog.storage.local import DirectoryReader, LocalBackend
from datacatalog.storage.paths import join_catalog, plain_file_root, validate_path
from datacatalog.storage.remote import RemoteBackend

CHUNK_SIZE = 1024 * 1024
"""Default read size when hashing: files are streamed, never read whole."""


class Backend(Protocol):
    """What a storage system asks of its backend: operations on valid catalog paths."""

    @property
    def is_local(self) -> bool: ...

    @property
    def fs(self) -> Any: ...

    def resolve(self, path: str) -> str: ...

    def local_path(self, path: str) -> str | None: ...

    def exists(self, path: str) -> bool: ...

    def makedirs(self, path: str) -> None: ...

    def open(self, path: str) -> BinaryIO: ...

    def put_file(self, source: Path, path: str) -> None: ...

    def list_files(self, path: str) -> Listing: ...

    def remove_tree_contents(self, path: str) -> list[str]: ...

    def remove_tree(self, path: str) -> list[str]: ...


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
    _backend: Backend = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidRequestError(
                f"storage system name must be a non-empty string, not {self.name!r}"
            )
        if not isinstance(self.url, str) or not self.url:
            raise InvalidRequestError(
                f"storage system {self.name!r} needs a non-empty URL, not {self.url!r}"
            )
        backend = open_backend(self.name, self.url)
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "root", backend.root)

    @classmethod
    def from_url(cls, name: str, url: str) -> StorageSystem:
        """Open the storage system ``name`` rooted at ``url``."""
        return cls(name=name, url=url)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (a plain local one is made on first use)."""
        return self._backend.fs

    @property
    def is_local(self) -> bool:
        """True for local filesystems, where symbolic links exist and are checked."""
        return self._backend.is_local

    # -- paths -----------------------------------------------------------------------

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
        return self._backend.resolve(validate_path(path))

    def local_path(self, path: str) -> str | None:
        """The path on this machine of the catalog path ``path``, checked as
        :meth:`resolve` does; None when the system's storage is not local.

        Raises:
            InvalidRequestError: ``path`` is not a valid catalog path.
            StorageFailureError: ``path`` leaves the root through a symbolic link.
        """
        return self._backend.local_path(validate_path(path))

    # -- simple operations --------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """Return True if something exists at the catalog path ``path``."""
        return self._backend.exists(validate_path(path))

    def makedirs(self, path: str) -> None:
        """Create the directory ``path`` and its parents; an existing directory is fine."""
        self._backend.makedirs(validate_path(path))

    def open(self, path: str) -> BinaryIO:
        """Open the file at ``path`` for streaming reads (binary).

        Raises:
            NotFoundError: Nothing is stored at ``path``.
            StorageFailureError: The file cannot be opened.
        """
        return self._backend.open(validate_path(path))

    def sha256(self, path: str, *, chunk_size: int = CHUNK_SIZE) -> str:
        """Return the hex SHA-256 of the file at ``path``, reading ``chunk_size`` at a time.

        Raises:
            InvalidRequestError: ``chunk_size`` is not a positive integer.
            NotFoundError: Nothing is stored at ``path``.
            StorageFailureError: The file cannot be read.
        """
        _check_chunk_size(chunk_size)
        digest = hashlib.sha256()
        with self.open(path) as stream, failures(self.name, "read", path):
            while chunk := stream.read(chunk_size):
                digest.update(chunk)
        return digest.hexdigest()

    def reader(self) -> FileReader:
        """A :class:`FileReader` for hashing many files of this system in a row."""
        return FileReader(self)

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
        return self._backend.list_files(validate_path(path))

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
                    self._backend.put_file(local, target)
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
        return sorted(self._backend.remove_tree_contents(self._removable(path)))

    def remove_tree(self, path: str) -> list[str]:
        """Remove ``path`` and everything under it (a file or a link is removed alone).

        Returns:
            The catalog paths removed, sorted; empty if nothing was there.

        Raises:
            InvalidRequestError: ``path`` is invalid or is the root.
            StorageFailureError: ``path`` leaves the root through a symbolic link, or a
                removal failed.
        """
        return sorted(self._backend.remove_tree(self._removable(path)))

    def _removable(self, path: str) -> str:
        validate_path(path)
        if path == "/":
            raise InvalidRequestError(
                f"refusing to remove {path!r}: it is the root of storage system {self.name!r}",
                path=path,
                system=self.name,
            )
        return path


class FileReader:
    """Hashes many files of one storage system; a context manager (close it when done).

    It gives the digests :meth:`StorageSystem.sha256` gives, with the same errors. On a
    local system each directory is opened and checked once
    (:class:`~datacatalog.storage.local.DirectoryReader`), which is what hashing small
    files spends most on otherwise; :meth:`sha256` may be called from several threads.
    """

    def __init__(self, system: StorageSystem) -> None:
        self._system = system
        backend = system._backend
        self._local = DirectoryReader(backend) if isinstance(backend, LocalBackend) else None

    def sha256(self, path: str, *, chunk_size: int = CHUNK_SIZE) -> str:
        """The hex SHA-256 of the file at ``path`` (see :meth:`StorageSystem.sha256`)."""
        if self._local is not None:
            _check_chunk_size(chunk_size)
            digest = self._local.sha256(validate_path(path), chunk_size)
            if digest is not None:
                return digest
        return self._system.sha256(path, chunk_size=chunk_size)

    def close(self) -> None:
        """Close what the reader keeps open (once no thread reads any more)."""
        if self._local is not None:
            self._local.close()

    def __enter__(self) -> FileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_chunk_size(chunk_size: object) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidRequestError(f"chunk_size must be a positive integer, not {chunk_size!r}")


def open_system(name: str, url: str) -> StorageSystem:
    """Open the storage system ``name`` rooted at the fsspec ``url``."""
    return StorageSystem(name=name, url=url)


def open_backend(name: str, url: str) -> LocalBackend | RemoteBackend:
    """The backend of the storage system ``name`` rooted at ``url``.

    Raises:
        InvalidRequestError: fsspec cannot open ``url``.
    """
    plain = plain_file_root(url)
    if plain is not None:
        # A plain local root needs no fsspec until a file is touched through it, so a
        # command that only reads the catalog never imports it.
        return LocalBackend(name, plain)
    import fsspec.core
    from fsspec.implementations.local import LocalFileSystem

    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as exc:
        raise InvalidRequestError(
            f"storage system {name!r} has an unusable URL {url!r}: {exc}",
            system=name,
            url=url,
        ) from exc
    root = str(root)
    if root not in ("", "/"):
        root = root.rstrip("/")
    if isinstance(fs, LocalFileSystem):
        return LocalBackend(name, root, fs)
    return RemoteBackend(name, root, fs)
