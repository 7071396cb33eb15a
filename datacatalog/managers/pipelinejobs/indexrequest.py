"""Index requests, under the import path of the replaced system.

The classes live in :mod:`datacatalog.indexrequests`; see there for their fields.
"""

from __future__ import annotations

from datacatalog.indexrequests import (
    ArchiveIndexRequest,
    IndexingError,
    IndexRequest,
    IndexType,
    InvalidIndexingRequest,
    ProductIndexRequest,
)

__all__ = [
    "ArchiveIndexRequest",
    "IndexRequest",
    "IndexType",
    "IndexingError",
    "InvalidIndexingRequest",
    "ProductIndexRequest",
]
