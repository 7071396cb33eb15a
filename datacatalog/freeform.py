"""Checks on free-form, user-supplied JSON (job data, event data, metadata extras).

Free-form values are stored as given and fed to identifiers, so they must be
plain JSON and store identically on every engine:

* only ``dict`` (with ``str`` keys), ``list``/``tuple``, ``str``, ``int``
  (within 64 bits, as BSON stores it), finite ``float``, ``bool`` and ``None``; a
  ``datetime``, ``set``, bytes or NaN is refused;
* no key may start with ``$`` (MongoDB operators) and no key may contain ``.``
  (MongoDB reads it as a path) or a NUL character; such keys are refused rather
  than silently rewritten;
* the canonical JSON encoding must fit a size limit chosen by the caller;
* nesting is at most :data:`MAX_DEPTH` levels.

Every refusal names the path of the offending value, e.g. ``data.inputs[2]``.

The checks walk values with an explicit stack, never by recursion, so a value
nested thousands of levels deep is refused with the "nested deeper than" error
rather than a ``RecursionError``. :func:`copy_json` and :func:`parse_json` give
the same guarantee to the places that copy or parse user input before checking
it (Python's ``copy.deepcopy``, ``json`` and PyYAML all recurse).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from datacatalog.errors import InvalidRequestError, PayloadTooLargeError
from datacatalog.identifiers import canonical_json

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_T = TypeVar("_T")


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
    _walk(value, where)
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


def check_depth(value: Any, *, where: str = "data", max_depth: int = MAX_DEPTH) -> None:
    """Refuse ``value`` when its dicts, lists and tuples nest deeper than ``max_depth``.

    Only containers are looked at (any other value is a leaf), so this is safe to
    run on anything before it is copied or encoded.

    Raises:
        InvalidRequestError: The value is nested too deeply (the path is named).
    """
    for _item, path, depth in _nodes(value, where):
        if depth > max_depth:
            raise InvalidRequestError(
                f"{path} is nested deeper than {max_depth} levels", where=path, limit=max_depth
            )


def copy_json(value: _T, *, where: str = "data") -> _T:
    """A deep copy of ``value``, after checking its nesting with :func:`check_depth`.

    Raises:
        InvalidRequestError: The value is nested deeper than :data:`MAX_DEPTH` levels.
    """
    check_depth(value, where=where)
    return copy.deepcopy(value)


def parse_json(text: str | bytes, *, where: str) -> Any:
    """Parse JSON text; malformed or too deeply nested text is an invalid request.

    Args:
        text: The JSON text.
        where: What the text is (``--data``, a file name), used in error messages.

    Raises:
        InvalidRequestError: The text is not valid JSON, or nests deeper than
            :data:`MAX_DEPTH` levels.
    """
    return bounded_parse(lambda: json.loads(text), where=where)


def bounded_parse(parse: Callable[[], _T], *, where: str) -> _T:
    """Run a recursive parser (``json.loads``, ``yaml.safe_load``) and check the result.

    A parser that recurses once per nesting level runs out of stack on text nested a
    few hundred levels deep; that is reported as the same "nested deeper than" error
    :func:`check_depth` gives for anything over :data:`MAX_DEPTH`.

    Raises:
        InvalidRequestError: The text nests too deeply to parse, or deeper than
            :data:`MAX_DEPTH` levels; a ``json.JSONDecodeError`` is turned into one too.
    """
    try:
        parsed = parse()
    except RecursionError:
        raise InvalidRequestError(
            f"{where} is nested deeper than {MAX_DEPTH} levels", where=where, limit=MAX_DEPTH
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            where=where,
        ) from None
    check_depth(parsed, where=where)
    return parsed


def _nodes(value: Any, where: str) -> Iterator[tuple[Any, str, int]]:
    """Every value inside ``value`` (itself included) with its path and depth, depth first.

    An explicit stack rather than recursion: the depth of the input is not ours to choose.
    Paths are only built for values that are visited, children in their natural order.
    """
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        yield item, path, depth
        if depth > MAX_DEPTH * 4:
            continue  # the caller has refused it by now; never walk further than needed
        if isinstance(item, dict):
            children = [(v, f"{path}.{k}", depth + 1) for k, v in item.items()]
        elif isinstance(item, (list, tuple)):
            children = [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item)]
        else:
            continue
        stack.extend(reversed(children))


def _walk(value: Any, where: str) -> None:
    for item, path, depth in _nodes(value, where):
        if depth > MAX_DEPTH:
            raise InvalidRequestError(
                f"{path} is nested deeper than {MAX_DEPTH} levels", where=path, limit=MAX_DEPTH
            )
        _check_leaf(item, path)


def _check_leaf(value: Any, path: str) -> None:
    """Check one value's own type (and, for a dict, its keys); containers' items come later."""
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
        for key in value:
            if not isinstance(key, str):
                raise InvalidRequestError(
                    f"{path} has a key {key!r} of type {type(key).__name__}; keys must be strings",
                    where=path,
                )
            _check_key(key, path)
        return
    if isinstance(value, (list, tuple)):
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
