"""Indexing: turning the files a job left in its archive path into catalog records.

After a job has run, its outputs sit under its archive path on its storage system.
Indexing lists that directory tree, picks files with index requests
(:mod:`datacatalog.indexrequests`) and upserts one *file record* per picked file::

    job 107…   archive path /products/v2/A/B/C on storage system "local"
      out/a.png  matches ArchiveIndexRequest([r"\\.png$"], level="1")
                 -> file 105…  name=/products/v2/A/B/C/out/a.png  level=1  type=PNG
                    sha256=…  generated_by=[job]  child_of=[the job's measurements]
      out/b.csv  matches ProductIndexRequest([r"\\.csv$"], derived_from=["./out/a.png"])
                 -> file 105…  … derived_from=[the file UUID of out/a.png]

What :meth:`IndexingService.index` does, in order:

1. checks the token, the arguments, the requests, the storage system and the job's
   state, and resolves every ``derived_from`` / ``derived_using`` reference of the
   product requests to a UUID (:meth:`IndexingService.resolve_derived_references`);
   nothing is written when one of them is wrong;
2. sends the ``index`` event (the job goes to INDEXING);
3. lists the archive path recursively; symbolic links that leave the storage root are not
   followed but reported as skipped;
4. matches each file's path *relative to the archive path* against the requests (the first
   request that matches decides level and derivation), hashes it when fixity is on
   (streamed, never read whole) and upserts the records in batches, one database round
   trip per ``batch_size`` files;
5. with ``transition=True``, sends ``indexed`` (the job goes back to FINISHED).

After each batch the job is read again: if it was reset, deleted or purged meanwhile, or
another run took it out of INDEXING, the run stops with a
:class:`~datacatalog.errors.ConflictError` and what it wrote follows the action that won
(unlinked after a reset, removed after a purge) rather than half-indexing a job that is
no longer there.

A file's UUID is the typed UUID of its absolute catalog path, and links are added with
``$addToSet``, so indexing again rewrites the same records and never duplicates a link.
A failure after step 2 is written to the job's history (an ``update`` event carrying
``indexing_error``) and re-raised; the job stays in INDEXING, from where a second
``index`` call can finish the work.

:meth:`IndexingService.verify` reads the indexed files again and compares them with their
records (size and SHA-256), which is how a catalog notices silent changes and losses.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from datacatalog import states, tokens
from datacatalog.clock import utc_now
from datacatalog.errors import (
    ConflictError,
    DataCatalogError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    StorageFailureError,
)
from datacatalog.identifiers import file_uuid, is_uuid, kind_of, normalize_path, require_kind
from datacatalog.indexing.fixity import DEFAULT_HASH_WORKERS, Hasher, check_workers
from datacatalog.indexrequests import (
    ArchiveIndexRequest,
    IndexRequest,
    InvalidIndexingRequest,
    ProductIndexRequest,
    index_request_from,
)
from datacatalog.jobs import FILE_SCHEMES, Job, JobService
from datacatalog.storage import StorageRegistry, StorageSystem, StoredFile, validate_path
from datacatalog.store import Document, Store, Upsert

__all__ = [
    "DERIVED_KINDS",
    "FileRecord",
    "IndexProgress",
    "IndexReport",
    "IndexingService",
    "UnresolvedReference",
    "VerifyReport",
    "infer_type",
]

MAX_BATCH_SIZE = 10_000
"""Largest ``batch_size``: keeps one bulk write well under the server's message limit."""

MAX_ERROR_CHARS = 2_000
"""Longest error message kept in a job's history (longer ones are cut, with a marker)."""

VERIFY_PROGRESS_EVERY = 1_000
"""How many files :meth:`IndexingService.verify` checks between progress reports."""

DERIVED_KINDS: tuple[str, ...] = ("file", "reference", "product")
"""Kinds of typed UUID a ``derived_from`` / ``derived_using`` reference may name."""

_STAMP_CHUNK = 10_000  # UUIDs per fixity-date write; keeps each $in list small

# States an INDEXING job can only reach again through ``reset`` (and ``ready``, ``run``).
_ONLY_AFTER_RESET = frozenset({"RESET", "CREATED", "RUNNING"})

_COMPRESSIONS: dict[str, str] = {".gz": "GZIP", ".bz2": "BZIP2", ".xz": "XZ", ".zst": "ZSTD"}

FILE_TYPES: dict[str, str] = {
    ".bam": "BAM",
    ".bed": "BED",
    ".cram": "CRAM",
    ".csv": "CSV",
    ".fa": "FASTA",
    ".fasta": "FASTA",
    ".fastq": "FASTQ",
    ".fcs": "FCS",
    ".fq": "FASTQ",
    ".gb": "GENBANK",
    ".gff": "GFF",
    ".gff3": "GFF",
    ".gif": "GIF",
    ".gtf": "GTF",
    ".h5": "HDF5",
    ".hdf5": "HDF5",
    ".html": "HTML",
    ".jpeg": "JPEG",
    ".jpg": "JPEG",
    ".json": "JSON",
    ".log": "PLAIN",
    ".md": "MARKDOWN",
    ".mzml": "MZML",
    ".nc": "NETCDF",
    ".parquet": "PARQUET",
    ".pdf": "PDF",
    ".png": "PNG",
    ".sam": "SAM",
    ".sbol": "SBOL",
    ".tar": "TAR",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".tsv": "TSV",
    ".txt": "PLAIN",
    ".vcf": "VCF",
    ".xls": "XLS",
    ".xlsx": "XLSX",
    ".xml": "XML",
    ".yaml": "YAML",
    ".yml": "YAML",
    ".zip": "ZIP",
}
"""File type by name suffix (lower case); compressed files take their inner suffix's type."""

UNKNOWN_TYPE = "UNKNOWN"


def infer_type(name: str) -> str:
    """Return the file type of ``name`` from its suffix (``UNKNOWN`` if not in the table).

    ``reads.fastq.gz`` is ``FASTQ``; a compressed file with an unknown inner suffix is
    typed by its compression (``GZIP``, ``BZIP2``, ...).
    """
    base = posixpath.basename(name).lower()
    stem, suffix = posixpath.splitext(base)
    if suffix in _COMPRESSIONS:
        inner = posixpath.splitext(stem)[1]
        return FILE_TYPES.get(inner, _COMPRESSIONS[suffix])
    return FILE_TYPES.get(suffix, UNKNOWN_TYPE)


class UnresolvedReference(InvalidIndexingRequest):
    """A ``derived_from`` / ``derived_using`` reference names nothing the catalog knows."""


# -- value objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexProgress:
    """How far an indexing (or verify) run has got.

    Attributes:
        seen: Files looked at so far.
        matched: Of those, files an index request selected (verify: files that match
            their record).
        written: File records written so far (verify: fixity dates stamped).
        total: Files in the listing (verify: records to check), when known.
    """

    seen: int
    matched: int
    written: int
    total: int | None


@dataclass(frozen=True)
class FileRecord:
    """A file record as stored."""

    uuid: str
    name: str
    storage_system: str
    size: int | None
    sha256: str | None
    level: str
    type: str
    generated_by: list[str]
    derived_from: list[str]
    derived_using: list[str]
    child_of: list[str]
    modified_date: datetime | None
    fixity_date: datetime | None
    note: str | None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> FileRecord:
        """Build from a stored document."""
        return cls(
            uuid=doc["uuid"],
            name=doc["name"],
            storage_system=doc["storage_system"],
            size=doc.get("size"),
            sha256=doc.get("sha256"),
            level=doc["level"],
            type=doc["type"],
            generated_by=list(doc.get("generated_by") or []),
            derived_from=list(doc.get("derived_from") or []),
            derived_using=list(doc.get("derived_using") or []),
            child_of=list(doc.get("child_of") or []),
            modified_date=doc.get("modified_date"),
            fixity_date=doc.get("fixity_date"),
            note=doc.get("note"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "uuid": self.uuid,
            "name": self.name,
            "storage_system": self.storage_system,
            "size": self.size,
            "sha256": self.sha256,
            "level": self.level,
            "type": self.type,
            "generated_by": list(self.generated_by),
            "derived_from": list(self.derived_from),
            "derived_using": list(self.derived_using),
            "child_of": list(self.child_of),
            "modified_date": _iso(self.modified_date),
            "fixity_date": _iso(self.fixity_date),
            "note": self.note,
        }


@dataclass(frozen=True)
class IndexReport:
    """What one :meth:`IndexingService.index` run did.

    Attributes:
        job_uuid: The job.
        seen: Files listed under the archive path.
        matched: Files an index request selected.
        written: File records written (matched minus files that could not be read).
        files: UUIDs of the records written, in path order.
        skipped: ``(path, reason)`` of entries the listing left out (links out of the
            storage root, broken links, special files, unreadable directories).
        errors: ``(path or reference, message)`` of files that could not be read and of
            references dropped by a permissive run.
        batches: Bulk writes sent (database round trips for the records).
        state: The job's state at the end.
    """

    job_uuid: str
    seen: int
    matched: int
    written: int
    files: list[str]
    skipped: list[tuple[str, str]]
    errors: list[tuple[str, str]]
    batches: int
    state: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "job_uuid": self.job_uuid,
            "seen": self.seen,
            "matched": self.matched,
            "written": self.written,
            "files": list(self.files),
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "errors": [{"path": path, "message": message} for path, message in self.errors],
            "batches": self.batches,
            "state": self.state,
        }


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of re-reading a job's indexed files (file UUIDs in each list).

    Attributes:
        job_uuid: The job.
        unchanged: The SHA-256 matches the record.
        changed: The SHA-256 differs, or the size does when no hash was recorded.
        missing: Gone from storage (or no longer readable).
        unhashed: No hash recorded and the size matches: present, content unchecked.
    """

    job_uuid: str
    unchanged: list[str]
    changed: list[str]
    missing: list[str]
    unhashed: list[str]

    @property
    def ok(self) -> bool:
        """True when no file changed or went missing."""
        return not self.changed and not self.missing

    def counts(self) -> dict[str, int]:
        """How many files fell in each list."""
        return {
            "unchanged": len(self.unchanged),
            "changed": len(self.changed),
            "missing": len(self.missing),
            "unhashed": len(self.unhashed),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "job_uuid": self.job_uuid,
            "ok": self.ok,
            "unchanged": list(self.unchanged),
            "changed": list(self.changed),
            "missing": list(self.missing),
            "unhashed": list(self.unhashed),
        }


@dataclass(frozen=True)
class _Rule:
    """One index request, with the run's defaults applied and its references resolved."""

    request: IndexRequest
    level: str
    fixity: bool
    derived_from: tuple[str, ...] = ()
    derived_using: tuple[str, ...] = ()

    @property
    def product(self) -> bool:
        return isinstance(self.request, ProductIndexRequest)


@dataclass(frozen=True)
class _Reference:
    """How one derived reference resolves, worked out before any query.

    In order: a stored reference with this ``uri`` (or ``name``, when ``by_name``);
    else ``uuid``; else the file at ``path`` if it is indexed or on storage; else
    ``failure`` is raised.
    """

    reference: str
    uuid: str | None = None
    lookup: bool = False
    by_name: bool = False
    path: str | None = None
    failure: InvalidIndexingRequest | None = None


# -- the service -----------------------------------------------------------------------------


class IndexingService:
    """Index, verify and look up the files jobs wrote to their archive paths."""

    def __init__(self, store: Store, *, jobs: JobService, storage: StorageRegistry) -> None:
        self.store = store
        self.jobs = jobs
        self.storage = storage

    # -- indexing ---------------------------------------------------------------------------

    def index(
        self,
        job_uuid: str,
        *,
        token: str | None = None,
        transition: bool = False,
        level: str = "1",
        fixity: bool = False,
        filters: Sequence[str] | None = None,
        permissive: bool = False,
        requests: Sequence[IndexRequest] | None = None,
        progress: Callable[[IndexProgress], None] | None = None,
        batch_size: int = 1000,
        hash_workers: int = DEFAULT_HASH_WORKERS,
    ) -> IndexReport:
        """Index the files under the job's archive path.

        Args:
            job_uuid: The job (FINISHED, or INDEXING to finish an interrupted run).
            token: The job token; when given it is checked before anything happens.
            transition: Send ``indexed`` at the end (the job goes back to FINISHED).
            level: Processing level of files matched by a request without a level (the
                ``filters`` request, the match-everything default, product requests).
            fixity: Compute SHA-256 checksums for every matched file (requests may ask for
                them on their own with their ``fixity`` field).
            filters: Patterns of one archive request that replaces the job's requests.
            permissive: Drop derived references that do not resolve (reported in
                ``errors``) instead of failing.
            requests: Index requests to use instead of the job's (and of ``filters``).
            progress: Called with an :class:`IndexProgress` at the start and after each batch.
            batch_size: File records per bulk write (1 to 10,000).
            hash_workers: Threads hashing files (1 to 64; 1 hashes in the calling thread).
                Either way the records are the same.

        Returns:
            What was indexed, skipped and could not be read.

        Raises:
            InvalidIndexingRequest: A bad request, level or pattern; a job-relative
                reference that leaves the archive path; a reference that does not resolve
                (:class:`UnresolvedReference`, unless ``permissive``).
            UnauthorizedError: The token is wrong.
            NotFoundError: No such job, or its storage system is not configured.
            InvalidTransitionError: The job is not FINISHED or INDEXING.
            StorageFailureError: The archive path cannot be listed.
            ConflictError: The job was reset, deleted or purged, or left INDEXING, while
                this run was writing (see the module docstring).
        """
        _check_batch_size(batch_size)
        check_workers(hash_workers)
        require_kind(job_uuid, "pipelinejob", what="job")
        if token is not None:
            tokens.check_job_token(self.jobs.secret, job_uuid, token)
        job = self.jobs.get(job_uuid)
        rules = self._rules(job, requests=requests, filters=filters, level=level, fixity=fixity)
        for rule in rules:
            self._check_relative_references(job, rule)
        system = self.storage.get(job.archive_system)
        if job.state not in states.transition("index").sources:
            # Said before the references are resolved (their I/O would be wasted); the
            # event below checks the state again, atomically.
            raise states.invalid_transition("index", job.state)
        errors: list[tuple[str, str]] = []
        resolved = [self._resolve_rule(job, rule, permissive, errors) for rule in rules]
        started = self.jobs.send(
            job_uuid,
            "index",
            data={"level": level, "fixity": fixity, "requests": len(rules)},
            token=token,
        ).job
        try:
            return self._index(
                started,
                system,
                resolved,
                errors,
                token=token,
                transition=transition,
                progress=progress,
                batch_size=batch_size,
                hash_workers=hash_workers,
            )
        except Exception as exc:
            self._record_failure(job_uuid, exc, token)
            raise

    def _index(
        self,
        job: Job,
        system: StorageSystem,
        resolved: list[_Rule],
        errors: list[tuple[str, str]],
        *,
        token: str | None,
        transition: bool,
        progress: Callable[[IndexProgress], None] | None,
        batch_size: int,
        hash_workers: int,
    ) -> IndexReport:
        listing = system.list_files(job.archive_path)
        skipped = [(entry.path, entry.reason) for entry in listing.skipped]
        total = len(listing.files)
        seen = matched = batches = 0
        written: list[str] = []
        pending: list[tuple[StoredFile, _Rule]] = []
        reported = (0, 0)
        # The batch being written while the next one is hashed, with the counts it ends.
        in_flight: tuple[Future[tuple[list[str], int, bool]], int, int] | None = None
        expect_new = [True]

        def report(at_seen: int, at_matched: int) -> None:
            nonlocal reported
            reported = (at_seen, len(written))
            if progress is not None:
                progress(IndexProgress(at_seen, at_matched, len(written), total))

        def settle() -> None:
            """Wait for the batch in flight; its conflict, if any, is raised here."""
            nonlocal batches, in_flight
            if in_flight is None:
                return
            future, at_seen, at_matched = in_flight
            in_flight = None
            uuids, sent, all_new = future.result()
            written.extend(uuids)
            batches += sent
            # Records are inserted while batches keep finding none of theirs stored.
            expect_new[0] = all_new
            report(at_seen, at_matched)

        with (
            Hasher(hash_workers) as hasher,
            ThreadPoolExecutor(1, thread_name_prefix="datacatalog-index-writer") as writer,
        ):

            def flush() -> None:
                nonlocal in_flight
                operations, uuids = self._prepare_batch(job, system, pending, errors, hasher)
                pending.clear()
                settle()
                future = writer.submit(
                    self._write_batch, job.uuid, operations, uuids, expect_new=expect_new[0]
                )
                in_flight = (future, seen, matched)

            report(0, 0)
            for stored in listing.files:
                seen += 1
                rule = next((r for r in resolved if r.request.matches(stored.relative_path)), None)
                if rule is None:
                    continue
                matched += 1
                pending.append((stored, rule))
                if len(pending) >= batch_size:
                    flush()
            if pending:
                flush()
            settle()
        if reported != (seen, len(written)):
            report(seen, matched)
        state = job.state
        if transition:
            summary = {"files": len(written), "errors": len(errors), "skipped": len(skipped)}
            state = self.jobs.send(job.uuid, "indexed", data=summary, token=token).job.state
        return IndexReport(
            job_uuid=job.uuid,
            seen=seen,
            matched=matched,
            written=len(written),
            files=written,
            skipped=skipped,
            errors=errors,
            batches=batches,
            state=state,
        )

    @staticmethod
    def _prepare_batch(
        job: Job,
        system: StorageSystem,
        batch: Sequence[tuple[StoredFile, _Rule]],
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
                Upsert({"uuid": uuid}, _file_update(job, system, stored, rule, digest, uuid))
            )
            uuids.append(uuid)
        return operations, uuids

    def _write_batch(
        self, job_uuid: str, operations: Sequence[Upsert], uuids: list[str], *, expect_new: bool
    ) -> tuple[list[str], int, bool]:
        """Upsert one batch in one bulk write, then check the job is still INDEXING.

        With ``expect_new`` the records are sent as inserts, and only those already
        stored as upserts (:meth:`Store.bulk_upsert`): a first run costs the server much
        less, and a second one costs one more round trip, for its first batch only.

        Returns the UUIDs written, the round trips the write took and whether none of
        the records was stored before.
        """
        if not operations:
            return [], 0, expect_new
        result = self.store.bulk_upsert(
            "file", operations, batch_size=len(operations), expect_new=expect_new
        )
        self._check_still_indexing(job_uuid)
        return uuids, result.batches, result.matched == 0

    def _check_still_indexing(self, job_uuid: str) -> None:
        """After a batch is written: stop unless the job is still visible and INDEXING.

        An administrator (or another indexing run) may have moved the job on while this
        run was writing. Every write is followed by this check, and the admin actions
        change the job before they touch its records, so whatever this run wrote is put
        in line with the action that won: a purged job's records are removed, a reset
        job's are unlinked; a deleted job keeps them (as it keeps its earlier ones), and
        a job that another run finished or failed keeps them too. Each case is a
        :class:`ConflictError` naming what happened.
        """
        found = self.store.find(
            "job", {"uuid": job_uuid}, projection={"state": 1, "_visible": 1}, limit=1
        )
        if not found:
            self.store.delete_many("file", {"generated_by": job_uuid})
            raise ConflictError(
                f"job {job_uuid} was purged while it was being indexed; the file records "
                "this run wrote were removed",
                job=job_uuid,
            )
        state = found[0]["state"]
        if not found[0].get("_visible", True):
            raise ConflictError(
                f"job {job_uuid} was deleted while it was being indexed; indexing stopped",
                job=job_uuid,
            )
        if state in _ONLY_AFTER_RESET:
            self.store.update_many(
                "file", {"generated_by": job_uuid}, {"$pull": {"generated_by": job_uuid}}
            )
            raise ConflictError(
                f"job {job_uuid} was reset while it was being indexed (it is {state} now); "
                "the file records this run wrote were unlinked from it",
                job=job_uuid,
                state=state,
            )
        if state != "INDEXING":
            raise ConflictError(
                f"job {job_uuid} left INDEXING while it was being indexed (it is {state} "
                "now: another run finished it, or an event moved it on); indexing stopped",
                job=job_uuid,
                state=state,
            )

    def _record_failure(self, job_uuid: str, exc: BaseException, token: str | None) -> None:
        message = _truncate(str(exc) or type(exc).__name__)
        # The original error is what the caller needs; if the database is also failing,
        # the note in the history is lost and that error is re-raised as it was.
        with suppress(DataCatalogError):
            self.jobs.send(job_uuid, "update", data={"indexing_error": message}, token=token)

    def indexed(self, job_uuid: str, *, token: str | None = None) -> Job:
        """Send ``indexed``: the job's outputs are indexed and it is FINISHED again."""
        return self.jobs.send(job_uuid, "indexed", token=token).job

    # -- requests ---------------------------------------------------------------------------

    def _rules(
        self,
        job: Job,
        *,
        requests: Sequence[IndexRequest] | None,
        filters: Sequence[str] | None,
        level: str,
        fixity: bool,
    ) -> list[_Rule]:
        # Building the match-everything request checks the level once, for every rule.
        fallback = ArchiveIndexRequest(patterns=[], level=level, fixity=fixity)
        chosen: list[IndexRequest]
        if requests is not None:
            if not isinstance(requests, (list, tuple)):
                raise InvalidIndexingRequest("requests must be a list of index requests")
            chosen = [index_request_from(r) for r in requests]
        elif filters is not None:
            chosen = [ArchiveIndexRequest(patterns=filters, level=level, fixity=fixity)]
        else:
            chosen = job.index_requests() or [fallback]
        rules = []
        for request in chosen:
            for generator in request.generated_by:
                if kind_of(generator) is None:
                    raise InvalidIndexingRequest(
                        f"generated_by {generator!r} of an index request is not a typed UUID",
                        value=generator,
                    )
            rule_level = (
                request.level if isinstance(request, ArchiveIndexRequest) else fallback.level
            )
            rules.append(_Rule(request, rule_level, request.fixity or fixity))
        return rules

    def _check_relative_references(self, job: Job, rule: _Rule) -> None:
        """Refuse job-relative references that leave the archive path (no I/O)."""
        request = rule.request
        if not isinstance(request, ProductIndexRequest):
            return
        for reference in (*request.derived_from, *request.derived_using):
            if reference.startswith(("./", "../")) or reference in (".", ".."):
                self._job_path(job, reference)

    def _resolve_rule(
        self, job: Job, rule: _Rule, permissive: bool, errors: list[tuple[str, str]]
    ) -> _Rule:
        request = rule.request
        if not isinstance(request, ProductIndexRequest):
            return rule
        derived_from, dropped = self._resolve(job, request.derived_from, permissive)
        derived_using, dropped_using = self._resolve(job, request.derived_using, permissive)
        errors.extend(dropped + dropped_using)
        return _Rule(request, rule.level, rule.fixity, tuple(derived_from), tuple(derived_using))

    # -- references -------------------------------------------------------------------------

    def resolve_derived_references(
        self, job: Job, references: Sequence[str], *, permissive: bool = False
    ) -> list[str]:
        """Resolve derivation references to UUIDs (in order, without repeats).

        A reference may be a typed UUID of a file, reference or product (taken as it is);
        the absolute catalog path of an indexed file, or of a file on the job's storage
        system; a storage URI ``scheme://system/path`` (the file UUID of ``/path``); the
        ``uri`` or ``name`` of a stored reference; or a path relative to the job's archive
        path (``./out/x.csv``) naming a file that exists.

        Args:
            job: The job whose archive path relative references start from.
            references: The references.
            permissive: Drop references that do not resolve instead of failing.

        Raises:
            UnresolvedReference: A reference does not resolve (unless ``permissive``).
            InvalidIndexingRequest: A relative reference leaves the archive path (even
                when ``permissive``).
        """
        uuids, _dropped = self._resolve(job, references, permissive)
        return uuids

    def _resolve(
        self, job: Job, references: Sequence[str], permissive: bool
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """Resolve references in order; two queries in all, not two per reference."""
        if isinstance(references, (str, bytes)) or not isinstance(references, Sequence):
            raise InvalidIndexingRequest("derived references must be a list of strings")
        plans = [self._plan_reference(job, reference) for reference in references]
        stored = self._stored_references(plans)
        known = self._known_files(plans)
        found: dict[str, None] = {}
        dropped: list[tuple[str, str]] = []
        for plan in plans:
            try:
                found.setdefault(self._settle(job, plan, stored, known), None)
            except UnresolvedReference as exc:
                if not permissive:
                    raise
                dropped.append((plan.reference, str(exc)))
        return list(found), dropped

    def _plan_reference(self, job: Job, reference: object) -> _Reference:
        """What it takes to resolve ``reference`` (no I/O); malformed ones are refused."""
        if not isinstance(reference, str) or not reference:
            raise InvalidIndexingRequest(
                f"a derived reference must be a non-empty string, not {reference!r}"
            )
        if is_uuid(reference):
            kind = kind_of(reference)
            if kind in DERIVED_KINDS:
                return _Reference(reference, uuid=reference)
            return _Reference(
                reference,
                failure=UnresolvedReference(
                    f"derived reference {reference!r} is a {kind or 'untyped'} UUID; "
                    f"expected a {', '.join(DERIVED_KINDS)} UUID",
                    reference=reference,
                ),
            )
        if "://" in reference or reference.startswith("doi:"):
            path = _uri_path(reference) if reference.startswith(FILE_SCHEMES) else None
            return _Reference(
                reference,
                lookup=True,
                uuid=file_uuid(path) if path is not None else None,
                failure=_unresolved(reference, "no stored reference has this URI"),
            )
        if reference.startswith("/"):
            return _Reference(
                reference,
                path=normalize_path(reference),
                failure=_unresolved(
                    reference,
                    f"no indexed file has this name and it is not on {job.archive_system!r}",
                ),
            )
        by_name = not reference.startswith(("./", "../")) and reference not in (".", "..")
        try:
            path = self._job_path(job, reference)
        except InvalidIndexingRequest as exc:
            if not by_name:
                raise
            # A stored reference may carry this name; refused only if none does.
            return _Reference(reference, lookup=True, by_name=True, failure=exc)
        return _Reference(
            reference,
            lookup=by_name,
            by_name=by_name,
            path=path,
            failure=_unresolved(
                reference,
                f"not a stored reference, and {path!r} (relative to the archive path) does "
                "not exist",
            ),
        )

    def _settle(
        self,
        job: Job,
        plan: _Reference,
        stored: Mapping[str, list[Document]],
        known: set[str],
    ) -> str:
        """The UUID ``plan`` resolves to, given the stored references and known files."""
        if plan.lookup:
            value = plan.reference
            by_uri = [d for d in stored.get(value, []) if d.get("uri") == value]
            by_name = [d for d in stored.get(value, []) if d.get("name") == value]
            if by_uri:
                return str(by_uri[0]["uuid"])
            if plan.by_name and len(by_name) > 1:
                raise _unresolved(value, "more than one stored reference has this name")
            if plan.by_name and by_name:
                return str(by_name[0]["uuid"])
        if plan.uuid is not None:
            return plan.uuid
        if plan.path is not None:
            uuid = file_uuid(plan.path)
            if uuid in known or self._exists(job.archive_system, plan.path):
                return uuid
        assert plan.failure is not None
        raise plan.failure

    def _stored_references(self, plans: Sequence[_Reference]) -> dict[str, list[Document]]:
        """Stored references whose ``uri`` (or, where allowed, ``name``) is looked up."""
        uris = sorted({p.reference for p in plans if p.lookup})
        names = sorted({p.reference for p in plans if p.lookup and p.by_name})
        if not uris:
            return {}
        query: dict[str, Any] = {"uri": {"$in": uris}}
        if names:
            query = {"$or": [query, {"name": {"$in": names}}]}
        found: dict[str, list[Document]] = {}
        docs = self.store.find("reference", query, projection={"uuid": 1, "uri": 1, "name": 1})
        for doc in docs:
            for value in {doc.get("uri"), doc.get("name")}:
                if isinstance(value, str):
                    found.setdefault(value, []).append(doc)
        return found

    def _known_files(self, plans: Sequence[_Reference]) -> set[str]:
        """UUIDs of the planned paths that have a file record."""
        uuids = sorted({file_uuid(p.path) for p in plans if p.path is not None})
        if not uuids:
            return set()
        docs = self.store.find("file", {"uuid": {"$in": uuids}}, projection={"uuid": 1})
        return {str(d["uuid"]) for d in docs}

    def _exists(self, system_name: str, path: str) -> bool:
        return self._size(self.storage.get(system_name), path) is not None

    def _job_path(self, job: Job, reference: str) -> str:
        """The absolute catalog path of ``reference``, relative to the job's archive path."""
        if not isinstance(reference, str) or not reference or "\x00" in reference:
            raise InvalidIndexingRequest(f"invalid job-relative path {reference!r}")
        if reference.startswith("/") or "://" in reference:
            raise InvalidIndexingRequest(
                f"{reference!r} is not a path relative to the archive path", reference=reference
            )
        root = job.archive_path
        path = posixpath.normpath(posixpath.join(root, reference))
        prefix = root if root.endswith("/") else root + "/"
        if not path.startswith(prefix):
            raise InvalidIndexingRequest(
                f"reference {reference!r} leaves the archive path {root} of job {job.uuid}",
                reference=reference,
                archive_path=root,
            )
        return path

    def file_job_relative_path(self, job: Job, reference: str, *, check_exists: bool = True) -> str:
        """Return the file UUID of ``reference``, a path relative to the job's archive path.

        Args:
            job: The job.
            reference: A relative path such as ``./out/x.csv`` or ``out/x.csv``.
            check_exists: Require the file to exist on the job's storage system.

        Raises:
            InvalidIndexingRequest: The path is absolute or leaves the archive path.
            NotFoundError: ``check_exists`` and the file is not there.
        """
        path = self._job_path(job, reference)
        if check_exists and not self._exists(job.archive_system, path):
            raise NotFoundError(
                f"{reference!r} ({path}) does not exist on storage system {job.archive_system!r}",
                path=path,
                system=job.archive_system,
            )
        return file_uuid(path)

    # -- single files -----------------------------------------------------------------------

    def index_if_exists(
        self,
        path: str,
        *,
        storage_system: str | None = None,
        check_exists: bool = True,
        job: Job | None = None,
        level: str = "1",
    ) -> FileRecord | None:
        """Index one file by its catalog path, if it can be confirmed to exist.

        Args:
            path: Absolute, normalized catalog path.
            storage_system: Where it is (default: the job's system, else the default one).
            check_exists: Return None when the file is not there; when false, the record
                is written without looking at storage (and without a size).
            job: Link the record ``generated_by`` this job and ``child_of`` its metadata.
            level: Processing level.

        Returns:
            The record, or None when ``check_exists`` and the file does not exist.

        Raises:
            InvalidRequestError: A bad path or level.
            NotFoundError: The storage system is not configured.
        """
        validate_path(path)
        checked_level = ArchiveIndexRequest(patterns=[], level=level).level
        name = storage_system if storage_system is not None else job.archive_system if job else None
        system = self.storage.get(name)
        size = self._size(system, path) if check_exists else None
        if check_exists and size is None:
            return None
        uuid = file_uuid(path)
        fields: Document = {
            "name": path,
            "storage_system": system.name,
            "level": checked_level,
            "type": infer_type(path),
        }
        if size is not None:
            fields["size"] = size
        on_insert: Document = {
            "uuid": uuid,
            "_visible": True,
            "sha256": None,
            "fixity_date": None,
            "note": None,
            "derived_from": [],
            "derived_using": [],
        }
        update: Document = {"$set": fields, "$setOnInsert": on_insert}
        if job is not None:
            update["$addToSet"] = {
                "generated_by": {"$each": [job.uuid]},
                "child_of": {"$each": list(job.child_of)},
            }
        else:
            on_insert.update({"generated_by": [], "child_of": []})
        doc = self.store.update("file", {"uuid": uuid}, update, upsert=True)
        assert doc is not None  # an upsert always leaves a document
        return FileRecord.from_document(doc)

    # -- reading ----------------------------------------------------------------------------

    def files(self, job_uuid: str) -> list[FileRecord]:
        """The file records ``generated_by`` the job, by name.

        Raises:
            NotFoundError: No such job, or it is soft-deleted (hidden here as everywhere).
        """
        self.jobs.get(job_uuid)
        return [FileRecord.from_document(d) for d in self._file_documents(job_uuid)]

    def _file_documents(self, job_uuid: str) -> list[Document]:
        return self.store.find("file", {"generated_by": job_uuid}, sort=[("name", 1)])

    def file(self, uuid_or_path: str) -> FileRecord:
        """One file record by UUID, absolute catalog path or storage URI.

        Raises:
            InvalidRequestError: Not a file UUID, absolute path or URI.
            NotFoundError: No record, naming what was asked for.
        """
        return FileRecord.from_document(file_document(self.store, uuid_or_path))

    # -- verifying --------------------------------------------------------------------------

    def verify(
        self,
        job_uuid: str,
        *,
        progress: Callable[[IndexProgress], None] | None = None,
        hash_workers: int = DEFAULT_HASH_WORKERS,
    ) -> VerifyReport:
        """Re-read every file indexed for the job and compare it with its record.

        Files with a recorded SHA-256 are hashed again (streamed, on ``hash_workers``
        threads); files without one are compared by size. Verified files get a new
        ``fixity_date`` (one bulk write). The counts are recorded in the job's history
        as an ``update`` event when its state allows one.

        Raises:
            InvalidRequestError: ``hash_workers`` is not an integer from 1 to 64.
            NotFoundError: No such job, or a record names an unconfigured storage system.
            StorageFailureError: The archive path cannot be listed.
        """
        check_workers(hash_workers)
        job = self.jobs.get(job_uuid)
        records = [FileRecord.from_document(d) for d in self._file_documents(job_uuid)]
        home = self.storage.get(job.archive_system)
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
            system = self.storage.get(record.storage_system)
            if system.name == home.name and record.name.startswith(prefix):
                stored = listed.get(record.name)
                size = stored.size if stored is not None else None
            else:
                size = self._size(system, record.name)
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
        stamped = self._stamp_fixity(outcome["unchanged"])
        report(stamped)
        result = VerifyReport(job_uuid=job_uuid, **outcome)
        if job.state in states.transition("update").sources:
            # The state may change between the read and the event; the report stands anyway.
            with suppress(InvalidTransitionError):
                self.jobs.send(job_uuid, "update", data={"verify": result.counts()})
        return result

    def _stamp_fixity(self, uuids: Sequence[str]) -> int:
        if not uuids:
            return 0
        now = utc_now()
        for start in range(0, len(uuids), _STAMP_CHUNK):
            chunk = list(uuids[start : start + _STAMP_CHUNK])
            self.store.update_many("file", {"uuid": {"$in": chunk}}, {"$set": {"fixity_date": now}})
        return len(uuids)

    # -- storage helpers --------------------------------------------------------------------

    @staticmethod
    def _size(system: StorageSystem, path: str) -> int | None:
        """The size of the regular file at ``path``, or None if there is none (or it is
        out of reach: outside the root, unreadable)."""
        try:
            if not system.exists(path):
                return None
            info = system.fs.info(system.resolve(path))
        except (NotFoundError, StorageFailureError, InvalidRequestError, OSError):
            return None
        if info.get("type", "file") != "file" or info.get("size") is None:
            return None
        return int(info["size"])


# -- lookups ---------------------------------------------------------------------------------


def file_document(store: Store, uuid_or_path: str) -> Document:
    """The stored file record named by a file UUID, absolute catalog path or storage URI.

    Raises:
        InvalidRequestError: Not a file UUID, absolute path or URI.
        NotFoundError: No record, naming what was asked for.
    """
    if not isinstance(uuid_or_path, str) or not uuid_or_path:
        raise InvalidRequestError(f"expected a file UUID or path, not {uuid_or_path!r}")
    if is_uuid(uuid_or_path):
        uuid = require_kind(uuid_or_path, "file", what="file")
    elif "://" in uuid_or_path:
        path = _uri_path(uuid_or_path)
        if path is None:
            raise InvalidRequestError(f"{uuid_or_path!r} names no file path")
        uuid = file_uuid(path)
    else:
        uuid = file_uuid(uuid_or_path)
    doc = store.get("file", {"uuid": uuid})
    if doc is None:
        raise NotFoundError(f"file {uuid_or_path!r} is not indexed", file=uuid_or_path)
    return doc


# -- pure helpers ----------------------------------------------------------------------------


def _file_update(
    job: Job,
    system: StorageSystem,
    stored: StoredFile,
    rule: _Rule,
    digest: str | None,
    uuid: str,
) -> Document:
    """The upsert that writes one file record (``uuid``: its UUID; links only ever added)."""
    fields: Document = {
        "name": stored.path,
        "storage_system": system.name,
        "size": stored.size,
        "level": rule.level,
        "type": infer_type(stored.path),
        "modified_date": stored.modified,
    }
    on_insert: Document = {"uuid": uuid, "_visible": True}
    if digest is not None:
        fields["sha256"] = digest
        fields["fixity_date"] = utc_now()
    else:
        # Indexing without fixity must not erase a checksum an earlier run recorded.
        on_insert["sha256"] = None
        on_insert["fixity_date"] = None
    if rule.request.note is not None:
        fields["note"] = rule.request.note
    else:
        on_insert["note"] = None
    links: Document = {
        "generated_by": {"$each": [job.uuid, *rule.request.generated_by]},
        "child_of": {"$each": list(job.child_of)},
    }
    if rule.product:
        links["derived_from"] = {"$each": list(rule.derived_from)}
        links["derived_using"] = {"$each": list(rule.derived_using)}
    else:
        on_insert["derived_from"] = []
        on_insert["derived_using"] = []
    return {"$set": fields, "$setOnInsert": on_insert, "$addToSet": links}


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


def _uri_path(uri: str) -> str | None:
    """``/path`` of ``scheme://system/path`` (None when there is no path)."""
    rest = uri.split("://", 1)[1]
    if "/" not in rest:
        return None
    path = "/" + rest.split("/", 1)[1].lstrip("/")
    if path == "/":
        return None
    try:
        return normalize_path(path)
    except InvalidRequestError:
        return None


def _unresolved(reference: str, why: str) -> UnresolvedReference:
    return UnresolvedReference(
        f"derived reference {reference!r} does not resolve: {why}", reference=reference
    )


def _check_batch_size(batch_size: object) -> None:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise InvalidRequestError(
            f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}, not {batch_size!r}"
        )


def _truncate(message: str) -> str:
    if len(message) <= MAX_ERROR_CHARS:
        return message
    marker = " … [truncated]"
    return message[: MAX_ERROR_CHARS - len(marker)] + marker


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
