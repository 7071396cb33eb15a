"""Removing trees from a storage system without ever following a symbolic link.

A link inside the root is removed as a link and its target is left alone, and the root
itself can never be removed or emptied.
"""

from __future__ import annotations

import os
import posixpath
from typing import TYPE_CHECKING

from datacatalog.errors import InvalidRequestError, StorageFailureError
from datacatalog.storage.failures import failures, not_a_directory
from datacatalog.storage.paths import backend_path, join_catalog, validate_path

if TYPE_CHECKING:
    from datacatalog.storage.system import StorageSystem


def removable(system: StorageSystem, path: str) -> str:
    """Check ``path`` for removal and return its backend path.

    Removal never follows the last component (a link is unlinked, not entered), so
    on local systems it is the parent directory that must resolve inside the root.
    """
    validate_path(path)
    if path == "/":
        raise InvalidRequestError(
            f"refusing to remove {path!r}: it is the root of storage system {system.name!r}",
            path=path,
            system=system.name,
        )
    if system.is_local:
        system.resolve(posixpath.dirname(path))
    return backend_path(system.root, path)


def remove_tree_contents(system: StorageSystem, path: str) -> list[str]:
    """Empty the directory ``path`` (what :meth:`StorageSystem.remove_tree_contents` does)."""
    backend = removable(system, path)
    if system.is_local:
        with failures(system.name, "inspect", path):
            if os.path.islink(backend):
                raise InvalidRequestError(
                    f"refusing to empty {path!r} on storage system {system.name!r}: it is "
                    "a symbolic link (remove the link with remove_tree instead)",
                    path=path,
                    system=system.name,
                )
            if not os.path.lexists(backend):
                return []
            if not os.path.isdir(backend):
                raise not_a_directory(system.name, path)
        return sorted(_remove_local_contents(system, path, backend))
    with failures(system.name, "inspect", path):
        if not system.fs.exists(backend):
            return []
        if system.fs.isfile(backend):
            raise not_a_directory(system.name, path)
    return sorted(_remove_remote_contents(system, path, backend))


def remove_tree(system: StorageSystem, path: str) -> list[str]:
    """Remove ``path`` and everything under it (what :meth:`StorageSystem.remove_tree` does)."""
    backend = removable(system, path)
    if system.is_local:
        with failures(system.name, "remove", path):
            if not os.path.lexists(backend):
                return []
            if os.path.islink(backend) or not os.path.isdir(backend):
                os.unlink(backend)
                return [path]
        removed = _remove_local_contents(system, path, backend)
        with failures(system.name, "remove", path):
            os.rmdir(backend)
        return sorted([*removed, path])
    with failures(system.name, "remove", path):
        if not system.fs.exists(backend):
            return []
        if system.fs.isfile(backend):
            system.fs.rm_file(backend)
            return [path]
    removed = _remove_remote_contents(system, path, backend)
    with failures(system.name, "remove", path):
        if system.fs.exists(backend):
            system.fs.rm(backend, recursive=True)
    return sorted([*removed, path])


def _remove_local_contents(system: StorageSystem, path: str, backend: str) -> list[str]:
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
                removed.append(_removed_path(path, rel_dir, name))
            for name in dirnames:
                full = os.path.join(directory, name)
                if os.path.islink(full):
                    os.unlink(full)
                else:
                    os.rmdir(full)
                removed.append(_removed_path(path, rel_dir, name))
    except OSError as exc:
        raise StorageFailureError(
            f"cannot empty {path!r} on storage system {system.name!r}: {exc}",
            path=path,
            system=system.name,
            removed=sorted(removed),
        ) from exc
    return removed


def _removed_path(path: str, rel_dir: str, name: str) -> str:
    relative = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
    return join_catalog(path, relative)


def _remove_remote_contents(system: StorageSystem, path: str, backend: str) -> list[str]:
    prefix = backend.rstrip("/") + "/"
    with failures(system.name, "empty", path):
        found = [str(p) for p in system.fs.find(backend, withdirs=True, detail=False)]
        removed = [join_catalog(path, p[len(prefix) :]) for p in found if p.startswith(prefix)]
        for child in system.fs.ls(backend, detail=False):
            if str(child).startswith(prefix):
                system.fs.rm(str(child), recursive=True)
    return removed
