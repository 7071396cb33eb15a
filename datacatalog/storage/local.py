"""The local backend: a root on this machine's filesystem, reached straight through ``os``.

Local filesystems have symbolic links, so every path is checked where it really leads:

- the real path (:func:`os.path.realpath`) of anything read, listed or created must lie
  inside the real root; a path that leaves the root through a symbolic link is refused
  (:class:`~datacatalog.errors.StorageFailureError`);
- listings follow a link only when its real target is inside the root, and report the
  others (and broken links, loops, special files, unreadable directories) as skipped;
- removals never follow a link: a link is unlinked and its target left alone, and it is
  the parent of what is removed that must resolve inside the root.

The operations skip fsspec, whose file objects cost more than hashing a small file does:
files are opened with the builtin ``open``, trees are walked with :func:`os.scandir`, and
the real root is remembered between calls. The fsspec filesystem is made only when a
caller asks for :attr:`LocalBackend.fs`.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import posixpath
import shutil
import stat
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, cast

from datacatalog.errors import InvalidRequestError, StorageFailureError
from datacatalog.storage.failures import failures, not_a_directory, outside_root
from datacatalog.storage.listing import (
    SKIP_BROKEN_SYMLINK,
    SKIP_NOT_REGULAR,
    SKIP_SYMLINK_LOOP,
    SKIP_SYMLINK_OUTSIDE_ROOT,
    SKIP_UNREADABLE,
    Listing,
    SkippedEntry,
    StoredFile,
)
from datacatalog.storage.paths import backend_path, join_catalog, within


class LocalBackend:
    """A storage root on the local filesystem.

    Args:
        system: The storage system's name, for error messages.
        root: The root directory (no trailing ``/``).
        fs: The fsspec filesystem the URL gave, if it was opened through fsspec.
    """

    def __init__(self, system: str, root: str, fs: Any = None) -> None:
        self.system = system
        self.root = root
        self._fs = fs
        self._real_root: str | None = None

    @property
    def is_local(self) -> bool:
        """True: symbolic links exist here and are checked."""
        return True

    @property
    def fs(self) -> Any:
        """An fsspec filesystem on the root's machine (made on first use)."""
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            self._fs = LocalFileSystem()
        return self._fs

    # -- paths -----------------------------------------------------------------------

    def resolve(self, path: str) -> str:
        """The backend path of the valid catalog path ``path``, checked to stay in the root."""
        backend = backend_path(self.root, path)
        self._check_inside(path, os.path.realpath(backend))
        return backend

    def local_path(self, path: str) -> str | None:
        """The path on this machine of the valid catalog path ``path``."""
        return self.resolve(path)

    def _check_inside(self, path: str, real: str) -> None:
        if not self._inside_root(real):
            raise outside_root(self.system, self.root, path, real)

    def _inside_root(self, real: str) -> bool:
        """True if the real path ``real`` lies inside the real root.

        The real root is remembered between calls (working it out again costs a system
        call per component, for every file read); a path that seems outside is checked
        against a fresh one, so a root that was moved or re-linked is still judged right.
        """
        remembered = self._real_root
        if remembered is not None and within(remembered, real):
            return True
        fresh = os.path.realpath(self.root)
        self._real_root = fresh
        return within(fresh, real)

    # -- simple operations -----------------------------------------------------------

    def exists(self, path: str) -> bool:
        """True if anything, a broken link included, is at ``path``."""
        backend = self.resolve(path)
        with failures(self.system, "check", path):
            return os.path.lexists(backend)

    def makedirs(self, path: str) -> None:
        """Create the directory ``path`` and its parents."""
        backend = self.resolve(path)
        with failures(self.system, "create directory", path):
            os.makedirs(backend, exist_ok=True)

    def open(self, path: str) -> BinaryIO:
        """Open the file at ``path`` straight from the operating system, then check where it is.

        The check looks at the file that was opened (``/proc/self/fd`` where there is
        one), so a link swapped in after a check cannot lead the read out of the root;
        elsewhere it falls back to the real path of ``path``.
        """
        backend = backend_path(self.root, path)
        with failures(self.system, "open", path):
            # The builtin open (this method shadows the name); the caller closes it.
            stream = io.open(backend, "rb")  # noqa: SIM115, UP020
        try:
            self._check_inside(path, _opened_path(stream.fileno()) or os.path.realpath(backend))
        except BaseException:
            stream.close()
            raise
        return cast(BinaryIO, stream)

    def put_file(self, source: Path, path: str) -> None:
        """Copy the local file ``source`` to ``path``, creating its directory."""
        backend = self.resolve(path)
        os.makedirs(posixpath.dirname(backend), exist_ok=True)
        shutil.copyfile(source, backend)

    # -- listing ---------------------------------------------------------------------

    def list_files(self, path: str) -> Listing:
        """List the tree under ``path``, following only links that stay inside the root."""
        backend = self.resolve(path)
        walk = _Walk(path, self.root, os.path.realpath(self.root))
        with failures(self.system, "list", path):
            if not os.path.lexists(backend):
                return Listing(path=path)
            if not os.path.isdir(backend):
                raise not_a_directory(self.system, path)
            # Fail loudly if the top directory itself cannot be read.
            os.scandir(backend).close()
        return walk.run(backend)

    # -- removal ---------------------------------------------------------------------

    def remove_tree_contents(self, path: str) -> list[str]:
        """Empty the directory ``path`` (not the root; checked by the system)."""
        backend = self._removable(path)
        with failures(self.system, "inspect", path):
            if os.path.islink(backend):
                raise InvalidRequestError(
                    f"refusing to empty {path!r} on storage system {self.system!r}: it is "
                    "a symbolic link (remove the link with remove_tree instead)",
                    path=path,
                    system=self.system,
                )
            if not os.path.lexists(backend):
                return []
            if not os.path.isdir(backend):
                raise not_a_directory(self.system, path)
        return self._remove_contents(path, backend)

    def remove_tree(self, path: str) -> list[str]:
        """Remove ``path`` and everything under it; a file or a link is removed alone."""
        backend = self._removable(path)
        with failures(self.system, "remove", path):
            if not os.path.lexists(backend):
                return []
            if os.path.islink(backend) or not os.path.isdir(backend):
                os.unlink(backend)
                return [path]
        removed = self._remove_contents(path, backend)
        with failures(self.system, "remove", path):
            os.rmdir(backend)
        return [*removed, path]

    def _removable(self, path: str) -> str:
        # Removal never follows the last component (a link is unlinked, not entered),
        # so it is the parent directory that must resolve inside the root.
        self.resolve(posixpath.dirname(path))
        return backend_path(self.root, path)

    def _remove_contents(self, path: str, backend: str) -> list[str]:
        removed: list[str] = []
        try:
            _remove_bottom_up(path, backend, removed)
        except OSError as exc:
            raise StorageFailureError(
                f"cannot empty {path!r} on storage system {self.system!r}: {exc}",
                path=path,
                system=self.system,
                removed=sorted(removed),
            ) from exc
        return removed


def _remove_bottom_up(path: str, backend: str, removed: list[str]) -> None:
    """Remove what is under ``backend``, appending the catalog paths removed to ``removed``."""

    def fail(exc: OSError) -> None:
        raise exc

    # Bottom-up and never following links: a link to a directory shows up in
    # ``dirnames`` and is unlinked, not entered.
    for directory, dirnames, filenames in os.walk(
        backend, topdown=False, onerror=fail, followlinks=False
    ):
        rel_dir = os.path.relpath(directory, backend)
        for name in filenames:
            os.unlink(os.path.join(directory, name))
            removed.append(_removed_path(path, rel_dir, name))
        for name in dirnames:
            full = os.path.join(directory, name)
            if os.path.islink(full):
                os.unlink(full)
            else:
                os.rmdir(full)
            removed.append(_removed_path(path, rel_dir, name))


def _removed_path(path: str, rel_dir: str, name: str) -> str:
    relative = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
    return join_catalog(path, relative)


class _Walk:
    """One listing of a local tree: an iterative :func:`os.scandir` walk.

    Args:
        path: The catalog path listed.
        root: The system's root, for messages.
        real_root: The real path of the root, which followed links must stay inside.
    """

    def __init__(self, path: str, root: str, real_root: str) -> None:
        self.path = path
        self.root = root
        self.real_root = real_root
        self.files: list[StoredFile] = []
        self.skipped: list[SkippedEntry] = []
        # (backend directory, path relative to the listed one, the real paths of the
        # directories above it, to stop symlink loops)
        self.stack: list[tuple[str, str, frozenset[str]]] = []

    def run(self, backend: str) -> Listing:
        """Walk the tree under the directory ``backend`` and return what was found."""
        self.stack.append((backend, "", frozenset({os.path.realpath(backend)})))
        while self.stack:
            directory, rel_dir, ancestors = self.stack.pop()
            for entry in self._children(directory, rel_dir):
                self._visit(entry, rel_dir, ancestors)
        self.files.sort(key=lambda f: f.path)
        self.skipped.sort(key=lambda s: s.path)
        return Listing(path=self.path, files=tuple(self.files), skipped=tuple(self.skipped))

    def _skip(self, relative: str, reason: str, detail: str) -> None:
        self.skipped.append(SkippedEntry(join_catalog(self.path, relative), reason, detail))

    def _children(self, directory: str, rel_dir: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(directory) as entries:
                return list(entries)
        except OSError as exc:
            self._skip(rel_dir, SKIP_UNREADABLE, str(exc))
            return []

    def _visit(self, entry: os.DirEntry[str], rel_dir: str, ancestors: frozenset[str]) -> None:
        relative = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        info = self._stat(entry, relative)
        if info is None:
            return
        if stat.S_ISDIR(info.st_mode):
            real_dir = os.path.realpath(entry.path)
            if real_dir in ancestors:
                detail = f"symbolic link back to an enclosing directory {real_dir!r}"
                self._skip(relative, SKIP_SYMLINK_LOOP, detail)
            else:
                self.stack.append((entry.path, relative, ancestors | {real_dir}))
        elif stat.S_ISREG(info.st_mode):
            self.files.append(
                StoredFile(
                    path=join_catalog(self.path, relative),
                    relative_path=relative,
                    size=info.st_size,
                    modified=datetime.fromtimestamp(info.st_mtime, tz=timezone.utc),
                )
            )
        else:
            self._skip(relative, SKIP_NOT_REGULAR, "not a regular file (device, socket or pipe)")

    def _stat(self, entry: os.DirEntry[str], relative: str) -> os.stat_result | None:
        """What ``entry`` is, following a link only inside the root (None: skipped)."""
        try:
            if not entry.is_symlink():
                return entry.stat(follow_symlinks=False)
            real = os.path.realpath(entry.path)
            if not within(self.real_root, real):
                detail = f"symbolic link to {real!r}, outside the root {self.root!r}; not followed"
                self._skip(relative, SKIP_SYMLINK_OUTSIDE_ROOT, detail)
                return None
            if not os.path.exists(entry.path):
                self._skip(relative, SKIP_BROKEN_SYMLINK, f"symbolic link to missing {real!r}")
                return None
            return os.stat(entry.path)
        except OSError as exc:
            self._skip(relative, SKIP_UNREADABLE, str(exc))
            return None


_DIRECTORY_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
MAX_OPEN_DIRECTORIES = 8
"""Directories each reading thread of a :class:`DirectoryReader` keeps open."""


class DirectoryReader:
    """Reads many files of one local root, opening each directory once.

    Checking where a file really is costs a ``readlink`` of ``/proc/self/fd`` per file,
    more than reading a small file. Here each directory is opened once
    (``O_DIRECTORY``, links followed) and its real path checked against the root once;
    its files are opened relative to that open directory with ``O_NOFOLLOW``. The open
    directory stays the directory that was checked whatever is renamed or linked
    afterwards, and a file's last component cannot be a link, so no read leaves the
    root. For a file that is a link (``ELOOP``), or on a system without ``dir_fd``
    support or ``/proc/self/fd``, :meth:`sha256` says so (None), and the file is read
    through :meth:`LocalBackend.open`, which checks the opened file.

    Each thread keeps its own few directories open (at most
    :data:`MAX_OPEN_DIRECTORIES`, the least recently used closed first), so a directory
    is never closed under another thread; :meth:`close` closes them all, once the
    threads are done. A context manager.
    """

    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self._local = threading.local()
        self._lock = threading.Lock()
        self._caches: list[OrderedDict[str, int]] = []
        self._usable = (
            hasattr(os, "O_NOFOLLOW")
            and hasattr(os, "O_DIRECTORY")
            and os.open in os.supports_dir_fd
        )

    def sha256(self, path: str, chunk_size: int) -> str | None:
        """The hex SHA-256 of the file at the valid catalog path ``path``; None when the
        file is to be read the backend's way (a link, or no way to check a directory)."""
        fd = self._open(path)
        if fd is None:
            return None
        try:
            digest = hashlib.sha256()
            with failures(self._backend.system, "read", path):
                while chunk := os.read(fd, chunk_size):
                    digest.update(chunk)
            return digest.hexdigest()
        finally:
            os.close(fd)

    def _open(self, path: str) -> int | None:
        """A descriptor of the file at ``path``, opened inside its checked directory; None
        when the file must be opened the backend's way."""
        if not self._usable:
            return None
        parent, _slash, name = path.rpartition("/")
        directory = self._directory(parent or "/", path)
        if directory is None:
            return None
        with failures(self._backend.system, "open", path):
            try:
                return os.open(name, _FILE_FLAGS, dir_fd=directory)
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # the file is a link: check where it leads
                    return None
                raise

    def _directory(self, parent: str, path: str) -> int | None:
        """The open, checked directory ``parent`` (for reading ``path``), from this
        thread's cache; None where the system cannot say where it is."""
        cache: OrderedDict[str, int] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = OrderedDict()
            with self._lock:
                self._caches.append(cache)
        fd = cache.get(parent)
        if fd is not None:
            cache.move_to_end(parent)
            return fd
        backend = self._backend
        with failures(backend.system, "open", path):
            fd = os.open(backend_path(backend.root, parent), _DIRECTORY_FLAGS)
        real = _opened_path(fd)
        if real is None:
            os.close(fd)
            self._usable = False  # no /proc/self/fd here: every file the backend's way
            return None
        try:
            backend._check_inside(path, posixpath.join(real, path.rpartition("/")[2]))
        except BaseException:
            os.close(fd)
            raise
        cache[parent] = fd
        if len(cache) > MAX_OPEN_DIRECTORIES:
            _oldest, evicted = cache.popitem(last=False)
            os.close(evicted)
        return fd

    def close(self) -> None:
        """Close every directory still open (call it once no thread reads any more)."""
        with self._lock:
            caches, self._caches = self._caches, []
        for cache in caches:
            while cache:
                _parent, fd = cache.popitem()
                os.close(fd)

    def __enter__(self) -> DirectoryReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _opened_path(fd: int) -> str | None:
    """The real path of the open file ``fd`` (None where the system cannot tell)."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return real if real.startswith("/") and not real.endswith(" (deleted)") else None
