"""Hashing many files at once, for indexing and verifying.

``hashlib`` releases the GIL while it digests a large buffer and the reads wait on the
operating system, so a few threads hash big files at the same time on as many cores.
Small files are another matter: opening, reading and digesting buffers of a few KiB is
mostly Python work holding the GIL, which the thread that builds and writes the records
needs too. So a long run on a local storage system hashes in worker processes instead
(:data:`PROCESS_THRESHOLD` files or more), in chunks, each worker opening the files with
the same checks as the storage system itself. Whichever way, the outcomes come back in
input order: hashing with one worker (in the calling thread), several threads or worker
processes gives the same digests, and the same failures, for the same files.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from datacatalog.errors import InvalidRequestError, NotFoundError, StorageFailureError
from datacatalog.storage import StorageSystem, open_system

MAX_HASH_WORKERS = 64
"""Most hashing threads one run may ask for."""

DEFAULT_HASH_WORKERS = max(1, min(4, (os.cpu_count() or 1) - 1))
"""Hashing threads by default: one core fewer than the machine has (at most four), since
the writer thread and often the database server need a core too. Small files cost more in
per-file Python work (holding the GIL) than in digesting, so more threads only contend:
on two cores, one hashing thread indexes 5,000 files of 1-64 KiB about 25% faster than
three (``bench/bench_indexing.py``)."""

log = logging.getLogger(__name__)

PROCESS_THRESHOLD = 5000
"""Files to hash from which a run on a local storage system hashes in worker processes
(starting them costs a few tenths of a second)."""

CHUNK = 250
"""Files per piece of work sent to a hashing process."""

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
    """Hash files on ``workers`` threads (one: in the calling thread); a context manager.

    With ``processes``, :meth:`digests` of files on a local storage system runs on that
    many worker processes instead (started on first use, stopped by :meth:`close`).
    """

    def __init__(self, workers: int = DEFAULT_HASH_WORKERS, *, processes: int = 0) -> None:
        self.workers = check_workers(workers)
        self.processes = check_workers(processes) if processes else 0
        self._pool = (
            ThreadPoolExecutor(workers, thread_name_prefix="datacatalog-hash")
            if workers > 1
            else None
        )
        self._process_pool: Executor | None = None

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
        paths = [path for path, fixity in wanted if fixity]
        outcomes = self._in_processes(system, paths) if self.processes and paths else None
        if outcomes is None:
            outcomes = self.map(lambda path: _digest(system, path), paths)
        hashed = iter(outcomes)
        return [next(hashed) if fixity else None for _path, fixity in wanted]

    def _in_processes(self, system: StorageSystem, paths: list[str]) -> list[Digest] | None:
        """The outcomes from the worker processes; None when they cannot be used here.

        A process that is itself a daemon (a Dask or process-executor worker) may not
        start children, a pool may fail to start or lose a worker: the threads then hash
        this batch and the rest of the run.
        """
        if not system.is_local or multiprocessing.current_process().daemon:
            return None
        try:
            if self._process_pool is None:
                # forkserver: the caller's threads (the database client's among them) are
                # not copied into the workers, as fork would.
                context = multiprocessing.get_context("forkserver")
                self._process_pool = ProcessPoolExecutor(self.processes, mp_context=context)
            chunks = [paths[start : start + CHUNK] for start in range(0, len(paths), CHUNK)]
            parts = list(
                self._process_pool.map(
                    _hash_chunk, [(system.name, system.url, chunk) for chunk in chunks]
                )
            )
        except (BrokenProcessPool, OSError) as exc:
            log.warning("hashing in worker processes failed (%s); hashing on threads", exc)
            self._stop_processes()
            self.processes = 0
            return None
        return [_rebuilt(outcome) for part in parts for outcome in part]

    def _stop_processes(self) -> None:
        if self._process_pool is not None:
            self._process_pool.shutdown(wait=True, cancel_futures=True)
            self._process_pool = None

    def close(self) -> None:
        """Stop the threads and processes (after the work given to them)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._stop_processes()

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _digest(system: StorageSystem, path: str) -> Digest:
    try:
        return system.sha256(path)
    except (NotFoundError, StorageFailureError) as exc:
        return exc


_SYSTEMS: dict[tuple[str, str], StorageSystem] = {}
"""The storage systems a hashing process opened, by (name, url)."""


def _hash_chunk(work: tuple[str, str, list[str]]) -> list[tuple[str, str, dict[str, Any]]]:
    """In a hashing process: the outcome of each path, as plain data for the way back."""
    name, url, paths = work
    system = _SYSTEMS.get((name, url))
    if system is None:
        system = _SYSTEMS[(name, url)] = open_system(name, url)
    outcomes = []
    for path in paths:
        outcome = _digest(system, path)
        if isinstance(outcome, NotFoundError):
            outcomes.append(("missing", outcome.message, outcome.details))
        elif isinstance(outcome, StorageFailureError):
            outcomes.append(("failed", outcome.message, outcome.details))
        else:
            outcomes.append(("sha256", str(outcome), {}))
    return outcomes


def _rebuilt(outcome: tuple[str, str, dict[str, Any]]) -> Digest:
    kind, value, details = outcome
    if kind == "missing":
        return NotFoundError(value, **details)
    if kind == "failed":
        return StorageFailureError(value, **details)
    return value
