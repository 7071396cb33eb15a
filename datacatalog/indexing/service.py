"""The indexing service: indexing a job's archive path in batches, and reading it back.

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
   trip per ``batch_size`` files (:class:`~datacatalog.indexing.run.IndexRun`, writing
   through a :class:`~datacatalog.indexing.writer.BatchWriter`);
5. with ``transition=True``, sends ``indexed`` (the job goes back to FINISHED).

After each batch the job is read again: if it was reset, deleted or purged meanwhile, or
another run took it out of INDEXING, the run stops with a
:class:`~datacatalog.errors.ConflictError` and what it wrote follows the action that won
(unlinked after a reset, removed after a purge) rather than half-indexing a job that is
no longer there (:mod:`~datacatalog.indexing.completion`).

A file's UUID is the typed UUID of its absolute catalog path, and links are added with
``$addToSet``, so indexing again rewrites the same records and never duplicates a link.
The ``index`` and ``indexed`` events carry idempotency keys of the run, and a batch
whose write fails as ``unavailable`` (a replica set electing a new primary) is written
again, within the store's failover budget, before the run gives up: the record writes
are idempotent, so a run rides through an election and ends with the same records.

A failure after step 2 is written to the job's history (an ``update`` event carrying
``indexing_error``) and re-raised; the job stays in INDEXING, from where a second
``index`` call can finish the work.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from datacatalog import states, tokens
from datacatalog.clock import utc_now
from datacatalog.errors import NotFoundError
from datacatalog.identifiers import file_uuid, require_kind
from datacatalog.indexing.completion import MAX_ERROR_CHARS as MAX_ERROR_CHARS
from datacatalog.indexing.completion import end_events, end_execution, record_failure
from datacatalog.indexing.fixity import DEFAULT_HASH_WORKERS, check_workers
from datacatalog.indexing.lookups import file_document, job_file_documents, stored_size
from datacatalog.indexing.records import (
    FileRecord,
    IndexProgress,
    IndexReport,
    VerifyReport,
    infer_type,
)
from datacatalog.indexing.references import ReferenceResolver, check_relative_references
from datacatalog.indexing.rules import Rule, build_rules
from datacatalog.indexing.run import MAX_BATCH_SIZE as MAX_BATCH_SIZE
from datacatalog.indexing.run import IndexRun, check_batch_size
from datacatalog.indexing.verify import verify_files
from datacatalog.indexrequests import ArchiveIndexRequest, IndexRequest, ProductIndexRequest
from datacatalog.jobs import Job, JobService
from datacatalog.jobs.model import Lease
from datacatalog.pipelines import PROCESSING_LEVELS
from datacatalog.storage import StorageRegistry, StorageSystem, validate_path
from datacatalog.store import Document, Store

DEFAULT_LEVEL = "1"
"""The processing level of files whose job's pipeline declares none."""


class IndexingService:
    """Index, verify and look up the files jobs wrote to their archive paths."""

    def __init__(self, store: Store, *, jobs: JobService, storage: StorageRegistry) -> None:
        self.store = store
        self.jobs = jobs
        self.storage = storage
        self.references = ReferenceResolver(store, storage)

    # -- indexing ---------------------------------------------------------------------------

    def index(
        self,
        job_uuid: str,
        *,
        token: str | None = None,
        transition: bool = False,
        level: str | None = None,
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
                None: the level the job's pipeline declares (:func:`declared_level`).
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
        check_batch_size(batch_size)
        check_workers(hash_workers)
        require_kind(job_uuid, "pipelinejob", what="job")
        if token is not None:
            tokens.check_job_token(self.jobs.secret, job_uuid, token)
        job = self.jobs.get(job_uuid)
        planned = self._plan(job, requests=requests, filters=filters, level=level, fixity=fixity)
        if job.state not in states.transition("index").sources:
            # Said before the references are resolved (their I/O would be wasted); the
            # event below checks the state again, atomically.
            raise states.invalid_transition("index", job.state)
        errors: list[tuple[str, str]] = []
        resolved = self._resolve_rules(job, planned.rules, permissive, errors)
        run = f"indexing-{uuidlib.uuid4().hex}"  # this run's events' keys
        started = self.jobs.send(
            job_uuid,
            "index",
            data=planned.started,
            event_id=f"{run}:index",
            token=token,
        ).job
        try:
            report = IndexRun(
                self.store,
                started,
                planned.system,
                resolved,
                errors,
                progress=progress,
                batch_size=batch_size,
                hash_workers=hash_workers,
            ).execute()
            if transition:
                summary = {
                    "files": report.written,
                    "errors": len(report.errors),
                    "skipped": len(report.skipped),
                }
                ended = self.jobs.send(
                    job_uuid, "indexed", data=summary, event_id=f"{run}:indexed", token=token
                ).job
                report = replace(report, state=ended.state)
            return report
        except Exception as exc:
            record_failure(self.jobs, job_uuid, exc, token)
            raise

    def complete(
        self,
        job: Job,
        lease: Lease,
        *,
        key: str,
        finish: Mapping[str, Any] | None = None,
        index: bool = True,
        token: str | None = None,
        level: str | None = None,
        fixity: bool = True,
        batch_size: int = 1000,
        hash_workers: int = DEFAULT_HASH_WORKERS,
        progress: Callable[[IndexProgress], None] | None = None,
    ) -> tuple[Job, IndexReport | None]:
        """End a successful execution of ``job``, which ``lease`` holds: its outputs'
        file records in bulk writes (one per ``batch_size`` files), then ONE conditional
        write that appends ``finish``, ``index`` and ``indexed`` (with the report's
        counts) and releases the lease (:meth:`Lifecycle.end`). Without ``index``, only
        that write, with ``finish`` alone.

        The events' keys are ``<key>:finish``, ``<key>:index``, ``<key>:indexed``: sending
        it all again is safe (the records are upserts, the end write a no-op once made).
        A failure before the end write leaves the job RUNNING under the lease, its records
        written: the caller fails it (the records of a failed job are superseded when it
        runs again), or, if it dies, the next execution takes the lapsed lease over and
        indexes the same directory again. An end write refused because the lease was
        taken over leaves the job to its new holder (:class:`LeaseLostError`); if the job
        was reset or purged meanwhile (the write refused as a lost lease or an invalid
        transition), the records written are unlinked or removed, as
        :meth:`index` does.

        Returns the job after the end write and the index report (None without ``index``).

        Raises:
            InvalidTransitionError: The job is not RUNNING (nothing written).
            LeaseLostError: The lease is no longer ``lease.holder``'s.
            and what :meth:`index` raises before it writes.
        """
        if token is not None:
            tokens.check_job_token(self.jobs.secret, job.uuid, token)
        if job.state not in states.transition("finish").sources:
            raise states.invalid_transition("finish", job.state)
        report: IndexReport | None = None
        started: Mapping[str, Any] | None = None
        if index:
            check_batch_size(batch_size)
            check_workers(hash_workers)
            planned = self._plan(job, requests=None, filters=None, level=level, fixity=fixity)
            errors: list[tuple[str, str]] = []
            report = IndexRun(
                self.store,
                job,
                planned.system,
                self._resolve_rules(job, planned.rules, False, errors),
                errors,
                progress=progress,
                batch_size=batch_size,
                hash_workers=hash_workers,
                # The end write is conditional on the lease: no read of the job per batch.
                check_state=False,
            ).execute()
            started = planned.started
        ended = end_execution(
            self.store,
            self.jobs,
            job.uuid,
            lease,
            end_events(key, finish, report, started),
            wrote=report is not None and report.written > 0,
            token=token,
        )
        if report is not None:
            report = replace(report, state=ended.state)
        return ended, report

    def _plan(
        self,
        job: Job,
        *,
        requests: Sequence[IndexRequest] | None,
        filters: Sequence[str] | None,
        level: str | None,
        fixity: bool,
    ) -> _Plan:
        """A run's rules, checked, and its storage system; the level defaults to the
        pipeline's (:meth:`declared_level`)."""
        if level is None:
            level = self.declared_level(job)
        rules = build_rules(job, requests=requests, filters=filters, level=level, fixity=fixity)
        for rule in rules:
            check_relative_references(job, rule.request)
        system = self.storage.get(job.archive_system)
        started = {"level": level, "fixity": fixity, "requests": len(rules)}
        return _Plan(rules, system, started)

    def declared_level(self, job: Job) -> str:
        """The processing level a job's files get by default: the one its pipeline
        declares in ``processing_levels`` (the highest, when it declares several); "1"
        when the pipeline declares none or its record is gone."""
        try:
            declared = self.jobs.pipelines.get(job.pipeline_uuid).processing_levels
        except NotFoundError:
            declared = []
        known = [lv for lv in PROCESSING_LEVELS if lv in declared]
        return known[-1] if known else DEFAULT_LEVEL

    def indexed(self, job_uuid: str, *, token: str | None = None) -> Job:
        """Send ``indexed``: the job's outputs are indexed and it is FINISHED again."""
        return self.jobs.send(job_uuid, "indexed", token=token).job

    # -- references -------------------------------------------------------------------------

    def _resolve_rules(
        self, job: Job, rules: Sequence[Rule], permissive: bool, errors: list[tuple[str, str]]
    ) -> list[Rule]:
        """``rules`` with their derived references resolved to UUIDs (dropped ones in
        ``errors``)."""
        return [self._resolve_rule(job, rule, permissive, errors) for rule in rules]

    def _resolve_rule(
        self, job: Job, rule: Rule, permissive: bool, errors: list[tuple[str, str]]
    ) -> Rule:
        request = rule.request
        if not isinstance(request, ProductIndexRequest):
            return rule
        derived_from, dropped = self.references.resolve(job, request.derived_from, permissive)
        derived_using, dropped_using = self.references.resolve(
            job, request.derived_using, permissive
        )
        errors.extend(dropped + dropped_using)
        return Rule(request, rule.level, rule.fixity, tuple(derived_from), tuple(derived_using))

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
        uuids, _dropped = self.references.resolve(job, references, permissive)
        return uuids

    def file_job_relative_path(self, job: Job, reference: str, *, check_exists: bool = True) -> str:
        """The file UUID of ``reference``, a path relative to the job's archive path.

        See :meth:`ReferenceResolver.file_job_relative_path
        <datacatalog.indexing.references.ReferenceResolver.file_job_relative_path>`.
        """
        return self.references.file_job_relative_path(job, reference, check_exists=check_exists)

    # -- single files -----------------------------------------------------------------------

    def index_if_exists(
        self,
        path: str,
        *,
        storage_system: str | None = None,
        check_exists: bool = True,
        job: Job | None = None,
        level: str = "1",
        fixity: bool = False,
    ) -> FileRecord | None:
        """Index one file by its catalog path, if it can be confirmed to exist.

        Args:
            path: Absolute, normalized catalog path.
            storage_system: Where it is (default: the job's system, else the default one).
            check_exists: Return None when the file is not there; when false, the record
                is written without looking at storage (and without a size).
            job: Link the record ``generated_by`` this job and ``child_of`` its metadata.
            level: Processing level.
            fixity: Record the file's sha256 (and when it was taken); this looks at
                storage whatever ``check_exists`` says.

        Returns:
            The record, or None when storage was looked at and the file is not there.

        Raises:
            InvalidRequestError: A bad path or level.
            NotFoundError: The storage system is not configured.
        """
        validate_path(path)
        checked_level = ArchiveIndexRequest(patterns=[], level=level).level
        name = storage_system if storage_system is not None else job.archive_system if job else None
        system = self.storage.get(name)
        size = stored_size(system, path) if check_exists or fixity else None
        if (check_exists or fixity) and size is None:
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
            "note": None,
            "derived_from": [],
            "derived_using": [],
        }
        if fixity:
            fields["sha256"] = system.sha256(path)
            fields["fixity_date"] = utc_now()
        else:
            # Without fixity a checksum recorded earlier is kept.
            on_insert.update({"sha256": None, "fixity_date": None})
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
        return [FileRecord.from_document(d) for d in job_file_documents(self.store, job_uuid)]

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
        return verify_files(
            self.store,
            self.jobs,
            self.storage,
            job_uuid,
            progress=progress,
            hash_workers=hash_workers,
        )


@dataclass(frozen=True)
class _Plan:
    """A run's checked rules (references not yet resolved), its storage system and the
    data of its ``index`` event."""

    rules: list[Rule]
    system: StorageSystem
    started: dict[str, Any]
