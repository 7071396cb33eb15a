"""The embedded local catalog: the in-memory engine, persisted to one file.

With no configuration the library, the command line and the service keep the
catalog in ``<data dir>/catalog.json``. No server is needed.

How it stays correct:

* **Every store operation holds an exclusive file lock** (``catalog.json.lock``)
  from start to end. Processes sharing the catalog (a CLI command while
  ``datacatalog serve`` runs, two commands at once) take turns; each operation
  still runs as one atomic step, so conditional updates keep their guarantees.
  A process that waits longer than ``DATACATALOG_LOCK_TIMEOUT`` seconds gets a
  clear "catalog is busy" error and writes nothing.
* **Before an operation** the snapshot is reloaded if another process replaced
  it (its inode, size or modification time changed).
* **After a write** the whole catalog is written to a temporary file, flushed to
  disk and atomically renamed over the snapshot. A crash leaves either the old or
  the new snapshot, never a half-written one.

Limits: every write rewrites the whole file, and the in-memory engine scans a
collection for each document it writes (it keeps no indexes for lookups), so the
embedded catalog suits one person's work: hundreds of jobs and a few thousand
indexed files (indexing 2,000 files into it takes about half a minute, against
about a second on MongoDB). Concurrent users take turns rather than working in
parallel. For a shared or larger catalog, set ``DATACATALOG_MONGODB_URI`` to a
MongoDB server.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import filelock
import mongomock_ng
from bson import json_util

from datacatalog.errors import (
    DataCatalogError,
    InvalidRequestError,
    StorageFailureError,
    UnavailableError,
)

FORMAT = "datacatalog-embedded/1"
DEFAULT_LOCK_TIMEOUT = 30.0
_UNKNOWN = (-1, -1, -1)  # a snapshot state no file has: forces a reload
_JSON_OPTIONS = json_util.JSONOptions(
    json_mode=json_util.JSONMode.CANONICAL, tz_aware=True, tzinfo=None
)


class EmbeddedBackend:
    """A store backend keeping an in-memory database in sync with a snapshot file."""

    def __init__(
        self, path: str | os.PathLike[str], *, database: str, lock_timeout: float | None = None
    ) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise InvalidRequestError(f"embedded catalog path {self.path} is a directory")
        self.description = f"embedded catalog {self.path}"
        self.evaluates_now = False  # the in-memory engine has no server clock
        self._client: Any = mongomock_ng.MongoClient(tz_aware=True)
        self.database: Any = self._client[database]
        timeout = _lock_timeout() if lock_timeout is None else lock_timeout
        self._timeout = timeout
        self._file_lock = filelock.FileLock(str(self.path) + ".lock", timeout=timeout)
        self._thread_lock = threading.RLock()
        self._loaded: tuple[int, int, int] | None = None
        self._depth = 0

    @contextmanager
    def operation(self, *, write: bool) -> Iterator[None]:
        """Hold the catalog lock for one operation; persist it when it wrote."""
        with self._thread_lock:
            outermost = self._depth == 0
            if outermost:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file_lock.acquire()
                except filelock.Timeout:  # a TimeoutError, so before OSError
                    raise UnavailableError(
                        f"the embedded catalog {self.path} is busy: another process held its "
                        f"lock for more than {self._timeout:g} s; nothing was written",
                        path=str(self.path),
                    ) from None
                except OSError as exc:
                    raise StorageFailureError(
                        f"cannot open the embedded catalog {self.path}: {exc.strerror or exc}",
                        path=str(self.path),
                    ) from exc
            self._depth += 1
            try:
                if outermost:
                    self._refresh()
                try:
                    yield
                finally:
                    # Saved even when the operation failed part-way (an unordered bulk
                    # write keeps its applied part, as on a server): this process must
                    # never see data that the file does not hold.
                    if write:
                        self._save()
            finally:
                self._depth -= 1
                if outermost:
                    self._file_lock.release()

    def close(self) -> None:
        """Nothing stays open between operations."""

    # -- snapshot ---------------------------------------------------------------------------

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _refresh(self) -> None:
        current = self._stat()
        if current == self._loaded:
            return
        collections: dict[str, list[Any]] = {}
        if current is not None:
            try:
                snapshot = json_util.loads(
                    self.path.read_text(encoding="utf-8"), json_options=_JSON_OPTIONS
                )
            except (OSError, ValueError) as exc:
                raise DataCatalogError(
                    f"cannot read the embedded catalog {self.path}: {exc}"
                ) from exc
            if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
                raise DataCatalogError(f"{self.path} is not an embedded catalog ({FORMAT})")
            collections = snapshot.get("collections", {})
        for name in self.database.list_collection_names():
            if name not in collections:
                self.database[name].delete_many({})
        for name, docs in collections.items():
            coll = self.database[name]
            coll.delete_many({})
            if docs:
                coll.insert_many(docs)
        self._loaded = current

    def _save(self) -> None:
        snapshot = {
            "format": FORMAT,
            "collections": {
                name: list(self.database[name].find({}))
                for name in sorted(self.database.list_collection_names())
            },
        }
        text = json_util.dumps(snapshot, json_options=_JSON_OPTIONS)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            # The snapshot on disk is the old one: drop this process's unsaved
            # changes by reloading it before the next operation.
            self._loaded = _UNKNOWN
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageFailureError(
                f"cannot save the embedded catalog {self.path}: {exc}; "
                "the previous snapshot is unchanged and this change was not saved",
                path=str(self.path),
            ) from exc
        self._loaded = self._stat()
        try:
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StorageFailureError(
                f"saved the embedded catalog {self.path} but could not sync its folder: {exc}",
                path=str(self.path),
            ) from exc


def _lock_timeout() -> float:
    """The lock wait from ``DATACATALOG_LOCK_TIMEOUT`` (seconds, at least 0)."""
    raw = os.environ.get("DATACATALOG_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    # filelock waits forever on a negative timeout; refuse it rather than hang.
    if not math.isfinite(value) or value < 0:
        raise InvalidRequestError(
            f"DATACATALOG_LOCK_TIMEOUT must be a number of seconds (0 or more), not {raw!r}"
        )
    return value
