"""Catalog paths: checking them, turning them into backend paths, and root containment.

Paths handed to a storage system are *catalog paths*: absolute, normalized POSIX paths
such as a job's archive path ``/products/v2/AAA/BBB/CCC``. The real location is the root
followed by the catalog path, so the same job layout works on every backend::

    catalog path   /products/v2/AAA/BBB/CCC/out/a.png
    root           file:///var/lib/datacatalog/archive
    backend path   /var/lib/datacatalog/archive/products/v2/AAA/BBB/CCC/out/a.png
"""

from __future__ import annotations

import posixpath
import re

from datacatalog.errors import InvalidRequestError


def validate_path(path: object) -> str:
    """Check that ``path`` is a usable catalog path and return it.

    Args:
        path: Candidate catalog path.

    Returns:
        The path, unchanged.

    Raises:
        InvalidRequestError: The path is not a string, contains NUL, is relative, has a
            ``..`` component or is not normalized (``.``, ``//`` or a trailing ``/``).
    """
    if not isinstance(path, str):
        raise InvalidRequestError(
            f"storage path must be a string, not {type(path).__name__}", path=repr(path)
        )
    if "\x00" in path:
        raise InvalidRequestError(f"storage path {path!r} contains a NUL character", path=path)
    if not path.startswith("/"):
        raise InvalidRequestError(
            f"storage path {path!r} must be absolute (start with '/')", path=path
        )
    if ".." in path.split("/"):
        raise InvalidRequestError(
            f"storage path {path!r} must not contain '..' components", path=path
        )
    if path != "/" and (path.startswith("//") or posixpath.normpath(path) != path):
        raise InvalidRequestError(
            f"storage path {path!r} is not normalized (no '.', '//' or trailing '/'); "
            f"did you mean {posixpath.normpath('/' + path.lstrip('/'))!r}?",
            path=path,
        )
    return path


def backend_path(root: str, path: str) -> str:
    """The backend path of the catalog path ``path`` under ``root`` (no checks)."""
    if path == "/":
        return root or "/"
    return root.rstrip("/") + path


def join_catalog(base: str, relative: str) -> str:
    """The catalog path of ``relative`` (``/``-separated) under the catalog path ``base``."""
    return "/" + relative if base == "/" else f"{base}/{relative}"


_PLAIN_FILE_URL = re.compile(r"file://(/[^:?#*\[\]~]*)")


def plain_file_root(url: str) -> str | None:
    """The root of a plain ``file:///absolute/path`` URL, as fsspec would give it.

    None for anything else (chained, relative, with options or glob characters): those
    go through fsspec.
    """
    match = _PLAIN_FILE_URL.fullmatch(url)
    if match is None:
        return None
    path = match.group(1)
    if path != "/" and posixpath.normpath(path) != path.rstrip("/"):
        return None
    return path if path == "/" else path.rstrip("/")


def within(root: str, candidate: str) -> bool:
    """True if the real path ``candidate`` is ``root`` or lies under it."""
    # Both are real (absolute, normalized) paths: a prefix test on whole components.
    return candidate == root or candidate.startswith(root if root.endswith("/") else root + "/")
