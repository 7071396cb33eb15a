"""Keyset paging: a page of a sorted query starts after (or ends before) one row.

A page is never found by skipping rows: ``skip`` makes the database walk every row
before the page, so page 1,000 of a large catalog costs a thousand pages. Instead the
link to the next page carries the sort values of the last row shown (a *cursor*), and
the next query asks for the rows strictly after it in the sort order::

    sort (created desc, uuid asc), cursor (t, u)
    -> created < t  OR  (created == t AND uuid > u)

which an index on the sort keys answers by seeking to the cursor. The previous page is
the same question asked in the reversed order, read back to front. Nothing counts the
whole collection.

A cursor is opaque to the user: URL-safe base64 of a small JSON list, one value per
sort key (dates as ISO 8601 text, marked so they are read back as dates).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from datacatalog.clock import as_utc
from datacatalog.errors import InvalidRequestError

SortKeys = Sequence[tuple[str, int]]
MAX_CURSOR_CHARS = 1024
_DATE = "$date"


@dataclass(frozen=True)
class Cursor:
    """The sort values of one row, which a page starts after or ends before."""

    values: tuple[Any, ...]

    def encode(self) -> str:
        """The cursor as URL-safe text."""
        plain = [{_DATE: v.isoformat()} if isinstance(v, datetime) else v for v in self.values]
        raw = json.dumps(plain, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, *, keys: SortKeys, where: str) -> Cursor:
        """Read a cursor made by :meth:`encode` for the sort ``keys``.

        Raises:
            InvalidRequestError: ``text`` is not such a cursor (named by ``where``).
        """
        problem = f"{where} is not a paging cursor of this listing; follow the page links"
        if len(text) > MAX_CURSOR_CHARS:
            raise InvalidRequestError(problem)
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plain = json.loads(raw)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequestError(problem) from exc
        if not isinstance(plain, list) or len(plain) != len(keys):
            raise InvalidRequestError(problem)
        values: list[Any] = []
        for item in plain:
            if isinstance(item, Mapping):
                if set(item) != {_DATE} or not isinstance(item[_DATE], str):
                    raise InvalidRequestError(problem)
                try:
                    values.append(as_utc(datetime.fromisoformat(item[_DATE])))
                except ValueError as exc:
                    raise InvalidRequestError(problem) from exc
            elif isinstance(item, str):
                values.append(item)
            else:
                raise InvalidRequestError(problem)
        return cls(tuple(values))

    @classmethod
    def of(cls, row: Mapping[str, Any], keys: SortKeys) -> Cursor:
        """The cursor of a stored row for the sort ``keys`` (dotted paths allowed)."""
        return cls(tuple(_lookup(row, field) for field, _ in keys))


def reversed_keys(keys: SortKeys) -> list[tuple[str, int]]:
    """The same keys in the opposite order (for the page before a cursor)."""
    return [(field, -direction) for field, direction in keys]


def after(
    cursor: Cursor, keys: SortKeys, *, within: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A query for the rows matching ``within`` strictly after ``cursor`` in ``keys`` order.

    The filter goes into every branch of the ``$or`` rather than around it: MongoDB then
    plans each branch on the sort order's index and merges them in order (reading one
    page), where an ``$and`` around the ``$or`` makes it scan the index up to the cursor.
    """
    branches: list[dict[str, Any]] = []
    for i, (field, direction) in enumerate(keys):
        branch: dict[str, Any] = {f: cursor.values[j] for j, (f, _) in enumerate(keys[:i])}
        branch[field] = {"$gt" if direction > 0 else "$lt": cursor.values[i]}
        branches.append({"$and": [dict(within), branch]} if within else branch)
    return branches[0] if len(branches) == 1 else {"$or": branches}


def _lookup(row: Mapping[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        value = value[part]
    return value
