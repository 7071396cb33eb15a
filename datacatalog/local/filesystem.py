"""Which filesystem a path is on: a managed server refuses network and FUSE filesystems.

WiredTiger needs POSIX locking and rename semantics that NFS, CIFS and most FUSE
filesystems do not give (it fails with "handle-open: File exists" or corrupts files), and
a shared home directory lets two machines start a server on the same files.
"""

from __future__ import annotations

import os
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
REFUSED_PREFIXES = ("nfs", "cifs", "smb", "fuse", "9p", "afs", "ceph", "glusterfs", "lustre")


def filesystem_type(path: Path, mountinfo: Path = MOUNTINFO) -> str | None:
    """The type of the filesystem holding ``path`` (``None`` where it cannot be told).

    Args:
        path: An existing path.
        mountinfo: The mount table to read (``/proc/self/mountinfo`` on Linux).
    """
    try:
        table = mountinfo.read_text()
    except OSError:
        return None
    target = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for line in table.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if len(fields) < 5 or dash + 1 >= len(fields):
            continue
        mount_point = _unescape(fields[4])
        fstype = fields[dash + 1]
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        # A later line for the same mount point is mounted over the earlier one.
        if inside and (best is None or len(mount_point) >= best[0]):
            best = (len(mount_point), fstype)
    return None if best is None else best[1]


def refused_filesystem(path: Path, mountinfo: Path = MOUNTINFO) -> str | None:
    """The filesystem type when the managed server must not keep data on it, else ``None``."""
    fstype = filesystem_type(path, mountinfo)
    if fstype is not None and fstype.lower().startswith(REFUSED_PREFIXES):
        return fstype
    return None


def _unescape(field: str) -> str:
    # mountinfo writes spaces, tabs, newlines and backslashes as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field
