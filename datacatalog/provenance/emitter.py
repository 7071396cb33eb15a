"""Live OpenLineage emission: run events sent as job events happen.

An :class:`OpenLineageEmitter` is a job-event observer (``JobService.observers``): it
is called after an event's write succeeded, builds the OpenLineage events that entry
maps to (:func:`datacatalog.provenance.openlineage.lifecycle`) and queues them. One
background thread sends them in order through the client's own transport (HTTP to
Marquez or any OpenLineage endpoint, or a file), so a sink that is down never fails
the catalog's write and slows it by no more than building the events.

Nothing is dropped silently: a failed send is retried (``retries`` times, with a
growing pause); an event that still cannot be sent is kept in :attr:`undelivered`,
appended to the ``spool`` file when one is set (one JSON line with the event and the
error), and logged as a warning. :meth:`close` waits a bounded time for the queue and
reports what is left the same way.

Configured from the environment by :func:`from_environment`:
``DATACATALOG_OPENLINEAGE_URL`` (an HTTP endpoint base, events POSTed to
``api/v1/lineage``), ``DATACATALOG_OPENLINEAGE_FILE`` (a JSON Lines file),
``DATACATALOG_OPENLINEAGE_NAMESPACE`` (default ``datacatalog``).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunEvent
from openlineage.client.serde import Serde
from openlineage.client.transport import Transport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport

from datacatalog.emission import FILE_ENV, NAMESPACE_ENV, URL_ENV, configured
from datacatalog.errors import InvalidRequestError
from datacatalog.jobs import EventResult, job_document
from datacatalog.provenance.openlineage import DEFAULT_NAMESPACE, check_namespace, lifecycle

__all__ = [
    "FILE_ENV",
    "NAMESPACE_ENV",
    "URL_ENV",
    "EmitterStatus",
    "OpenLineageEmitter",
    "Undelivered",
    "from_environment",
    "lifecycle",
    "transport_for",
]
from datacatalog.storage import StorageRegistry
from datacatalog.store import Store

log = logging.getLogger(__name__)

SPOOL_NAME = "openlineage-undelivered.jsonl"

_STOP = object()


@dataclass
class Undelivered:
    """An event that could not be sent, and why."""

    event: dict[str, Any]
    error: str
    attempts: int


@dataclass
class EmitterStatus:
    """What the emitter did so far."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)


class OpenLineageEmitter:
    """Send a job's OpenLineage events as its events are applied (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        transport: Transport,
        *,
        storage: StorageRegistry | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        retries: int = 2,
        backoff: float = 0.2,
        spool: Path | None = None,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.namespace = check_namespace(namespace)
        self.retries = retries
        self.backoff = backoff
        self.spool = spool
        self.client = OpenLineageClient(transport=transport)
        self.undelivered: list[Undelivered] = []
        self._status = EmitterStatus()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        # The pause between attempts; injectable so tests never sleep for real.
        self._wait = wait or self._closing.wait
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="openlineage-emitter", daemon=True)
        self._thread.start()

    # -- the observer -----------------------------------------------------------------------

    def __call__(self, result: EventResult) -> None:
        """Queue the OpenLineage events of one applied job event (never raises)."""
        if not result.applied:
            return  # a replayed idempotency key: its events were queued the first time
        try:
            job = job_document(self.store, result.job.uuid, history=True, include_deleted=True)
            events = [
                e.event
                for e in lifecycle(self.store, job, storage=self.storage, namespace=self.namespace)
                if e.entry_uuid == result.entry.uuid
            ]
        except Exception as exc:  # an observer must never fail the write it follows
            self._report({"job": result.job.uuid, "entry": result.entry.uuid}, exc, 0)
            return
        for event in events:
            with self._lock:
                self._status.pending += 1
            self._queue.put(event)

    # -- sending ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._send(item)
            finally:
                self._queue.task_done()

    def _send(self, event: RunEvent) -> None:
        attempts = 0
        while True:
            attempts += 1
            try:
                self.client.emit(event)
            except Exception as exc:  # any transport failure: retry, then report
                if attempts > self.retries or self._closing.is_set():
                    with self._lock:
                        self._status.pending -= 1
                    self._report(Serde.to_dict(event), exc, attempts)
                    return
                self._wait(self.backoff * attempts)
                continue
            with self._lock:
                self._status.pending -= 1
                self._status.sent += 1
            return

    def _report(self, event: dict[str, Any], exc: BaseException, attempts: int) -> None:
        error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._status.failed += 1
            self._status.errors.append(error)
            self.undelivered.append(Undelivered(event=event, error=error, attempts=attempts))
        log.warning(
            "OpenLineage event not delivered after %d attempt(s) (%s): %s",
            attempts,
            error,
            json.dumps(event, default=str)[:500],
        )
        if self.spool is not None:
            try:
                self.spool.parent.mkdir(parents=True, exist_ok=True)
                with self.spool.open("a", encoding="utf-8") as handle:
                    record = {"error": error, "attempts": attempts, "event": event}
                    handle.write(json.dumps(record, default=str) + "\n")
            except OSError as spool_error:
                log.error("cannot write the OpenLineage spool %s: %s", self.spool, spool_error)

    # -- life -------------------------------------------------------------------------------

    def status(self) -> EmitterStatus:
        """Counts of events sent, failed and still queued, and the errors seen."""
        with self._lock:
            return EmitterStatus(
                sent=self._status.sent,
                failed=self._status.failed,
                pending=self._status.pending,
                errors=list(self._status.errors),
            )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds for the queue to drain; True when it did."""
        done = threading.Event()

        def waiter() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> EmitterStatus:
        """Send what is queued (waiting at most ``timeout``), then stop; report the rest."""
        drained = self.flush(timeout)
        self._closing.set()
        if drained:
            self._queue.put(_STOP)
            self._thread.join(timeout)
        else:
            # The sink is too slow: what is still queued is reported, not lost.
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    with self._lock:
                        self._status.pending -= 1
                    self._report(
                        Serde.to_dict(item), TimeoutError("not sent before the catalog closed"), 0
                    )
                self._queue.task_done()
        return self.status()


def transport_for(
    *, url: str | None = None, file: str | None = None, timeout: float = 2.0
) -> Transport:
    """The client transport for an HTTP endpoint ``url`` or a JSON Lines ``file``."""
    if bool(url) == bool(file):
        raise InvalidRequestError(
            f"OpenLineage emission needs exactly one of {URL_ENV} or {FILE_ENV}"
        )
    if url:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequestError(
                f"{URL_ENV} must be an http:// or https:// URL, not {url!r}", value=url
            )
        # Our own retries (and reports) replace urllib3's, which could block for long.
        return HttpTransport(HttpConfig(url=url, timeout=timeout, retry={"total": 0}))
    assert file is not None
    return FileTransport(FileConfig(log_file_path=file, append=True))


def from_environment(
    store: Store,
    *,
    storage: StorageRegistry | None = None,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> OpenLineageEmitter | None:
    """An emitter configured by ``DATACATALOG_OPENLINEAGE_*``, or None when unset.

    It is closed (bounded wait) when the process exits; what is undelivered then goes
    to ``<data dir>/openlineage-undelivered.jsonl``.
    """
    values = os.environ if env is None else env
    if not configured(values):
        return None
    url = values.get(URL_ENV) or None
    file = values.get(FILE_ENV) or None
    emitter = OpenLineageEmitter(
        store,
        transport_for(url=url, file=file),
        storage=storage,
        namespace=values.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE,
        spool=(data_dir / SPOOL_NAME) if data_dir is not None else None,
    )
    atexit.register(emitter.close)
    return emitter
