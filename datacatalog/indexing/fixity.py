"""Hashing many files at once: a small thread pool, for indexing and verifying.

``hashlib`` releases the GIL while it digests a buffer and the reads wait on the
operating system, so a few threads hash several files at the same time on as many
cores. The pool keeps the input order: hashing with one worker (in the calling
thread, no pool) and with several gives the same digests, and the same failures, for
the same files.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from datacatalog.errors import InvalidRequestError, NotFoundError, StorageFailureError
from datacatalog.storage import FileReader, StorageSystem

MAX_HASH_WORKERS = 64
"""Most hashing threads one run may ask for."""

DEFAULT_HASH_WORKERS = max(1, min(4, (os.cpu_count() or 1) - 1))
"""Hashing threads by default: one core fewer than the machine has (at most four), since
the writer thread and often the database server need a core too. Small files cost more in
per-file Python work (holding the GIL) than in digesting, so more threads only contend:
on two cores, one hashing thread indexes 5,000 files of 1-64 KiB about 25% faster than
three (``bench/bench_indexing.py``)."""

T = TypeVar("T")
R = TypeVar("R")

Digest = str | NotFoundError | StorageFailureError | None
"""One file's outcome: its hex SHA-256, the error that kept it from being read, or None
when it was not to be hashed."""


def check_workers(workers: object) -> int:
    """``workers`` if it is a valid number of hashing threads.

    Raises:
        InvalidRequestError: Not an integer from 1 to :data:`MAX_HASH_WORKERS`.
    """
    if (
        isinstance(workers, bool)
        or not isinstance(workers, int)
        or not 1 <= workers <= MAX_HASH_WORKERS
    ):
        raise InvalidRequestError(
            f"hash_workers must be an integer from 1 to {MAX_HASH_WORKERS}, not {workers!r}"
        )
    return workers


class Hasher:
    """Hash files on ``workers`` threads (one: in the calling thread); a context manager."""

    def __init__(self, workers: int = DEFAULT_HASH_WORKERS) -> None:
        self.workers = check_workers(workers)
        self._pool = (
            ThreadPoolExecutor(workers, thread_name_prefix="datacatalog-hash")
            if workers > 1
            else None
        )
        self._readers: dict[str, FileReader] = {}
        self._lock = threading.Lock()

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``function`` applied to every item, results in input order."""
        if self._pool is None:
            return [function(item) for item in items]
        return list(self._pool.map(function, items))

    def digests(self, system: StorageSystem, wanted: Sequence[tuple[str, bool]]) -> list[Digest]:
        """The outcome for each ``(path, hash it?)`` of ``wanted``, in order.

        A file that is gone or cannot be read gives its error instead of a digest; any
        other error is raised.
        """

        reader = self.reader(system)

        def digest(path: str) -> Digest:
            try:
                return reader.sha256(path)
            except (NotFoundError, StorageFailureError) as exc:
                return exc

        hashed = iter(self.map(digest, [path for path, fixity in wanted if fixity]))
        return [next(hashed) if fixity else None for _path, fixity in wanted]

    def reader(self, system: StorageSystem) -> FileReader:
        """The reader of ``system`` for this hasher's life (directories opened once)."""
        with self._lock:  # the hashing threads may ask at once
            reader = self._readers.get(system.name)
            if reader is None:
                reader = self._readers[system.name] = system.reader()
            return reader

    def close(self) -> None:
        """Stop the threads (after the work given to them); close what they kept open."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._lock:
            readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            reader.close()

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
