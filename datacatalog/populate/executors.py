"""Where a populate's jobs do their work: threads, processes or a Dask cluster.

The catalog's bookkeeping of every job (its lease, its events, indexing) stays in the
populating process, in one stage driver per job; only the work itself — a command or a
Python callable, with plain values as arguments — goes to the executor, and its outcome
comes back. Workers never talk to the catalog, so a SLURM cluster's nodes need no
database access, and a worker that dies is that job's failure.

* ``thread``: the work runs on a thread of this process (a command: a child process);
* ``process``: a pool of worker processes (a callable must be importable by name);
* ``dask``: a local Dask cluster started (and closed) here; ``dask=tcp://host:8786``:
  an existing scheduler (a dask-jobqueue SLURM or PBS cluster), never shut down here.

A running piece of work is cancelled cooperatively: a command is stopped (its process
group gets SIGTERM, then SIGKILL after the grace period); a callable is abandoned, and on
a pool or a cluster we own its worker is stopped when the populate ends.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
import uuid as uuidlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datacatalog.errors import InvalidRequestError, UnavailableError

Cancelled = Callable[[], bool]
_POLL = 0.05

DEFAULT_DASK_TIMEOUT = 10.0
"""Seconds to wait for a Dask scheduler to answer before the populate is refused."""


@dataclass(frozen=True)
class WorkItem:
    """One piece of work for a backend: ``fn(*args, cancelled=...)``.

    Attributes:
        fn: What runs (a command's runner, or the callable).
        args: Its arguments (plain values: they travel to workers).
        cancelled: Whether the work is to stop (polled while it runs).
        key: Names the work (the job's UUID) in thread names, Dask keys and errors.
        grace: How long work that stops by itself on a cancel (a command) may take.
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    cancelled: Cancelled
    key: str
    grace: float = 0.0


class WorkCancelled(Exception):
    """The work was cancelled before it ended (the job fails with reason ``cancelled``)."""


class Backend(ABC):
    """Runs one piece of work at a time per call, blocking the calling driver's thread."""

    name = "backend"

    def __init__(self, slots: int) -> None:
        self.slots = slots

    @abstractmethod
    def call(self, work: WorkItem) -> Any:
        """``work.fn(*work.args, cancelled=...)`` on the backend; its result, or what it raised.

        Raises:
            WorkCancelled: ``work.cancelled()`` turned true before the work ended.
        """

    def describe(self) -> str:
        """How the work runs, for people."""
        return f"{self.name}s, {self.slots} at once"

    def workflow_executor(self) -> Any:
        """An executor for one workflow execution's tasks, on this backend."""
        from datacatalog.orchestrator.executors import ThreadExecutor

        return ThreadExecutor(pool_size=2)

    def close(self) -> None:  # noqa: B027 - most backends hold nothing
        """Release what the backend started."""


class ThreadBackend(Backend):
    """The work runs on a thread of its own in this process."""

    name = "thread"

    def call(self, work: WorkItem) -> Any:
        return _on_thread(work)


class ProcessBackend(Backend):
    """A pool of worker processes (started fresh, not forked from this threaded process)."""

    name = "process"

    def __init__(self, slots: int) -> None:
        super().__init__(slots)
        context = multiprocessing.get_context("spawn")
        self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=slots, mp_context=context)
        self._abandoned = False

    def call(self, work: WorkItem) -> Any:
        if getattr(work.fn, "runs_a_process", False):
            # A command is a process already: it runs from here, where a cancel can stop it.
            return _on_thread(work)
        future = self._pool.submit(_without_cancel, work.fn, work.args)
        while True:
            try:
                return future.result(timeout=_POLL)
            except concurrent.futures.TimeoutError:
                if work.cancelled():
                    if not future.cancel():
                        self._abandoned = True
                    raise WorkCancelled(f"{work.key} was cancelled") from None

    def workflow_executor(self) -> Any:
        """A pool of processes for one workflow execution's tasks."""
        from datacatalog.orchestrator.executors import ProcessExecutor

        return ProcessExecutor(pool_size=2)

    def close(self) -> None:
        """Shut the pool down; stop its processes when work was abandoned to a cancel."""
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=not self._abandoned, cancel_futures=True)
        if self._abandoned:
            for process in processes:
                process.terminate()


class DaskBackend(Backend):
    """A Dask distributed cluster: a local one we own, or an existing scheduler.

    Each piece of work is one future with a key of its own (``pure=False``); a cluster we
    start allows no failures, so Dask never runs a job's work twice by itself.
    """

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        timeout: float = DEFAULT_DASK_TIMEOUT,
    ) -> None:
        import dask
        from distributed import Client, LocalCluster

        self.address = address
        self._cluster: Any = None
        if address is None:
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self._cluster = LocalCluster(
                    n_workers=workers or 2,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    # A job's failure is its fail event and a row of the report; the
                    # workers' "Compute Failed" log lines would only repeat it here.
                    silence_logs=logging.CRITICAL,
                )
            self.client = Client(self._cluster, set_as_default=False)
            super().__init__(workers or 2)
            return
        try:
            self.client = Client(address, set_as_default=False, timeout=f"{timeout}s")
        except (OSError, TimeoutError) as exc:
            raise UnavailableError(
                f"cannot reach the Dask scheduler at {address}: {exc}", address=address
            ) from exc
        info = self.client.scheduler_info()
        threads = sum(w.get("nthreads", 1) for w in info["workers"].values())
        if workers is None and threads == 0:  # an adaptive cluster before it scaled up
            self.client.close()
            raise InvalidRequestError(
                f"the Dask scheduler at {address} has no workers yet: give the number of "
                "jobs to run at once (--workers N, workers=N)",
                address=address,
            )
        super().__init__(workers or threads)

    def describe(self) -> str:
        where = self.address or "local cluster"
        return f"dask ({where}), {self.slots} at once"

    def call(self, work: WorkItem) -> Any:
        from distributed import Event

        flag = f"datacatalog-populate-{work.key}-{uuidlib.uuid4().hex}"
        future = self.client.submit(
            _on_dask_worker, work.fn, work.args, flag, key=flag, pure=False, retries=0
        )
        done = threading.Event()
        # Set on the client's callback thread; waiting on it (not on result(timeout=...),
        # whose short timeouts race inside distributed) keeps an eye on the cancel.
        future.add_done_callback(lambda _future: done.set())
        try:
            while not done.wait(_POLL):
                if work.cancelled():
                    Event(flag, client=self.client).set()
                    done.wait(work.grace + 1.0)
                    self.client.cancel([future])
                    raise WorkCancelled(f"{work.key} was cancelled")
            return future.result()
        finally:
            future.release()

    def workflow_executor(self) -> Any:
        """The tasks of one workflow execution on this cluster (never shut down by it)."""
        from datacatalog.orchestrator.executors.dask import DaskExecutor

        return DaskExecutor(client=self.client)

    def close(self) -> None:
        """Close the client before the cluster, and only a cluster started here."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _on_thread(work: WorkItem) -> Any:
    """``work`` on a daemon thread of this process, watching the cancel."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = work.fn(*work.args, cancelled=work.cancelled)
        except BaseException as exc:  # handed to the caller, whatever it is
            box["error"] = exc
        finally:
            done.set()

    # A daemon: a callable that ignores a cancel must not keep the process alive.
    threading.Thread(target=run, name=f"populate-{work.key}", daemon=True).start()
    while not done.wait(_POLL):
        # A command sees the cancel itself and stops: it gets its grace period.
        if work.cancelled() and not done.wait(work.grace + 1.0):
            raise WorkCancelled(f"{work.key} was cancelled")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _without_cancel(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """In a pool process: the work cannot see this process's cancel; never cancelled."""
    return fn(*args, cancelled=_never)


def _never() -> bool:
    return False


def _on_dask_worker(fn: Callable[..., Any], args: tuple[Any, ...], flag: str) -> Any:
    """On a Dask worker: the work, seeing a cancel through a distributed Event."""
    from distributed import Event

    events: list[Any] = []

    def cancelled() -> bool:
        if not events:  # made on first poll: an Event needs the worker's client
            events.append(Event(flag))
        return bool(events[0].is_set())

    return fn(*args, cancelled=cancelled)


def parse_executor(
    spec: str, *, workers: int | None = None, timeout: float = DEFAULT_DASK_TIMEOUT
) -> Backend:
    """``thread``, ``process``, ``dask`` or ``dask=ADDRESS`` as a backend.

    Raises:
        InvalidRequestError: An unknown executor, a bad worker count, an empty address.
        UnavailableError: A Dask scheduler that does not answer.
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InvalidRequestError(f"workers must be a whole number >= 1, not {workers!r}")
    name, _, address = spec.partition("=")
    default = workers or max(1, os.cpu_count() or 1)
    if name == "thread" and not address:
        return ThreadBackend(default)
    if name == "process" and not address:
        return ProcessBackend(default)
    if name == "dask":
        if _ and not address.strip():
            raise InvalidRequestError("--executor dask= needs a scheduler address (tcp://...)")
        return DaskBackend(address.strip() or None, workers=workers, timeout=timeout)
    raise InvalidRequestError(
        f"unknown executor {spec!r}; choose thread, process, dask or dask=ADDRESS",
        executor=spec,
    )
