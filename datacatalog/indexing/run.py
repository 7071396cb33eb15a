"""One indexing run over a job's archive path: list, match, hash, write in batches.

:class:`IndexRun` lists the archive path recursively (symbolic links that leave the
storage root are not followed but reported as skipped), matches each file's path
*relative to the archive path* against the run's rules (the first rule that matches
decides level and derivation), hashes it when its rule asks for fixity (streamed, never
read whole, on the :class:`~datacatalog.indexing.fixity.Hasher`'s threads) and hands the
records to the :class:`~datacatalog.indexing.writer.BatchWriter`, one bulk write per
``batch_size`` files. What it did is an :class:`IndexReport`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from datacatalog.errors import DataCatalogError, InvalidRequestError
from datacatalog.identifiers import file_uuid
from datacatalog.indexing.fixity import Hasher
from datacatalog.indexing.records import IndexProgress, IndexReport
from datacatalog.indexing.rules import Rule, file_update
from datacatalog.indexing.writer import BatchWriter
from datacatalog.jobs import Job
from datacatalog.storage import StorageSystem, StoredFile
from datacatalog.store import Store, Upsert

MAX_BATCH_SIZE = 10_000
"""Largest ``batch_size``: keeps one bulk write well under the server's message limit."""


def check_batch_size(batch_size: object) -> None:
    """Refuse a ``batch_size`` that is not an integer from 1 to :data:`MAX_BATCH_SIZE`."""
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise InvalidRequestError(
            f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}, not {batch_size!r}"
        )


class IndexRun:
    """One run: the job's files under ``rules``, their records written in batches.

    Args:
        store: The store.
        job: The job (its state is the report's, unless the caller moves it on).
        system: The job's storage system.
        rules: The run's rules, references resolved.
        errors: Where files that cannot be read are reported (it may hold the references
            a permissive run dropped already).
        progress: Called with an :class:`IndexProgress` at the start and after each batch.
        batch_size: File records per bulk write.
        hash_workers: Threads hashing files.
        check_state: Read the job after each batch (see :class:`BatchWriter`).
    """

    def __init__(
        self,
        store: Store,
        job: Job,
        system: StorageSystem,
        rules: list[Rule],
        errors: list[tuple[str, str]],
        *,
        progress: Callable[[IndexProgress], None] | None,
        batch_size: int,
        hash_workers: int,
        check_state: bool = True,
    ) -> None:
        self.store = store
        self.job = job
        self.system = system
        self.rules = rules
        self.errors = errors
        self.progress = progress
        self.batch_size = batch_size
        self.hash_workers = hash_workers
        self.check_state = check_state
        self._total = 0
        self._reported = (0, 0)
        self._writer: BatchWriter | None = None

    def execute(self) -> IndexReport:
        """List, match, hash and write; what was done."""
        job = self.job
        listing = self.system.list_files(job.archive_path)
        skipped = [(entry.path, entry.reason) for entry in listing.skipped]
        self._total = len(listing.files)
        writer = BatchWriter(
            self.store, job.uuid, check_state=self.check_state, settled=self._report
        )
        self._writer = writer
        with Hasher(self.hash_workers) as hasher, writer:
            self._report(0, 0)
            seen, matched = self._match_and_write(listing.files, hasher, writer)
        if self._reported != (seen, len(writer.written)):
            self._report(seen, matched)
        return IndexReport(
            job_uuid=job.uuid,
            seen=seen,
            matched=matched,
            written=len(writer.written),
            files=writer.written,
            skipped=skipped,
            errors=self.errors,
            batches=writer.batches,
            state=job.state,
        )

    def _match_and_write(
        self, files: Sequence[StoredFile], hasher: Hasher, writer: BatchWriter
    ) -> tuple[int, int]:
        """Match every listed file; hand each full batch to ``writer``; (seen, matched)."""
        rules = self.rules
        batch_size = self.batch_size
        total = self._total
        seen = matched = 0
        pending: list[tuple[StoredFile, Rule]] = []
        for stored in files:
            seen += 1
            rule = next((r for r in rules if r.request.matches(stored.relative_path)), None)
            if rule is None:
                continue
            matched += 1
            pending.append((stored, rule))
            if len(pending) >= batch_size:
                self._flush(pending, hasher, writer, last=seen == total, at=(seen, matched))
        if pending:
            self._flush(pending, hasher, writer, last=True, at=(seen, matched))
        writer.settle()
        return seen, matched

    def _flush(
        self,
        pending: list[tuple[StoredFile, Rule]],
        hasher: Hasher,
        writer: BatchWriter,
        *,
        last: bool,
        at: tuple[int, int],
    ) -> None:
        """Hash and build the pending batch (while the one before is written), hand it on."""
        operations, uuids = prepare_batch(self.job, self.system, pending, self.errors, hasher)
        pending.clear()
        writer.submit(operations, uuids, last=last, at=at)

    def _report(self, at_seen: int, at_matched: int) -> None:
        written = len(self._writer.written) if self._writer is not None else 0
        self._reported = (at_seen, written)
        if self.progress is not None:
            self.progress(IndexProgress(at_seen, at_matched, written, self._total))


def prepare_batch(
    job: Job,
    system: StorageSystem,
    batch: Sequence[tuple[StoredFile, Rule]],
    errors: list[tuple[str, str]],
    hasher: Hasher,
) -> tuple[list[Upsert], list[str]]:
    """Hash one batch (when asked, on the hasher's threads) and build its upserts.

    A file that is gone or cannot be read is reported in ``errors`` and left out.
    """
    digests = hasher.digests(system, [(stored.path, rule.fixity) for stored, rule in batch])
    operations: list[Upsert] = []
    uuids: list[str] = []
    for (stored, rule), digest in zip(batch, digests, strict=True):
        if isinstance(digest, DataCatalogError):
            errors.append((stored.path, str(digest)))
            continue
        uuid = file_uuid(stored.path)
        operations.append(
            Upsert({"uuid": uuid}, file_update(job, system, stored, rule, digest, uuid))
        )
        uuids.append(uuid)
    return operations, uuids
