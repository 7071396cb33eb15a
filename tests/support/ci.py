"""Whether this run is CI's, where a test may not be skipped for want of a tool."""

from __future__ import annotations

import os


def in_ci() -> bool:
    """``CI`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
