"""The driver's errors as the catalog's own, recognized by their structure.

Everything the store sends runs inside :func:`translated`, so nothing above the store sees
a pymongo exception. A duplicate key is recognized by ``details["keyPattern"]``, a
failover by the driver's ``RetryableWriteError`` label or the server's error code, a
timeout by the error's ``timeout`` flag, never by message text. What the caller can do
decides the category: a taken key is a :class:`ConflictError`; a server that cannot be
reached, has no primary or did not answer in time is :class:`UnavailableError` (retrying
later may work); a document the database cannot hold is :class:`PayloadTooLargeError` or
:class:`InvalidRequestError` (fix the request).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from bson import errors as bson_errors
from pymongo import errors as mongo_errors

from datacatalog.errors import (
    ConflictError,
    DataCatalogError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnavailableError,
)


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Turn driver errors raised inside into the project's errors, by structure.

    Args:
        where: The database, as error messages name it.
    """
    try:
        yield
    except DataCatalogError:
        raise
    except mongo_errors.DocumentTooLarge as exc:
        # Checked first: it is an InvalidDocument, not a PyMongoError.
        raise PayloadTooLargeError(f"document too large for the database: {exc}") from exc
    except mongo_errors.PyMongoError as exc:
        raise _from_driver(where, exc) from exc
    except (OverflowError, bson_errors.InvalidDocument) as exc:
        # The driver could not encode the document as BSON (an integer wider than 64 bits,
        # for instance), so nothing was sent: the request is at fault.
        raise InvalidRequestError(f"the document cannot be stored as BSON: {exc}") from exc


def _from_driver(where: str, exc: mongo_errors.PyMongoError) -> DataCatalogError:
    """The catalog's error for the driver's ``exc`` (the most specific class first)."""
    if isinstance(exc, mongo_errors.DuplicateKeyError):
        return _duplicate(exc)
    if isinstance(exc, mongo_errors.BulkWriteError):
        return _bulk_failure(where, exc)
    if isinstance(exc, (mongo_errors.ConnectionFailure, mongo_errors.ServerSelectionTimeoutError)):
        return UnavailableError(
            f"cannot reach the database at {where}: {type(exc).__name__} (no answer within "
            "the timeout, DATACATALOG_MONGODB_TIMEOUT; retrying later may work)"
        )
    if isinstance(exc, mongo_errors.OperationFailure):
        return _refused(where, exc)
    if exc.timeout:
        return _timed_out(where, exc)
    return DataCatalogError(f"database error at {where}: {exc}")


def _duplicate(exc: mongo_errors.DuplicateKeyError) -> ConflictError:
    pattern = key_pattern(exc)
    value = (exc.details or {}).get("keyValue")
    fields = ", ".join(pattern) or "a unique key"
    return ConflictError(
        f"a document with the same {fields} already exists"
        + (f" ({_plain_value(value)})" if value else ""),
        key=list(pattern),
    )


def _bulk_failure(where: str, exc: mongo_errors.BulkWriteError) -> DataCatalogError:
    if exc.timeout:
        return _timed_out(where, exc)
    if _transient(exc):
        return _no_primary(where, exc)
    failures = (exc.details or {}).get("writeErrors") or []
    if failures and all(f.get("code") == 11000 for f in failures):
        found = failures[0].get("keyPattern")
        pattern = dict(found) if isinstance(found, Mapping) else {}
        fields = ", ".join(pattern) or "a unique key"
        return ConflictError(
            f"{len(failures)} write(s) of a bulk write collide with existing documents "
            f"on {fields}; the other writes were applied",
            key=list(pattern),
            failed=len(failures),
        )
    return DataCatalogError(f"bulk write failed at {where}: {exc}")


def _refused(where: str, exc: mongo_errors.OperationFailure) -> DataCatalogError:
    if exc.timeout:  # the call's time (timeoutMS) ran out on the server's side
        return _timed_out(where, exc)
    if _transient(exc):
        return _no_primary(where, exc)
    if exc.code in (10334, 17419, 17420):  # BSONObjectTooLarge and friends
        return PayloadTooLargeError(f"document too large for the database: {exc}")
    return DataCatalogError(f"database operation failed at {where}: {exc}", code=exc.code)


def key_pattern(exc: mongo_errors.DuplicateKeyError) -> dict[str, Any]:
    """The fields of the unique index a duplicate key broke (empty when not said)."""
    details = exc.details or {}
    pattern = details.get("keyPattern")
    return dict(pattern) if isinstance(pattern, Mapping) else {}


# What a replica set answers while it has no primary, or while its primary steps down or
# shuts down: nothing is wrong with the request, and another member will take writes soon.
_NO_PRIMARY_CODES = frozenset(
    {
        91,  # ShutdownInProgress
        189,  # PrimarySteppedDown
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)


def _transient(exc: mongo_errors.OperationFailure) -> bool:
    """Whether the server refused because of a failover, not because of the request.

    The driver labels such errors (``RetryableWriteError``, after its own retry); a
    write-concern error of a bulk write carries only its code.
    """
    if exc.has_error_label("RetryableWriteError") or exc.code in _NO_PRIMARY_CODES:
        return True
    details = exc.details or {}
    concern = details.get("writeConcernError") or {}
    concerns = details.get("writeConcernErrors") or ([concern] if concern else [])
    return any(isinstance(c, Mapping) and c.get("code") in _NO_PRIMARY_CODES for c in concerns)


def _no_primary(where: str, exc: Exception) -> UnavailableError:
    return UnavailableError(
        f"the database at {where} has no primary to write to: {type(exc).__name__} "
        f"({exc}); a replica set elects a new one within seconds, retrying then may work"
    )


def _timed_out(where: str, exc: Exception) -> UnavailableError:
    return UnavailableError(
        f"the database did not answer in time at {where}: {type(exc).__name__} "
        "(DATACATALOG_MONGODB_TIMEOUT; retrying later may work)"
    )


def _plain_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v!r}" for k, v in value.items())
    return repr(value)
