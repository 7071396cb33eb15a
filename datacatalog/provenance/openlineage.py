"""A job's life-cycle as OpenLineage run events (spec 2-0-2, ``openlineage-python``).

Mapping
    The OpenLineage *job* is the recurring definition, our pipeline (namespace
    :data:`DEFAULT_NAMESPACE` or ``DATACATALOG_OPENLINEAGE_NAMESPACE``, name the
    pipeline's id); an OpenLineage *run* is one execution of our job.

Run ids
    Unique per execution and stable across exports: the job UUID for the first
    execution, a UUID5 of (job UUID, execution number) for each later one: after a
    reset, a ``retry`` of a failed job or a ``rerun`` (:mod:`datacatalog.jobs.executions`).

Life-cycle (read from the job's history)
    ``run`` from CREATED, ``retry`` and ``rerun`` (a new execution) → START; ``finish``
    → COMPLETE; ``fail`` → FAIL (with the ``errorMessage`` facet); ``reset`` of a running
    job → ABORT. The terminal events
    are final: a later ``fail`` of the same execution sends nothing. ``indexed`` (the
    outputs are catalogued) → OTHER, carrying the outputs, since a COMPLETE sent at
    ``finish`` may predate indexing.

Datasets
    Inputs are the job's ``acted_on`` files and ``acted_using`` references; outputs
    its indexed files, with ``outputStatistics`` (size), ``storage``, ``datasetVersion``
    (``sha256:<hex>``) and ``lineage`` (the file's ``derived_from``) facets. Local
    files are named ``file://{host}`` + path, S3 objects ``s3://{bucket}`` + key.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    lineage,
    output_statistics_output_dataset,
    processing_engine_run,
    storage_dataset,
)
from openlineage.client.serde import Serde

from datacatalog import __version__
from datacatalog.errors import DataCatalogError, InvalidRequestError
from datacatalog.identifiers import kind_of
from datacatalog.jobs import executions, job_document
from datacatalog.storage import StorageRegistry
from datacatalog.store import Document, Store

DEFAULT_NAMESPACE = "datacatalog"
PRODUCER = f"https://datacatalog.local/datacatalog/{__version__}"
FACET_SCHEMA = "https://datacatalog.local/spec/facets/1-0-0/DatacatalogRunFacet.json"


@attr.define
class DatacatalogRunFacet(RunFacet):
    """Our own run facet: the catalog job, its execution and the metadata it is a child of.

    The metadata links are not runs, so they are not put in the ``parent`` facet.
    """

    jobUuid: str  # OpenLineage facets use camelCase fields
    execution: int
    state: str
    childOf: list[dict[str, str]] = attr.field(factory=list)
    archivePath: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA


@dataclass(frozen=True)
class LifecycleEvent:
    """One run event and the history entry it comes from."""

    entry_uuid: str
    execution: int
    event: RunEvent

    def to_dict(self) -> dict[str, Any]:
        """The event as OpenLineage JSON (a dict)."""
        return Serde.to_dict(self.event)


def check_namespace(namespace: str) -> str:
    """A job namespace Marquez accepts: non-empty, no ``://``."""
    if not isinstance(namespace, str) or not namespace.strip() or "://" in namespace:
        raise InvalidRequestError(
            f"OpenLineage namespace {namespace!r} must be a non-empty name without '://'",
            value=str(namespace),
        )
    return namespace


def run_id(job_uuid: str, execution: int) -> str:
    """The OpenLineage run id of execution ``execution`` (0 first) of a job."""
    return executions.run_id(job_uuid, execution)


def job_name(pipeline: Mapping[str, Any] | None, job: Mapping[str, Any]) -> str:
    """The OpenLineage job name: the pipeline's id, with ``/`` (which Marquez splits) as ``.``."""
    name = str(pipeline["id"]) if pipeline else str(job["pipeline_uuid"])
    return name.replace("/", ".")


def _timestamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat()


class _Context:
    """What building a job's events needs, read once: pipeline, inputs, outputs."""

    def __init__(
        self, store: Store, storage: StorageRegistry | None, job: Document, namespace: str
    ) -> None:
        self.store = store
        self.storage = storage
        self.job = job
        self.namespace = namespace
        self.pipeline = store.get("pipeline", {"uuid": job["pipeline_uuid"]})
        acted_on = list(job.get("acted_on", []))
        acted_using = list(job.get("acted_using", []))
        self.input_files = {d["uuid"]: d for d in store.find("file", {"uuid": {"$in": acted_on}})}
        self.references = {
            d["uuid"]: d for d in store.find("reference", {"uuid": {"$in": acted_using}})
        }
        self.inputs_order = [*acted_on, *acted_using]
        self.outputs = store.find("file", {"generated_by": job["uuid"]}, sort=[("name", 1)])
        upstream = sorted({u for f in self.outputs for u in f.get("derived_from", [])})
        self.upstream = {d["uuid"]: d for d in store.find("file", {"uuid": {"$in": upstream}})}
        self.host = socket.gethostname()

    # -- datasets ---------------------------------------------------------------------------

    def file_name(self, record: Mapping[str, Any]) -> tuple[str, str]:
        """(namespace, name) of a file record, after the OpenLineage naming rules."""
        path = str(record["name"])
        system_name = str(record.get("storage_system", ""))
        if self.storage is None or system_name not in self.storage:
            return f"datacatalog://{system_name or 'unknown'}", path
        system = self.storage.get(system_name)
        url = urlsplit(system.url)
        backend = system.root.rstrip("/") + path
        if system.is_local:
            return f"file://{self.host}", backend
        if url.scheme in ("s3", "s3a", "gs", "gcs", "abfs", "az"):
            bucket, _, key = backend.lstrip("/").partition("/")
            return f"{url.scheme}://{bucket}", key
        return f"{url.scheme or 'file'}://", backend

    def input_dataset(self, uuid_value: str) -> InputDataset:
        if uuid_value in self.input_files:
            namespace, name = self.file_name(self.input_files[uuid_value])
            facets = self._file_facets(namespace, self.input_files[uuid_value])
            return InputDataset(namespace=namespace, name=name, facets=facets)
        reference = self.references.get(uuid_value)
        if reference is not None:
            uri = urlsplit(str(reference["uri"]))
            namespace = f"{uri.scheme}://{uri.netloc}" if uri.scheme else self.namespace
            return InputDataset(namespace=namespace, name=uri.path or str(reference["uri"]))
        # Not catalogued: only its UUID is known, so it is named in our own namespace.
        kind = kind_of(uuid_value) or "entity"
        return InputDataset(namespace=self.namespace, name=f"{kind}/{uuid_value}")

    def _file_facets(self, namespace: str, record: Mapping[str, Any]) -> dict[str, Any]:
        facets: dict[str, Any] = {
            "storage": storage_dataset.StorageDatasetFacet(
                storageLayer=namespace.split("://", 1)[0] or "file",
                fileFormat=str(record.get("type") or "") or None,
                producer=PRODUCER,
            ),
        }
        if record.get("sha256"):
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=f"sha256:{record['sha256']}", producer=PRODUCER
            )
        return facets

    def output_dataset(self, record: Mapping[str, Any]) -> OutputDataset:
        namespace, name = self.file_name(record)
        facets = self._file_facets(namespace, record)
        sources = [self.upstream[u] for u in record.get("derived_from", []) if u in self.upstream]
        if sources:
            inputs: list[Any] = []
            for source in sources:
                src_namespace, src_name = self.file_name(source)
                inputs.append(
                    lineage.LineageDatasetInput(
                        namespace=src_namespace, name=src_name, type="DATASET"
                    )
                )
            facets["lineage"] = lineage.LineageDatasetFacet(inputs=inputs, producer=PRODUCER)
        output_facets: dict[str, Any] = {}
        if record.get("size") is not None:
            output_facets["outputStatistics"] = (
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    size=int(record["size"]), fileCount=1, producer=PRODUCER
                )
            )
        return OutputDataset(
            namespace=namespace, name=name, facets=facets, outputFacets=output_facets
        )

    # -- events -----------------------------------------------------------------------------

    def event(
        self,
        state: RunState,
        entry: Mapping[str, Any],
        execution: int,
        *,
        with_outputs: bool,
    ) -> RunEvent:
        job = self.job
        run_facets: dict[str, Any] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=__version__, name="datacatalog", producer=PRODUCER
            ),
            "datacatalog": DatacatalogRunFacet(
                jobUuid=str(job["uuid"]),
                execution=execution,
                state=str(entry.get("to_state") or job["state"]),
                childOf=[
                    {"uuid": c, "kind": str(kind_of(c) or "unknown")}
                    for c in job.get("child_of", [])
                ],
                archivePath=str(job.get("archive_path") or "") or None,
                producer=PRODUCER,
            ),
        }
        if state == RunState.FAIL:
            data = entry.get("data") or {}
            message = data.get("message") or data.get("error") or "the job failed"
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=str(message), programmingLanguage="unknown", producer=PRODUCER
            )
        job_facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="DATACATALOG", jobType="JOB", producer=PRODUCER
            )
        }
        return RunEvent(
            eventType=state,
            eventTime=_timestamp(entry["date"]),
            run=Run(runId=run_id(str(job["uuid"]), execution), facets=run_facets),
            job=Job(namespace=self.namespace, name=job_name(self.pipeline, job), facets=job_facets),
            producer=PRODUCER,
            inputs=[self.input_dataset(u) for u in self.inputs_order],
            outputs=[self.output_dataset(r) for r in self.outputs] if with_outputs else [],
        )


def lifecycle(
    store: Store,
    job_or_uuid: str | Mapping[str, Any],
    *,
    storage: StorageRegistry | None = None,
    namespace: str = DEFAULT_NAMESPACE,
) -> list[LifecycleEvent]:
    """The run events of a job's whole history, in order (see the module docstring).

    Args:
        store: The store.
        job_or_uuid: A job UUID, or the job document with its history.
        storage: The storage systems, to name files after the OpenLineage rules.
        namespace: The OpenLineage job namespace.

    Raises:
        InvalidRequestError: A bad namespace or job UUID.
        NotFoundError: No such job.
    """
    check_namespace(namespace)
    job = (
        job_document(store, job_or_uuid, history=True)
        if isinstance(job_or_uuid, str)
        else dict(job_or_uuid)
    )
    context = _Context(store, storage, job, namespace)
    events: list[LifecycleEvent] = []
    progress = _Progress()
    for entry in job.get("history", []):
        emitted = progress.emitted(entry["name"])
        if emitted is not None:
            with_outputs = emitted in (RunState.COMPLETE, RunState.OTHER)
            events.append(
                LifecycleEvent(
                    entry_uuid=str(entry["uuid"]),
                    execution=progress.execution,
                    event=context.event(
                        emitted, entry, progress.execution, with_outputs=with_outputs
                    ),
                )
            )
        progress.passed(entry)
    return events


_ENDINGS = {"finish": RunState.COMPLETE, "fail": RunState.FAIL, "reset": RunState.ABORT}
"""The run event of each history entry that ends an execution (a reset only once started,
a finish only from RUNNING)."""


@dataclass
class _Progress:
    """How far a walk through a job's history has got: which execution, whether it has
    started or ended, the job's state."""

    execution: int = 0
    state: str = "CREATED"
    started: bool = False
    terminal: bool = False

    def emitted(self, name: str) -> RunState | None:
        """The run event the history entry ``name`` emits, if any (a new execution begun)."""
        if name in executions.BEGINS:
            # A failed, forced or stale job run again: a new execution begins.
            if self.started or self.terminal:
                self.execution += 1
            self.started, self.terminal = True, False
            return RunState.START
        if self.terminal:
            return RunState.OTHER if name == "indexed" else None
        if name == "run" and self.state == "CREATED":
            self.started = True
            return RunState.START
        if name not in _ENDINGS or (name == "finish" and self.state != "RUNNING"):
            return None
        if name == "reset" and not self.started:
            return None
        self.terminal = True
        return _ENDINGS[name]

    def passed(self, entry: Mapping[str, Any]) -> None:
        """Move past ``entry``: a reset ends whatever ran, the state follows the event."""
        if entry["name"] == "reset":
            # Whatever the reset ended, the next run of this job is a new execution.
            if self.started or self.terminal:
                self.execution += 1
            self.started = self.terminal = False
        if entry.get("to_state"):
            self.state = str(entry["to_state"])


def to_json_lines(events: Sequence[LifecycleEvent]) -> str:
    """Events as JSON Lines (one OpenLineage event per line), the client's serialization."""
    return "".join(Serde.to_json(e.event) + "\n" for e in events)


def export(
    store: Store,
    job_uuid: str,
    *,
    storage: StorageRegistry | None = None,
    namespace: str = DEFAULT_NAMESPACE,
) -> str:
    """A job's OpenLineage run events as JSON Lines."""
    try:
        return to_json_lines(lifecycle(store, job_uuid, storage=storage, namespace=namespace))
    except (ValueError, TypeError) as exc:
        # The client's validators (run ids, times) refuse what we built: a bug here.
        raise DataCatalogError(
            f"could not build the OpenLineage events of {job_uuid}: {exc}"
        ) from exc
