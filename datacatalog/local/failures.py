"""What went wrong when the managed server would not start, in one clear message.

Each known cause has a recognisable exit status or log line (measured on MongoDB 6.0):

==========================  =========================================================
exit status / log line      cause
==========================  =========================================================
48                          the TCP port is in use (the manager moves to another one)
100 + "DBPathInUse"         another mongod runs on the same data files
100 + "File name too long"  the socket path is too long (the manager falls back to TCP)
62                          data files written by an incompatible MongoDB version
127                         missing shared libraries (e.g. libcrypto)
-4 / 132 (SIGILL)           the CPU lacks instructions the build needs (AVX)
"No space left on device"   the disk holding the data dir is full
"handle-open: File exists"  a network filesystem (NFS) under the data files
==========================  =========================================================
"""

from __future__ import annotations

import signal
from collections.abc import Sequence

from datacatalog.errors import UnavailableError

EXIT_PORT_IN_USE = 48
EXIT_DBPATH_IN_USE = 100
EXIT_INCOMPATIBLE = 62
EXIT_MISSING_LIBRARIES = 127
EXIT_SIGILL_SHELL = 128 + signal.SIGILL

LOG_LINES = 12
LOG_LINE_CHARS = 500


class LocalServerError(UnavailableError):
    """The managed local server cannot be started, found or stopped."""


class BinaryUnusableError(LocalServerError):
    """No ``mongod`` binary that runs on this machine is available."""


def describe_exit(status: int, text: str = "") -> str:
    """The cause of a mongod exit, from its status and what it printed or logged."""
    if status in (-signal.SIGILL, EXIT_SIGILL_SHELL):
        return (
            "it was killed by SIGILL: this CPU lacks instructions the build needs "
            "(MongoDB 5.0+ needs AVX)"
        )
    if status == EXIT_MISSING_LIBRARIES or "error while loading shared libraries" in text:
        return "shared libraries it needs are missing (error while loading shared libraries)"
    if "No space left on device" in text or "ENOSPC" in text:
        return "the disk holding the data dir is full (No space left on device)"
    if "handle-open: File exists" in text:
        return (
            "the data files are on a network filesystem (WiredTiger handle-open: File exists); "
            "keep the data dir on a local disk or set DATACATALOG_MONGODB_URI"
        )
    if status == EXIT_PORT_IN_USE or "Address already in use" in text:
        return "its TCP port is already in use"
    if "File name too long" in text:
        return "the socket path is too long"
    if status == EXIT_DBPATH_IN_USE or "DBPathInUse" in text:
        return "another mongod is already running on the same data files (DBPathInUse)"
    if status == EXIT_INCOMPATIBLE:
        return (
            "the data files were written by an incompatible MongoDB version; use the "
            "version that wrote them (never run --repair without a backup)"
        )
    if status < 0:
        try:
            return f"it was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"it was killed by signal {-status}"
    return f"it exited with status {status}"


def error_lines(log_text: str) -> list[str]:
    """The last error and fatal lines of a structured mongod log."""
    lines = [line for line in log_text.splitlines() if '"s":"E"' in line or '"s":"F"' in line]
    return [line[:LOG_LINE_CHARS] for line in lines[-LOG_LINES:]]


LOW_SPACE_BYTES = 64 << 20
"""Free space under which a failed start is put down to a full disk."""


def start_failure(
    status: int,
    command: Sequence[str],
    log_text: str,
    output: str,
    log_path: str,
    free_bytes: int | None = None,
) -> LocalServerError:
    """One error naming the cause, the command line and the log's error lines.

    Args:
        status: The launcher's exit status (negative: killed by that signal).
        command: The command line that was run.
        log_text: What this start attempt appended to the server log.
        output: What the launcher printed.
        log_path: Where the full log is.
        free_bytes: Free space on the data dir's disk, when known.
    """
    cause = describe_exit(status, log_text + "\n" + output)
    if free_bytes is not None and free_bytes < LOW_SPACE_BYTES and cause.startswith("it exited"):
        # A full disk can leave no log line at all: the log itself cannot be written.
        cause = (
            "the disk holding the data dir is full "
            f"(No space left on device: {free_bytes} bytes free)"
        )
    parts = [
        f"the local MongoDB server did not start: {cause}",
        f"  command: {' '.join(command)}",
        f"  exit status: {status}",
    ]
    errors = error_lines(log_text)
    if errors:
        parts.append(f"  errors in {log_path}:")
        parts.extend("    " + line for line in errors)
    elif output.strip():
        parts.append("  output:")
        parts.extend("    " + line[:LOG_LINE_CHARS] for line in output.strip().splitlines()[-8:])
    error_type = (
        BinaryUnusableError
        if status in (-signal.SIGILL, EXIT_SIGILL_SHELL, EXIT_MISSING_LIBRARIES)
        else LocalServerError
    )
    return error_type("\n".join(parts), status=status, command=list(command))
