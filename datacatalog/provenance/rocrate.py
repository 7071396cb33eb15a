"""A finished job as a Process Run Crate (RO-Crate 1.1, Workflow Run Crate profiles 0.5).

The pipeline is a ``SoftwareApplication`` (the action's ``instrument``), the run a
``CreateAction`` with ``@id`` ``urn:uuid:<job uuid>`` (``object`` its catalogued inputs,
``result`` its indexed outputs, ``startTime``/``endTime``/``actionStatus`` from the
history, ``agent`` who sent ``run``), and every file a ``File`` with our ``sha256``,
``contentSize`` and ``encodingFormat`` (rocrate computes no checksums).

Metadata only (the default), a file's ``@id`` is its absolute URI; with the files
copied from the archive, it is the file's path inside the crate (``outputs/...``,
``inputs/...``). A path ending in ``.zip`` is written as a zip, anything else as a
directory.
"""

from __future__ import annotations

import io
import mimetypes
import socket
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rocrate.model.contextentity import ContextEntity
from rocrate.model.softwareapplication import SoftwareApplication
from rocrate.rocrate import ROCrate

from datacatalog.errors import (
    ConflictError,
    DataCatalogError,
    InvalidRequestError,
    StorageFailureError,
)
from datacatalog.jobs import job_document
from datacatalog.storage import StorageRegistry
from datacatalog.store import Document, Store

PROFILE = "https://w3id.org/ro/wfrun/process/0.5"
SHA256_TERM = "https://w3id.org/ro/terms/workflow-run#sha256"
# States in which a job's run is over (an RO-Crate describes a finished run).
FINISHED_STATES = frozenset(
    {"FINISHED", "FAILED", "VALIDATING", "VALIDATED", "REJECTED", "FINALIZED", "RETIRED"}
)


def _timestamp(value: datetime) -> str:
    # The profile validator wants whole seconds and +00:00 (no Z, no microseconds).
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def build(
    store: Store,
    job_uuid: str,
    *,
    storage: StorageRegistry | None = None,
    with_files: bool = False,
) -> ROCrate:
    """The crate of a finished job, in memory (write it with :func:`write`).

    Raises:
        NotFoundError: No such job.
        ConflictError: The job has not finished its run (its state forbids a crate yet).
        StorageFailureError: ``with_files`` and a file cannot be read.
    """
    job = job_document(store, job_uuid, history=True)
    if job["state"] not in FINISHED_STATES:
        raise ConflictError(
            f"job {job_uuid} is {job['state']}; an RO-Crate describes a finished run "
            f"({', '.join(sorted(FINISHED_STATES))})",
            job=job_uuid,
            state=job["state"],
        )
    if with_files and storage is None:
        raise InvalidRequestError("copying files into a crate needs the storage systems")
    crate = ROCrate(version="1.1")
    crate.metadata.extra_terms["sha256"] = SHA256_TERM
    profile = crate.add(
        ContextEntity(
            crate,
            PROFILE,
            properties={"@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5"},
        )
    )
    crate.root_dataset["conformsTo"] = profile
    crate.name = f"Run of job {job_uuid}"
    crate.description = f"Provenance of catalog job {job_uuid}, its inputs and outputs"
    crate.datePublished = _timestamp(datetime.now(timezone.utc))
    crate.license = "https://spdx.org/licenses/CC-BY-4.0"

    pipeline = store.get("pipeline", {"uuid": job["pipeline_uuid"]})
    instrument = crate.add(
        SoftwareApplication(
            crate,
            f"#pipeline-{job['pipeline_uuid']}",
            properties={
                "name": str(pipeline["name"] if pipeline else job["pipeline_uuid"]),
                "identifier": str(pipeline["id"] if pipeline else job["pipeline_uuid"]),
                **(
                    {"softwareRequirements": _components(pipeline)}
                    if pipeline and pipeline.get("components")
                    else {}
                ),
            },
        )
    )
    host = socket.gethostname()
    inputs = store.find(
        "file", {"uuid": {"$in": list(job.get("acted_on", []))}}, sort=[("name", 1)]
    )
    outputs = store.find("file", {"generated_by": job["uuid"]}, sort=[("name", 1)])
    used = [_file(crate, r, "inputs", storage, host, with_files) for r in inputs]
    made = [_file(crate, r, "outputs", storage, host, with_files) for r in outputs]
    for entity in made:
        crate.root_dataset.append_to("hasPart", entity)
    for entity in used:
        crate.root_dataset.append_to("hasPart", entity)

    history = job.get("history", [])
    runs = [e for e in history if e["name"] == "run"]
    ends = [e for e in history if e["name"] in ("finish", "fail")]
    properties: dict[str, Any] = {
        "@type": "CreateAction",
        "name": f"Run of {instrument['name']} (job {job_uuid})",
        "actionStatus": "http://schema.org/FailedActionStatus"
        if job["state"] == "FAILED"
        else "http://schema.org/CompletedActionStatus",
    }
    if runs:
        properties["startTime"] = _timestamp(runs[-1]["date"])
    if ends:
        properties["endTime"] = _timestamp(ends[-1]["date"])
    action = crate.add_action(
        instrument,
        identifier=f"urn:uuid:{job_uuid}",
        object=used or None,
        result=made or None,
        properties=properties,
    )
    starter = runs[-1].get("agent") if runs else None
    if starter:
        agent = crate.add(
            ContextEntity(
                crate, f"#agent-{starter}", properties={"@type": "Person", "name": starter}
            )
        )
        action["agent"] = agent
    if job["state"] == "FAILED" and ends:
        message = (ends[-1].get("data") or {}).get("message")
        if message:
            action["error"] = str(message)
    crate.root_dataset.append_to("mentions", action)
    return crate


def _components(pipeline: Mapping[str, Any]) -> str:
    return ", ".join(
        str(c.get("image") or c.get("id") or c) if isinstance(c, Mapping) else str(c)
        for c in pipeline.get("components", [])
    )


def _file(
    crate: ROCrate,
    record: Document,
    folder: str,
    storage: StorageRegistry | None,
    host: str,
    with_files: bool,
) -> Any:
    path = str(record["name"])
    properties: dict[str, Any] = {
        "name": path.rsplit("/", 1)[-1],
        "identifier": str(record["uuid"]),
        "encodingFormat": mimetypes.guess_type(path)[0] or "application/octet-stream",
    }
    if record.get("sha256"):
        properties["sha256"] = str(record["sha256"])
    if record.get("size") is not None:
        properties["contentSize"] = str(int(record["size"]))
    system_name = str(record.get("storage_system", ""))
    known = storage is not None and system_name in storage
    if not with_files:
        if known:
            assert storage is not None
            system = storage.get(system_name)
            backend = system.root.rstrip("/") + path
            uri = f"file://{host}{backend}" if system.is_local else system.url.rstrip("/") + path
        else:
            uri = f"datacatalog://{system_name or 'unknown'}{path}"
        return crate.add_file(source=uri, fetch_remote=False, properties=properties)
    if not known:
        raise StorageFailureError(
            f"file {path} is on storage system {system_name!r}, which is not configured",
            path=path,
            system=system_name,
        )
    assert storage is not None
    try:
        with storage.get(system_name).open(path) as handle:
            content = io.BytesIO(handle.read())
    except DataCatalogError:
        raise
    except OSError as exc:
        raise StorageFailureError(f"cannot read {path} for the crate: {exc}", path=path) from exc
    return crate.add_file(source=content, dest_path=f"{folder}{path}", properties=properties)


def write(crate: ROCrate, destination: Path) -> Path:
    """Write ``crate`` to ``destination`` (a ``.zip`` file, or else a directory)."""
    try:
        if destination.suffix.lower() == ".zip":
            destination.parent.mkdir(parents=True, exist_ok=True)
            crate.write_zip(str(destination))
        else:
            crate.write(str(destination))
    except OSError as exc:
        raise InvalidRequestError(
            f"cannot write the crate to {destination}: {exc.strerror or exc}",
            path=str(destination),
        ) from exc
    return destination


def export(
    store: Store,
    job_uuid: str,
    destination: Path,
    *,
    storage: StorageRegistry | None = None,
    with_files: bool = False,
) -> Path:
    """Build and write the crate of a finished job; return where it was written."""
    return write(build(store, job_uuid, storage=storage, with_files=with_files), destination)
