"""The root error of the pipeline-jobs API.

:class:`ManagedPipelineJobError` *is* :class:`datacatalog.errors.DataCatalogError`,
under the name the replaced system used. Every error this API raises is therefore a
``ManagedPipelineJobError`` and keeps its category, so callers may catch the root or a
category::

    try:
        job.finish()
    except InvalidTransitionError:      # the job was not RUNNING
        ...
    except ManagedPipelineJobError:     # anything else from the catalog
        ...
"""

from __future__ import annotations

from datacatalog.errors import (
    ConflictError,
    DataCatalogError,
    ForbiddenError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    PayloadTooLargeError,
    StorageFailureError,
    UnauthorizedError,
    UnavailableError,
)

ManagedPipelineJobError = DataCatalogError
"""An error happened in the context of a managed pipeline job (the root of every error)."""

__all__ = [
    "ConflictError",
    "ForbiddenError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "ManagedPipelineJobError",
    "NotFoundError",
    "PayloadTooLargeError",
    "StorageFailureError",
    "UnauthorizedError",
    "UnavailableError",
]
