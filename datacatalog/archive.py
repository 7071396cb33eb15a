"""Archive paths: where a job's outputs live, hashed so that they never collide.

Layout (each segment is a 22-character shortuuid of a UUID)::

    /products/v2/<a>/<b>/<c>[/<session>-<YYYYMMDDTHHMMSSZ>]
                  |   |   |   `-- instanced directory (optional)
                  |   |   `------ typed_uuid(canonical_json(data), "generic")
                  |   `---------- typed_uuid(":".join(sorted(child_of)), "generic")
                  `-------------- the pipeline UUID

The same pipeline, metadata and parameters always give the same path; the
instanced directory makes each run's path unique. The path is computed once
when a job is created and stored in the job; it is never recomputed.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import petname
import shortuuid

from datacatalog.errors import InvalidRequestError
from datacatalog.identifiers import canonical_json, typed_uuid, uuid_strings

PREFIX = "/products/v2"
_SESSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def compress(value: str) -> str:
    """Encode a UUID string with shortuuid's default alphabet (22 characters)."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"expected a UUID string, not {type(value).__name__}")
    try:
        return str(shortuuid.encode(uuid.UUID(value)))
    except ValueError:
        raise InvalidRequestError(f"{value!r} is not a UUID", value=value) from None


def archive_path(pipeline_uuid: str, child_of: Iterable[str], data: dict[str, Any] | None) -> str:
    """The (not instanced) archive path of a job; a pure function of its identity."""
    links = typed_uuid(":".join(sorted(uuid_strings(child_of))), "generic")
    params = typed_uuid(canonical_json({} if data is None else data), "generic")
    return posixpath.join(PREFIX, compress(pipeline_uuid), compress(links), compress(params))


def new_session() -> str:
    """A fresh adjective-animal session name."""
    return str(petname.generate(2, "-"))


def check_session(session: str) -> str:
    """Return ``session`` if it is safe as a directory name; raise otherwise."""
    if not isinstance(session, str) or not _SESSION.match(session):
        raise InvalidRequestError(
            f"session {session!r} must be 1-64 letters, digits, '-', '_' or '.'",
            session=str(session),
        )
    return session


def instanced_directory(session: str | None = None, *, now: datetime | None = None) -> str:
    """The name of an instanced directory: ``<session>-<YYYYMMDDTHHMMSSZ>`` (UTC)."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    name = check_session(session) if session is not None else new_session()
    return f"{name}-{moment.strftime('%Y%m%dT%H%M%SZ')}"


def check_outside_generated(path: str) -> str:
    """Refuse an explicit archive path in, or holding, the generated paths' :data:`PREFIX`.

    Generated paths never nest with one another; keeping explicit ones out of their tree
    means an explicit directory can neither hold a generated one nor lie inside one.
    """
    if path == PREFIX or path.startswith(PREFIX + "/") or PREFIX.startswith(path + "/"):
        raise InvalidRequestError(
            f"archive_path {path!r} lies in (or holds) {PREFIX}, where generated archive "
            "paths live; give a path outside it, or leave archive_path out to have one "
            "generated",
            archive_path=path,
        )
    return path


def check_archive_path(path: object) -> str:
    """Validate an explicit archive path: absolute, normalized, without ``..``."""
    if not isinstance(path, str) or not path:
        raise InvalidRequestError("archive_path must be a non-empty string")
    if not path.startswith("/"):
        raise InvalidRequestError(f"archive_path {path!r} must be absolute", archive_path=path)
    if "\x00" in path or ".." in path.split("/"):
        raise InvalidRequestError(
            f"archive_path {path!r} must not contain '..' or NUL", archive_path=path
        )
    if path == "/" or posixpath.normpath(path) != path:
        raise InvalidRequestError(
            f"archive_path {path!r} must be normalized and not the root "
            f"(did you mean {posixpath.normpath(path)!r}?)",
            archive_path=path,
        )
    return path
