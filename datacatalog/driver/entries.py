"""What a stage's payload names: the job's input files and its archive directory.

Built once, when the driver starts and before anything is written: one read of the input
files' records; a file without a record is named as the job's data named it. Each entry
carries its local path when its storage system is on this machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datacatalog.driver.values import Entry
from datacatalog.errors import DataCatalogError
from datacatalog.jobs import Job
from datacatalog.jobs.references import file_reference_uuid, references_in

if TYPE_CHECKING:
    from datacatalog.catalog import Catalog


def payload_entries(catalog: Catalog, job: Job) -> tuple[list[Entry], list[Entry]]:
    """The payload's inputs (the job's input files) and outputs (its archive path)."""
    outputs = [
        Entry(
            job.archive_path,
            local_path(catalog, job.archive_system, job.archive_path),
            None,
            job.archive_system,
        )
    ]
    if not job.acted_on:
        return [], outputs
    named = {file_reference_uuid(r): r for r in references_in(job.data, store="files")}
    from datacatalog.indexing.lookups import file_locations  # only for a job with inputs

    records = file_locations(catalog.store, list(job.acted_on))
    inputs = []
    for file_uuid in job.acted_on:
        record = records.get(file_uuid)
        if record is not None:
            system = record.get("storage_system")
            inputs.append(
                Entry(
                    record["name"], local_path(catalog, system, record["name"]), file_uuid, system
                )
            )
        else:
            name = named.get(file_uuid, file_uuid)
            local = name[len("file://") :] if name.startswith("file:///") else None
            inputs.append(Entry(name, local, file_uuid, None))
    return inputs, outputs


def local_path(catalog: Catalog, system_name: str | None, path: str) -> str | None:
    """``path`` on this machine, when its storage system is local; else None."""
    try:
        system = catalog.storage.get(system_name)
    except DataCatalogError:
        return None
    return system.local_path(path)


__all__ = ["local_path", "payload_entries"]
