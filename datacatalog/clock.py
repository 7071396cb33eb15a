"""The catalog's clock: timezone-aware UTC, truncated to milliseconds.

MongoDB stores dates with millisecond precision; truncating before writing
means a date read back is equal to the date that was written, on every engine.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """The current time in UTC, at millisecond precision."""
    return truncate(datetime.now(timezone.utc))


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive value (as BSON dates and some filesystems give) is UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def truncate(moment: datetime) -> datetime:
    """``moment`` in UTC at millisecond precision (a naive value is taken as UTC)."""
    moment = as_utc(moment)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
