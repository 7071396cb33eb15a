"""Storage systems: named roots on a filesystem or object store, reached through fsspec.

A *storage system* is a name mapped to an fsspec URL that is its root::

    local    -> file:///var/lib/datacatalog/archive
    scratch  -> memory://catalog-archive
    cloud    -> s3://bucket/prefix            (when s3fs is installed)

Paths handed to a storage system are *catalog paths*: absolute, normalized POSIX paths;
the real location is the root followed by the catalog path, so the same job layout works
on every backend. Nothing here imports fsspec until a system needs it.

The package's modules, one concept each:

- :mod:`~datacatalog.storage.registry`: :class:`StorageRegistry`, the configured systems
  by name, and the default local archive's URL;
- :mod:`~datacatalog.storage.system`: :class:`StorageSystem`, one root: the rules every
  backend shares (valid catalog paths, the root never removed), hashing (many files in
  a row with a :class:`FileReader`), uploading; it picks its backend once, from the URL;
- :mod:`~datacatalog.storage.local`: the local backend, straight through ``os``: real
  paths kept inside the real root, listings by :func:`os.scandir`, removals that never
  follow a link;
- :mod:`~datacatalog.storage.remote`: the remote backend, an object store through fsspec;
- :mod:`~datacatalog.storage.paths`: checking catalog paths and mapping them to backend
  paths;
- :mod:`~datacatalog.storage.listing`: what a listing is: :class:`Listing`,
  :class:`StoredFile`, :class:`SkippedEntry` and the reasons an entry is skipped;
- :mod:`~datacatalog.storage.failures`: filesystem errors as catalog errors.
"""

from __future__ import annotations

from datacatalog.storage import listing
from datacatalog.storage.listing import *  # noqa: F403 - re-exported: listing.__all__
from datacatalog.storage.paths import validate_path
from datacatalog.storage.registry import DEFAULT_SYSTEM_NAME, StorageRegistry, default_storage_url
from datacatalog.storage.system import CHUNK_SIZE, FileReader, StorageSystem, open_system

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_SYSTEM_NAME",
    "FileReader",
    "StorageRegistry",
    "StorageSystem",
    "default_storage_url",
    "open_system",
    "validate_path",
]
__all__ += listing.__all__
