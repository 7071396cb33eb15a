"""Checks on free-form, user-supplied JSON (job data, event data, metadata extras).

Free-form values are stored as given and fed to identifiers, so they must be
plain JSON and store identically on every engine:

* only ``dict`` (with ``str`` keys), ``list``/``tuple``, ``str``, ``int``
  (within 64 bits, as BSON stores it), finite ``float``, ``bool`` and ``None``; a
  ``datetime``, ``set``, bytes or NaN is refused;
* no key may start with ``$`` (MongoDB operators) and no key may contain ``.``
  (MongoDB reads it as a path) or a NUL character; such keys are refused rather
  than silently rewritten;
* the canonical JSON encoding must fit a size limit chosen by the caller.

Every refusal names the path of the offending value, e.g. ``data.inputs[2]``.
"""

from __future__ import annotations

import math
from typing import Any

from datacatalog.errors import InvalidRequestError, PayloadTooLargeError
from datacatalog.identifiers import canonical_json

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_json(value: Any, *, where: str = "data", max_bytes: int | None = None) -> Any:
    """Validate ``value`` as storable free-form JSON and return it unchanged.

    Args:
        value: The value to check.
        where: Name of the value used in error messages (``data``, ``event data``).
        max_bytes: Largest allowed canonical JSON encoding, in bytes.

    Raises:
        InvalidRequestError: A type or key is not allowed (the path is named).
        PayloadTooLargeError: The encoding is larger than ``max_bytes``.
    """
    _walk(value, where, 0)
    if max_bytes is not None:
        size = encoded_size(value)
        if size > max_bytes:
            raise PayloadTooLargeError(
                f"{where} is {size} bytes, over the limit of {max_bytes} bytes",
                where=where,
                size=size,
                limit=max_bytes,
            )
    return value


def check_object(
    value: Any, *, where: str = "data", max_bytes: int | None = None
) -> dict[str, Any]:
    """Like :func:`check_json`, and ``value`` must be a JSON object (``None`` → ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"{where} must be a JSON object, not {type(value).__name__}", where=where
        )
    checked: dict[str, Any] = check_json(value, where=where, max_bytes=max_bytes)
    return checked


def encoded_size(value: Any) -> int:
    """Size in bytes of the canonical JSON encoding of ``value``."""
    return len(canonical_json(value).encode("utf-8"))


def _walk(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidRequestError(f"{path} is nested deeper than {MAX_DEPTH} levels", where=path)
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidRequestError(
                f"{path} is {value}, outside the 64-bit integer range the database stores "
                "(send it as a string)",
                where=path,
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequestError(f"{path} is {value!r}, which JSON cannot hold", where=path)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequestError(
                    f"{path} has a key {key!r} of type {type(key).__name__}; keys must be strings",
                    where=path,
                )
            _check_key(key, path)
            _walk(item, f"{path}.{key}", depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", depth + 1)
        return
    raise InvalidRequestError(
        f"{path} is a {type(value).__name__}, which is not JSON "
        "(use strings for dates, lists for sets)",
        where=path,
        type=type(value).__name__,
    )


def _check_key(key: str, path: str) -> None:
    if key.startswith("$"):
        raise InvalidRequestError(
            f"{path} has a key {key!r} starting with '$', which is reserved", where=path, key=key
        )
    if "." in key:
        raise InvalidRequestError(
            f"{path} has a key {key!r} containing '.', which is not allowed in stored keys",
            where=path,
            key=key,
        )
    if "\x00" in key:
        raise InvalidRequestError(f"{path} has a key containing NUL", where=path)
