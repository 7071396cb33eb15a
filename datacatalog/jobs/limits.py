"""Limits on what a job may hold, so that a job document stays well under 16 MiB.

Each is refused with a clear error and nothing written:

* job ``data``: 1 MiB of canonical JSON;
* event ``data``: 64 KiB of canonical JSON;
* a job's history: 12 MiB in all (tracked in ``_properties.history_bytes``; admin
  events such as ``reset`` may use a further 256 KiB so a full job can still be reset);
* inputs: 10,000 references; index requests: 64 per kind.
"""

from __future__ import annotations

MAX_JOB_DATA_BYTES = 1 << 20
MAX_EVENT_DATA_BYTES = 64 << 10
MAX_HISTORY_BYTES = 12 << 20
ADMIN_HISTORY_RESERVE = 256 << 10  # admin events may still be recorded on a full history
MAX_INPUTS = 10_000
MAX_INDEX_REQUESTS = 64
MAX_PAGE = 1000
INSTANCE_ATTEMPTS = 8
ENTRY_OVERHEAD = 512  # bytes budgeted per history entry beyond its data
