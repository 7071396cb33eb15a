"""The storage registry: the configured storage systems, by name."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from datacatalog.errors import InvalidRequestError, NotFoundError
from datacatalog.storage.system import StorageSystem

DEFAULT_SYSTEM_NAME = "local"
"""Name of the storage system used when a job does not name one."""


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

    def local_dir(self, system: str | None, path: str) -> Path | None:
        """The directory on this machine that holds catalog path ``path`` of ``system``,
        or None when that system's storage is not local (an object store, say).

        Raises:
            NotFoundError: No system has that name.
            InvalidRequestError: ``path`` is not a valid catalog path.
        """
        found = self.get(system)
        local = found.local_path(path)
        return None if local is None else Path(local)

    def __repr__(self) -> str:
        urls = {name: system.url for name, system in sorted(self._systems.items())}
        return f"StorageRegistry(systems={urls!r}, default={self._default!r})"
