"""Errors: one root, a few categories that tell the caller what to do.

Every error raised by the library is a :class:`DataCatalogError`. Its category
(the subclass) says what the caller can do about it, and carries a stable
machine ``code`` that the command line maps to an exit code and the HTTP
service maps to a status. The mapping lives in :data:`ERROR_TABLE`, the one
place both read from.

==================  =====================  =========  ===========
category            code                   exit code  HTTP status
==================  =====================  =========  ===========
InvalidRequest      ``invalid_request``    2          400
PayloadTooLarge     ``payload_too_large``  2          413
NotFound            ``not_found``          3          404
InvalidTransition   ``invalid_transition`` 4          409
Conflict            ``conflict``           5          409
LeaseLost           ``lease_lost``         5          409
ActiveExecutions    ``active_executions``  9          409
StaleOutputs        ``stale_outputs``      10         409
Unauthorized        ``unauthorized``       6          401
Forbidden           ``forbidden``          6          403
StorageFailure      ``storage_failure``    7          502
Unavailable         ``unavailable``        8          503
(root)              ``error``              1          500
==================  =====================  =========  ===========
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DataCatalogError(Exception):
    """Root of every error the library raises."""

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable form used by the CLI's ``--json`` and the service."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = {k: _plain(v) for k, v in self.details.items()}
        return body


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class InvalidRequestError(DataCatalogError):
    """The request is wrong: fix it before trying again."""

    code = "invalid_request"


class PayloadTooLargeError(InvalidRequestError):
    """A value is over a documented size limit."""

    code = "payload_too_large"


class NotFoundError(DataCatalogError):
    """The named thing does not exist (or is deleted)."""

    code = "not_found"


class InvalidTransitionError(DataCatalogError):
    """The event is not allowed from the job's current state."""

    code = "invalid_transition"


class ConflictError(DataCatalogError):
    """The write collides with existing data (a unique key is taken)."""

    code = "conflict"


class ActiveExecutionsError(ConflictError):
    """The job already has an active execution (another driver or workflow run holds its
    lease): wait for it to end, or for its lease to lapse if its holder died."""

    code = "active_executions"


class LeaseLostError(ConflictError):
    """A lease is no longer held by the one renewing or releasing it (it lapsed and was
    taken over, or was released): the holder must stop working on the job."""

    code = "lease_lost"


class StaleOutputsError(ConflictError):
    """A job that ran has outputs that no longer verify (missing or changed files).

    ``details["missing"]`` and ``details["changed"]`` name them. Running the job again
    is asked for explicitly (``--rerun-stale``, ``if_stale="rerun"``).
    """

    code = "stale_outputs"


class UnauthorizedError(DataCatalogError):
    """A token is required and none was given."""

    code = "unauthorized"


class ForbiddenError(UnauthorizedError):
    """A token was given and it is wrong."""

    code = "forbidden"


class StorageFailureError(DataCatalogError):
    """A storage system (filesystem, object store) failed or refused."""

    code = "storage_failure"


class UnavailableError(DataCatalogError):
    """The database cannot be reached; retrying later may work."""

    code = "unavailable"


@dataclass(frozen=True)
class ErrorMapping:
    """How one error code surfaces on the command line and over HTTP."""

    code: str
    exit_code: int
    http_status: int


ERROR_TABLE: dict[str, ErrorMapping] = {
    m.code: m
    for m in (
        ErrorMapping("error", 1, 500),
        ErrorMapping(InvalidRequestError.code, 2, 400),
        ErrorMapping(PayloadTooLargeError.code, 2, 413),
        ErrorMapping(NotFoundError.code, 3, 404),
        ErrorMapping(InvalidTransitionError.code, 4, 409),
        ErrorMapping(ConflictError.code, 5, 409),
        ErrorMapping(LeaseLostError.code, 5, 409),
        ErrorMapping(ActiveExecutionsError.code, 9, 409),
        ErrorMapping(StaleOutputsError.code, 10, 409),
        ErrorMapping(UnauthorizedError.code, 6, 401),
        ErrorMapping(ForbiddenError.code, 6, 403),
        ErrorMapping(StorageFailureError.code, 7, 502),
        ErrorMapping(UnavailableError.code, 8, 503),
    )
}


def mapping_for(error: BaseException) -> ErrorMapping:
    """Return the exit code / HTTP status mapping for any exception."""
    code = error.code if isinstance(error, DataCatalogError) else "error"
    return ERROR_TABLE.get(code, ERROR_TABLE["error"])
