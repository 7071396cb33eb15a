"""Verifying: reading a job's indexed files again and comparing them with their records.

Files with a recorded SHA-256 are hashed again, the others compared by size; this is how
a catalog notices silent changes and losses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress

from datacatalog import states
from datacatalog.clock import utc_now
from datacatalog.errors import InvalidTransitionError, NotFoundError, StorageFailureError
from datacatalog.indexing.fixity import Hasher, check_workers
from datacatalog.indexing.lookups import job_file_documents, stored_size
from datacatalog.indexing.records import FileRecord, IndexProgress, VerifyReport
from datacatalog.jobs import JobService
from datacatalog.storage import StorageRegistry, StorageSystem
from datacatalog.store import Store

VERIFY_PROGRESS_EVERY = 1_000
"""How many files :meth:`IndexingService.verify` checks between progress reports."""

_STAMP_CHUNK = 10_000  # UUIDs per fixity-date write; keeps each $in list small


def verify_files(
    store: Store,
    jobs: JobService,
    storage: StorageRegistry,
    job_uuid: str,
    *,
    progress: Callable[[IndexProgress], None] | None,
    hash_workers: int,
) -> VerifyReport:
    """Verify the job's indexed files (what :meth:`IndexingService.verify` does).

    Raises:
        InvalidRequestError: ``hash_workers`` is not an integer from 1 to 64.
        NotFoundError: No such job, or a record names an unconfigured storage system.
        StorageFailureError: The archive path cannot be listed.
    """
    check_workers(hash_workers)
    job = jobs.get(job_uuid)
    records = [FileRecord.from_document(d) for d in job_file_documents(store, job_uuid)]
    home = storage.get(job.archive_system)
    listed = {f.path: f for f in home.list_files(job.archive_path).files}
    prefix = job.archive_path.rstrip("/") + "/"
    outcome: dict[str, list[str]] = {
        "unchanged": [],
        "changed": [],
        "missing": [],
        "unhashed": [],
    }
    total = len(records)
    seen = 0

    def report(written: int = 0) -> None:
        if progress is not None:
            matched = len(outcome["unchanged"]) + len(outcome["unhashed"])
            progress(IndexProgress(seen, matched, written, total))

    def compare(record: FileRecord) -> str:
        system = storage.get(record.storage_system)
        if system.name == home.name and record.name.startswith(prefix):
            stored = listed.get(record.name)
            size = stored.size if stored is not None else None
        else:
            size = stored_size(system, record.name)
        return _compare(system, record, size)

    report()
    with Hasher(hash_workers) as hasher:
        for start in range(0, total, VERIFY_PROGRESS_EVERY):
            chunk = records[start : start + VERIFY_PROGRESS_EVERY]
            for record, verdict in zip(chunk, hasher.map(compare, chunk), strict=True):
                outcome[verdict].append(record.uuid)
            seen += len(chunk)
            if seen % VERIFY_PROGRESS_EVERY == 0:
                report()
    stamped = stamp_fixity(store, outcome["unchanged"])
    report(stamped)
    result = VerifyReport(job_uuid=job_uuid, **outcome)
    if job.state in states.transition("update").sources:
        # The state may change between the read and the event; the report stands anyway.
        with suppress(InvalidTransitionError):
            jobs.send(job_uuid, "update", data={"verify": result.counts()})
    return result


def stamp_fixity(store: Store, uuids: Sequence[str]) -> int:
    """Set the fixity date of the files ``uuids`` to now; return how many there were."""
    if not uuids:
        return 0
    now = utc_now()
    for start in range(0, len(uuids), _STAMP_CHUNK):
        chunk = list(uuids[start : start + _STAMP_CHUNK])
        store.update_many("file", {"uuid": {"$in": chunk}}, {"$set": {"fixity_date": now}})
    return len(uuids)


def _compare(system: StorageSystem, record: FileRecord, size: int | None) -> str:
    """Which :class:`VerifyReport` list a file belongs in."""
    if size is None:
        return "missing"
    if record.size is not None and record.size != size:
        return "changed"
    if record.sha256 is None:
        return "unhashed"
    try:
        digest = system.sha256(record.name)
    except (NotFoundError, StorageFailureError):
        return "missing"
    return "unchanged" if digest == record.sha256 else "changed"
