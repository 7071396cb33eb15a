"""Running attempts on a Dask distributed cluster.

* ``DaskExecutor()`` starts a local cluster (on 127.0.0.1, no dashboard, ``workers``
  single-threaded worker processes) that it owns and closes;
* ``DaskExecutor(address="tcp://host:8786")`` or ``DaskExecutor(client=client)`` uses an
  existing scheduler (a dask-jobqueue SLURM/PBS cluster, Kubernetes, ...) and never shuts
  it down.

Retries stay the runner's: each attempt is one future with a key of its own
(``<execution>-<task>-<attempt>``, ``pure=False``), and a cluster we start allows no
failures, so Dask never silently re-runs a task whose worker died (that surfaces as
``KilledWorker``, the attempt's failure). Workers report an attempt's start with a worker
event on the topic ``datacatalog.task``, and its end the same way when the outcome is small
(no log records; message, error and output paths under :data:`PUSHED_ERROR_CHARS`): the
scheduler pushes it to the runner with no request for the result. Any other outcome (and
any future that ended without that event: a dead worker, a lost message) is fetched as the
future's result.
Operations see cancellation through a ``distributed.Event``. On a cluster we own,
attempts still running ``cancel_grace`` seconds after a cancel are stopped by killing
their worker, and the processes the attempt started with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dask
from distributed import Client, Event, Future, LocalCluster, as_completed, get_worker
from distributed.protocol import pickle as dask_pickle

from datacatalog.clock import utc_now
from datacatalog.errors import InvalidRequestError
from datacatalog.orchestrator.decorators import check_resources
from datacatalog.orchestrator.exceptions import InvalidWorkflowRunnerParams
from datacatalog.orchestrator.executors.base import Emit, Executor, Finished, Started
from datacatalog.orchestrator.worker import (
    Invocation,
    Outcome,
    error_info,
    failure,
    run_attempt,
)

TOPIC = "datacatalog.task"

PUSHED_ERROR_CHARS = 2048
"""Most characters of message and error (type, message, traceback) an attempt's end event
carries; the scheduler keeps recent events, so bigger outcomes travel as the future's
result instead."""

log = logging.getLogger(__name__)


def _attempt_on_worker(invocation: Invocation, cancel_event: str) -> Any:
    worker = get_worker()
    worker.log_event(
        TOPIC,
        {
            "kind": "started",
            "execution_id": invocation.execution_id,
            "task": invocation.task,
            "attempt": invocation.attempt,
            "started": utc_now().isoformat(),
            "worker": worker.address,
        },
    )
    flags: list[Event] = []

    def cancelled() -> bool:
        # Made on first poll: most operations never ask, and an Event needs the worker's
        # client (a connection to the scheduler).
        if not flags:
            flags.append(Event(cancel_event))
        return bool(flags[0].is_set())

    outcome = run_attempt(invocation, cancelled)
    pushed = _pushed(outcome)
    if pushed is not None:
        try:
            worker.log_event(TOPIC, {"execution_id": invocation.execution_id, **pushed})
        except Exception as exc:  # the runner then fetches the outcome as the result
            log.debug("pushing the end of %s: %s", invocation.key, exc)
    return outcome


def _pushed(outcome: Outcome) -> dict[str, Any] | None:
    """``outcome`` as an end event's plain fields, or None when it is too big to push."""
    error = outcome.error
    size = len(outcome.message or "") + sum(len(str(v)) for v in (error or {}).values())
    size += sum(len(path) for path in outcome.outputs)
    if outcome.logs or size > PUSHED_ERROR_CHARS:
        return None
    return {
        "kind": "finished",
        "task": outcome.task,
        "attempt": outcome.attempt,
        "status": outcome.status,
        "started": outcome.started.isoformat(),
        "ended": outcome.ended.isoformat(),
        "message": outcome.message,
        "retry_interval": None if outcome.retry_interval is None else float(outcome.retry_interval),
        "error": error,
        "outputs": list(outcome.outputs),
    }


def _outcome(message: dict[str, Any]) -> Outcome:
    """The outcome an end event carries (see :func:`_pushed`)."""
    return Outcome(
        task=message["task"],
        attempt=int(message["attempt"]),
        status=message["status"],
        started=datetime.fromisoformat(message["started"]),
        ended=datetime.fromisoformat(message["ended"]),
        message=message.get("message"),
        retry_interval=message.get("retry_interval"),
        error=message.get("error"),
        outputs=[str(path) for path in message.get("outputs") or []],
    )


class DaskExecutor(Executor):
    """Attempts run as Dask futures.

    Args:
        address: A scheduler to connect to (``tcp://host:port``); None starts a local cluster.
        client: An existing ``distributed.Client`` to use (its cluster is never shut down).
        workers: Worker processes of the local cluster we start (default 2).
        resources: Abstract resources each worker of the local cluster we start declares
            (``{"GPU": 1}``), for operations that request them.
        cancel_grace: Seconds running attempts get after a cancel before their worker is
            killed (own cluster only; None: never killed).
    """

    pickles = True

    def __init__(
        self,
        address: str | None = None,
        client: Client | None = None,
        workers: int | None = None,
        *,
        resources: Mapping[str, float] | None = None,
        cancel_grace: float | None = 10.0,
    ) -> None:
        if address is not None and client is not None:
            raise InvalidRequestError("DaskExecutor: give an address or a client, not both")
        if workers is not None and (address is not None or client is not None):
            raise InvalidRequestError(
                "DaskExecutor: workers sizes the local cluster it starts; an existing "
                "scheduler's workers are its own"
            )
        if resources is not None and (address is not None or client is not None):
            raise InvalidRequestError(
                "DaskExecutor: resources are declared by the workers of the local cluster it "
                "starts; an existing scheduler's workers declare their own"
            )
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise InvalidRequestError(
                f"DaskExecutor: workers must be an integer of at least 1, not {workers!r}"
            )
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise InvalidRequestError(
                f"DaskExecutor: address must be a scheduler address, not {address!r}"
            )
        self.address = address
        self.workers = workers or 2
        self.resources = check_resources(resources, "DaskExecutor")
        self.cancel_grace = cancel_grace
        self._given_client = client
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None
        self._owns_client = False
        self._futures: dict[str, tuple[Invocation, Future[Any]]] = {}
        self._running: dict[str, str] = {}  # key -> worker address, from start events
        self._reported: set[str] = set()  # keys whose Finished was emitted
        self._lock = threading.Lock()
        self._completed: as_completed | None = None
        self._wake = threading.Event()  # futures were added, or close() wants the collector
        self._closing = False
        self._collector: threading.Thread | None = None
        self._cancel: Event | None = None
        self._killer: threading.Timer | None = None

    @property
    def owns_cluster(self) -> bool:
        """Whether this executor started (and so will close) the cluster."""
        return self._cluster is not None

    @property
    def client(self) -> Client | None:
        """The client in use (between start and close)."""
        return self._client

    def describe(self) -> str:
        """``dask(local, workers=N)`` or ``dask(ADDRESS)``."""
        if self._given_client is not None:
            scheduler = self._given_client.scheduler
            return f"dask({scheduler.address if scheduler else 'client'})"
        if self.address is not None:
            return f"dask({self.address})"
        return f"dask(local, workers={self.workers})"

    def dumps(self, invocation: Invocation) -> bytes:
        """Serialize the way Dask ships a task's arguments (pickle, then cloudpickle)."""
        return bytes(dask_pickle.dumps(invocation))

    def start(self, execution_id: str, emit: Emit) -> None:
        """Connect (or start a local cluster), subscribe to start events, make the cancel flag."""
        super().start(execution_id, emit)
        if self._given_client is not None:
            self._client = self._given_client
        elif self.address is not None:
            self._client = Client(self.address, set_as_default=False)
            self._owns_client = True
        else:
            # With the default of 3 allowed failures Dask would re-run a task whose worker
            # died, counting attempts twice: ours are the only retries.
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    **({"resources": dict(self.resources)} if self.resources else {}),
                )
            self._client = Client(self._cluster, set_as_default=False)
            self._owns_client = True
        self._cancel = Event(f"datacatalog-cancel-{execution_id}", client=self._client)
        self._cancel.clear()
        self._reported = set()
        self._client.subscribe_topic(TOPIC, self._on_event)
        self._completed = as_completed(loop=self._client.loop, with_results=False)
        self._closing = False
        self._collector = threading.Thread(
            target=self._collect, name="datacatalog-dask", daemon=True
        )
        self._collector.start()

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        _, message = event
        if message.get("execution_id") != self.execution_id:
            return
        key = f"{self.execution_id}-{message['task']}-{message['attempt']}"
        if message.get("kind") == "finished":
            if self._claim(key):
                self.emit(Finished(_outcome(message)))
            return
        with self._lock:
            if key in self._reported:
                return  # its end came first
            self._running[key] = str(message.get("worker"))
        self.emit(
            Started(
                message["task"],
                int(message["attempt"]),
                datetime.fromisoformat(message["started"]),
                str(message.get("worker")),
            )
        )

    def _claim(self, key: str) -> bool:
        """Whether this caller is the one to report the attempt ``key`` ended (once)."""
        with self._lock:
            if key in self._reported:
                return False
            self._reported.add(key)
            self._running.pop(key, None)
            return True

    def submit(self, invocation: Invocation) -> None:
        """Submit one attempt as a future with a key of its own."""
        assert self._client is not None and self._cancel is not None, "start() first"
        future = self._client.submit(
            _attempt_on_worker,
            invocation,
            self._cancel.name,
            key=invocation.key,
            pure=False,
            retries=0,
            resources=invocation.operation.resources or None,
        )
        self._track([(invocation, future)])

    def submit_many(self, invocations: Sequence[Invocation]) -> None:
        """Submit attempts together: one graph update per set of resource requests."""
        assert self._client is not None and self._cancel is not None, "start() first"
        groups: dict[tuple[tuple[str, float], ...], list[Invocation]] = {}
        for invocation in invocations:
            needs = tuple(sorted(invocation.operation.resources.items()))
            groups.setdefault(needs, []).append(invocation)
        for needs, group in groups.items():
            futures = self._client.map(
                _attempt_on_worker,
                group,
                [self._cancel.name] * len(group),
                key=[invocation.key for invocation in group],
                pure=False,
                retries=0,
                resources=dict(needs) or None,
            )
            self._track(list(zip(group, futures, strict=True)))

    def check(self, invocations: Sequence[Invocation]) -> None:
        """Refuse unpicklable invocations, and resource requests no worker can meet.

        Dask would queue such an attempt forever without a word. The requests are checked
        against the workers connected now (``scheduler_info``); with none connected yet (an
        adaptive cluster still scaling up) there is nothing to check against.

        Raises:
            InvalidWorkflowRunnerParams: Naming the task, what it asks for and what the
                workers offer.
        """
        super().check(invocations)
        wanted = [inv for inv in invocations if inv.operation.resources]
        if not wanted:
            return
        offered = self._offered()
        if offered is None:
            return
        for invocation in wanted:
            needs = invocation.operation.resources
            if any(all(w.get(k, 0) >= v for k, v in needs.items()) for w in offered):
                continue
            shown = sorted({_show(w) for w in offered}) or ["nothing"]
            raise InvalidWorkflowRunnerParams(
                f"task {invocation.task}: operation {invocation.operation.name} asks for "
                f"{_show(needs)}, which no worker of {self.describe()} offers (the workers "
                f"offer {'; '.join(shown)}); it would wait forever",
                task=invocation.task,
            )

    def _offered(self) -> list[dict[str, float]] | None:
        """The resources of each connected worker (None: no worker connected yet)."""
        if self._given_client is None and self.address is None:
            return [dict(self.resources)] * self.workers
        if self._given_client is not None:
            info = self._given_client.scheduler_info(n_workers=-1)
        else:
            with Client(self.address, set_as_default=False) as client:
                info = client.scheduler_info(n_workers=-1)
        workers = list(info.get("workers", {}).values())
        if not workers:
            return None
        return [dict(worker.get("resources") or {}) for worker in workers]

    def _track(self, submitted: list[tuple[Invocation, Future[Any]]]) -> None:
        assert self._completed is not None
        with self._lock:
            for invocation, future in submitted:
                self._futures[invocation.key] = (invocation, future)
        self._completed.update([future for _, future in submitted])
        self._wake.set()

    def _collect(self) -> None:
        # Futures done together come in one batch, so their results come in one gather.
        # An empty as_completed stops iterating: wait for the next futures to arrive.
        assert self._completed is not None
        while True:
            self._wake.wait()
            self._wake.clear()
            for done in self._completed.batches():
                with self._lock:
                    batch = [self._futures[f.key] for f in done if f.key in self._futures]
                self._report(batch)
            if self._closing:
                return

    def _report(self, batch: list[tuple[Invocation, Future[Any]]]) -> None:
        with self._lock:
            for invocation, _ in batch:
                self._futures.pop(invocation.key, None)
                self._running.pop(invocation.key, None)
            pushed = {inv.key for inv, _ in batch if inv.key in self._reported}
        # An end already pushed needs no result; the rest are fetched (one gather).
        live = [(inv, fut) for inv, fut in batch if not fut.cancelled() and inv.key not in pushed]
        good = [(inv, fut) for inv, fut in live if fut.status == "finished"]
        results: list[Any] = []
        if good and self._client is not None:
            try:
                results = list(self._client.gather([fut for _, fut in good]))
            except Exception:  # one lost result: fetch them one by one below
                results = []
        for (invocation, future), outcome in zip(good, results, strict=False):
            if self._claim(invocation.key):
                self.emit(Finished(outcome))
            live.remove((invocation, future))
        for invocation, future in live:
            try:
                outcome = future.result()
            except BaseException as exc:  # whatever ended it, the attempt gets an outcome
                info = error_info(exc)
                if type(exc).__name__ == "KilledWorker":
                    info["message"] = (
                        f"the Dask worker running task {invocation.task} attempt "
                        f"{invocation.attempt} died ({exc})"
                    )
                outcome = failure(invocation, info, started=utc_now())
            if self._claim(invocation.key):
                self.emit(Finished(outcome))

    def cancel(self) -> list[tuple[str, int]]:
        """Set the cancel flag, cancel attempts not yet started, schedule the hard stop."""
        assert self._client is not None and self._cancel is not None
        self._cancel.set()
        with self._lock:
            # Neither started nor ended as far as we know. Claimed here, so an end event
            # that still arrives for one of them (it had started after all) is not
            # reported: the runner counts these as dropped.
            waiting = [
                (inv, fut)
                for key, (inv, fut) in self._futures.items()
                if key not in self._running and key not in self._reported
            ]
            self._reported.update(inv.key for inv, _ in waiting)
        if waiting:
            self._client.cancel([fut for _, fut in waiting])
        if self.owns_cluster and self.cancel_grace is not None:
            self._killer = threading.Timer(self.cancel_grace, self._kill_running)
            self._killer.daemon = True
            self._killer.start()
        return [(inv.task, inv.attempt) for inv, _ in waiting]

    def _kill_running(self) -> None:
        with self._lock:
            addresses = sorted(set(self._running.values()))
        if addresses and self._client is not None:
            try:
                self._client.run(_stop_worker, workers=addresses)
            except Exception as exc:  # the worker may be gone already; its attempt fails anyway
                log.debug("killing workers %s after a cancel: %s", addresses, exc)

    def close(self) -> None:
        """Stop collecting; close the client before the cluster, and only what we started."""
        if self._killer is not None:
            self._killer.cancel()
            self._killer = None
        if self._client is not None:
            try:
                self._client.unsubscribe_topic(TOPIC)
            except Exception as exc:  # a client whose scheduler went away cannot unsubscribe
                log.debug("unsubscribing from %s: %s", TOPIC, exc)
        self._closing = True
        self._wake.set()
        if self._collector is not None:
            self._collector.join(timeout=30)
            self._collector = None
        if self._owns_client and self._client is not None:
            self._client.close()
        self._client = None
        self._owns_client = False
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _stop_worker() -> None:
    """Run on a worker: kill the processes its attempts started, then the worker itself.

    A worker process's children are what its operations started (``subprocess``); left
    alone they would outlive the worker. The nanny of a cluster we own starts a new worker.
    """
    import psutil  # type: ignore[import-untyped]  # a dependency of distributed

    with contextlib.suppress(psutil.Error):
        children = psutil.Process().children(recursive=True)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(children, timeout=2)
    os._exit(1)


def _show(resources: Mapping[str, float]) -> str:
    """``GPU=1, MEMORY=8e+09`` (or ``no resources``)."""
    if not resources:
        return "no resources"
    return ", ".join(f"{name}={amount:g}" for name, amount in sorted(resources.items()))
