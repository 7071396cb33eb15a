"""Verifying: reading a job's indexed files again and comparing them with their records.

Files with a recorded SHA-256 are hashed again, the others compared by size; this is how
a catalog notices silent changes and losses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress

from datacatalog import states
from datacatalog.clock import utc_now
from datacatalog.errors import (
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    StorageFailureError,
)
from datacatalog.indexing.fixity import Hasher, check_workers
from datacatalog.indexing.lookups import job_file_documents, stored_size
from datacatalog.indexing.records import FileRecord, IndexProgress, VerifyReport
from datacatalog.jobs import Job, JobService
from datacatalog.storage import StorageRegistry
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
    records, outcome = compare_files(
        store, storage, job, progress=progress, hash_workers=hash_workers
    )
    total = len(records)
    stamped = stamp_fixity(store, outcome["unchanged"])
    if progress is not None:
        matched = len(outcome["unchanged"]) + len(outcome["unhashed"])
        progress(IndexProgress(total, matched, stamped, total))
    result = VerifyReport(job_uuid=job_uuid, **outcome)
    if job.state in states.transition("update").sources:
        # The state may change between the read and the event; the report stands anyway.
        with suppress(InvalidTransitionError):
            jobs.send(job_uuid, "update", data={"verify": result.counts()})
    return result


VERIFY_MODES = ("sha256", "size")
"""How :func:`compare_files` compares: hash again (``sha256``), or sizes only (``size``)."""


def compare_files(
    store: Store,
    storage: StorageRegistry,
    job: Job,
    *,
    mode: str = "sha256",
    progress: Callable[[IndexProgress], None] | None = None,
    hash_workers: int,
) -> tuple[list[FileRecord], dict[str, list[str]]]:
    """Compare the job's indexed files with their records; write nothing.

    With ``mode="sha256"`` a file with a recorded SHA-256 is hashed again, one without
    is compared by size (``unhashed``). With ``mode="size"`` every file is compared by
    size only: a matching one is ``unhashed`` (present, content unchecked).

    Returns:
        The records, and their UUIDs by verdict: ``unchanged``, ``changed``, ``missing``,
        ``unhashed``.

    Raises:
        InvalidRequestError: An unknown mode, or ``hash_workers`` out of range.
        NotFoundError: A record names an unconfigured storage system.
        StorageFailureError: The archive path cannot be listed.
    """
    if mode not in VERIFY_MODES:
        raise InvalidRequestError(
            f"unknown verify mode {mode!r}; known modes: {', '.join(VERIFY_MODES)}"
        )
    check_workers(hash_workers)
    records = [FileRecord.from_document(d) for d in job_file_documents(store, job.uuid)]
    outcome: dict[str, list[str]] = {
        "unchanged": [],
        "changed": [],
        "missing": [],
        "unhashed": [],
    }
    home = storage.get(job.archive_system)
    listed = {f.path: f for f in home.list_files(job.archive_path).files}
    prefix = job.archive_path.rstrip("/") + "/"
    total = len(records)
    seen = 0

    def report() -> None:
        if progress is not None:
            matched = len(outcome["unchanged"]) + len(outcome["unhashed"])
            progress(IndexProgress(seen, matched, 0, total))

    hasher = Hasher(hash_workers)

    def compare(record: FileRecord) -> str:
        system = storage.get(record.storage_system)
        if system.name == home.name and record.name.startswith(prefix):
            stored = listed.get(record.name)
            size = stored.size if stored is not None else None
        else:
            size = stored_size(system, record.name)
        sha256 = hasher.reader(system).sha256
        return _compare(sha256, record, size, hash_again=mode == "sha256")

    report()
    with hasher:
        for start in range(0, total, VERIFY_PROGRESS_EVERY):
            chunk = records[start : start + VERIFY_PROGRESS_EVERY]
            for record, verdict in zip(chunk, hasher.map(compare, chunk), strict=True):
                outcome[verdict].append(record.uuid)
            seen += len(chunk)
            if seen % VERIFY_PROGRESS_EVERY == 0:
                report()
    return records, outcome


def stamp_fixity(store: Store, uuids: Sequence[str]) -> int:
    """Set the fixity date of the files ``uuids`` to now; return how many there were."""
    if not uuids:
        return 0
    now = utc_now()
    for start in range(0, len(uuids), _STAMP_CHUNK):
        chunk = list(uuids[start : start + _STAMP_CHUNK])
        store.update_many("file", {"uuid": {"$in": chunk}}, {"$set": {"fixity_date": now}})
    return len(uuids)


def _compare(
    sha256: Callable[[str], str], record: FileRecord, size: int | None, *, hash_again: bool = True
) -> str:
    """Which :class:`VerifyReport` list a file belongs in (``sha256`` hashes a file again)."""
    if size is None:
        return "missing"
    if record.size is not None and record.size != size:
        return "changed"
    if record.sha256 is None or not hash_again:
        return "unhashed"
    try:
        digest = sha256(record.name)
    except (NotFoundError, StorageFailureError):
        return "missing"
    return "unchanged" if digest == record.sha256 else "changed"
