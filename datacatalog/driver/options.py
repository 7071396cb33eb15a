"""A stage driver's arguments checked: numbers of seconds, callbacks, re-run options.

Each check raises :class:`~datacatalog.errors.InvalidRequestError` naming the argument and
the value it was given, before the driver reads or writes anything.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from datacatalog.errors import InvalidRequestError
from datacatalog.jobs.reruns import check_options

DEFAULT_CLEANUP_GRACE = 30.0


def seconds(value: Any, name: str, *, zero: bool = False) -> float:
    """``value`` as seconds: a number, positive (or ``zero`` allowed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{name} must be a number of seconds, not {value!r}")
    if value < 0 or (value == 0 and not zero) or value != value:
        raise InvalidRequestError(f"{name} must be {'>= 0' if zero else '> 0'}, not {value!r}")
    return float(value)


def stage_timeout(value: Any) -> timedelta | None:
    """The bound on the whole stage: None, a positive ``timedelta`` or seconds."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        if value.total_seconds() <= 0:
            raise InvalidRequestError(f"stage_timeout must be positive, not {value}")
        return value
    return timedelta(seconds=seconds(value, "stage_timeout"))


def rerun_options(force: Any, if_stale: Any, verify: Any) -> dict[str, Any]:
    """The options that decide whether the job runs (:func:`datacatalog.jobs.reruns.decide`)."""
    check_options(force=force, if_stale=if_stale, verify=verify)
    return {"force": force, "if_stale": if_stale, "verify": verify}


def check_callbacks(**callbacks: Any) -> None:
    """Each of ``callbacks`` is None or callable."""
    for name, value in callbacks.items():
        if value is not None and not callable(value):
            raise InvalidRequestError(f"{name} must be callable, not {type(value).__name__}")


def max_attempts(value: Any) -> int:
    """Execute attempts in all: an integer, at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"max_attempts must be an integer >= 1, not {value!r}")
    return value


def stage_name(value: Any) -> str | None:
    """The stage's name: None (the pipeline's id) or a non-empty string."""
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidRequestError("stage_name must be a non-empty string")
    return value


__all__ = [
    "DEFAULT_CLEANUP_GRACE",
    "check_callbacks",
    "max_attempts",
    "rerun_options",
    "seconds",
    "stage_name",
    "stage_timeout",
]
