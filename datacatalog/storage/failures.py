"""Filesystem failures as catalog errors naming the storage system and the path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from datacatalog.errors import (
    DataCatalogError,
    InvalidRequestError,
    NotFoundError,
    StorageFailureError,
)


@contextmanager
def failures(system: str, action: str, path: str) -> Iterator[None]:
    """Turn filesystem errors raised inside the block into catalog errors."""
    try:
        yield
    except DataCatalogError:
        raise
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"cannot {action} {path!r} on storage system {system!r}: no such file or directory",
            path=path,
            system=system,
        ) from exc
    except OSError as exc:
        raise StorageFailureError(
            f"cannot {action} {path!r} on storage system {system!r}: {exc}",
            path=path,
            system=system,
        ) from exc


def not_a_directory(system: str, path: str) -> InvalidRequestError:
    """The error for a directory operation on the file at ``path``."""
    return InvalidRequestError(
        f"path {path!r} on storage system {system!r} is a file, not a directory",
        path=path,
        system=system,
    )


def outside_root(system: str, root: str, path: str, real: str) -> StorageFailureError:
    """The error for ``path``, whose real path ``real`` leaves the system's ``root``."""
    return StorageFailureError(
        f"path {path!r} on storage system {system!r} resolves to {real!r}, "
        f"outside the system's root {root!r} (through a symbolic link); "
        "refusing to use it",
        path=path,
        system=system,
    )
