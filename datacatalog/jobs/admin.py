"""Admin actions: reset, ready, delete, undelete, purge, and their audit trail.

``reset``, ``ready``, ``delete``, ``undelete`` and ``purge`` need an admin token, and
each leaves an audit record in the ``audit`` collection, which survives the job's
deletion. Audit records are ordered by the catalog's ``audit`` sequence.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from datacatalog.clock import utc_now
from datacatalog.errors import DataCatalogError, NotFoundError
from datacatalog.identifiers import random_uuid, require_kind
from datacatalog.jobs.credentials import Credentials
from datacatalog.jobs.events import EventApplier, EventCall
from datacatalog.jobs.model import Actor, AuditRecord, EventResult, Job, PurgeReport
from datacatalog.jobs.plan import check_no_job_inside
from datacatalog.jobs.queries import JobQueries, job_document
from datacatalog.storage import StorageRegistry
from datacatalog.store import Store


class JobAdmin:
    """The admin actions on the jobs of one store."""

    def __init__(
        self,
        store: Store,
        *,
        events: EventApplier,
        queries: JobQueries,
        credentials: Credentials,
        storage: StorageRegistry,
        actor: Actor,
    ) -> None:
        self.store = store
        self.events = events
        self.queries = queries
        self.credentials = credentials
        self.storage = storage
        self.actor = actor
        events.admin_handler = self.apply_event

    def reset(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """RESET the job: unlink its indexed files and empty its archive directory.

        The same as sending the ``reset`` event (see :meth:`apply_event`).
        """
        self.credentials.check_admin(token, action="reset")
        return self.events.send(job_uuid, "reset", token=token, actor=actor).job

    def ready(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """Make a RESET job CREATED again (the same as sending the ``ready`` event)."""
        self.credentials.check_admin(token, action="ready")
        return self.events.send(job_uuid, "ready", token=token, actor=actor).job

    def apply_event(self, call: EventCall) -> EventResult:
        """Apply ``reset`` or ``ready`` with all the action entails, and audit it.

        However it arrives (:meth:`reset`, or :meth:`EventApplier.send` with the event), a reset
        unlinks the job's indexed files and empties its archive directory. The storage
        system, and that no other job's directory lies inside this one's, are checked
        before anything is written. Once the job is RESET the action
        is audited, also when emptying the directory fails (the record then holds the
        error, and resetting again finishes the work). A replayed idempotency key
        changes nothing and is not audited again.
        """
        job_uuid, row, event_id = call.job_uuid, call.row, call.event_id
        system = None
        if row.event == "reset":
            job = self.queries.get(job_uuid)
            system = self.storage.get(job.archive_system)
            if job.state in row.sources and not self.events.replayed(job_uuid, event_id):
                # Only a reset that will apply empties the directory: a replay stays the
                # no-op it is, and a reset from a state that allows none its refusal.
                check_no_job_inside(self.store, job)
        result = self.events.apply(call)
        if not result.applied:
            return result
        with self._audited(row.event, job_uuid, call.who) as details:
            if event_id is not None:
                details["event_id"] = event_id
            if system is not None:
                details["unlinked_files"] = self.store.update_many(
                    "file", {"generated_by": job_uuid}, {"$pull": {"generated_by": job_uuid}}
                )
                details["removed"] = len(system.remove_tree_contents(result.job.archive_path))
        return result

    def delete(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """Soft-delete: hide the job from queries and events; :meth:`undelete` restores it."""
        self.credentials.check_admin(token, action="delete")
        doc = self.store.update(
            "job",
            {"uuid": require_kind(job_uuid, "pipelinejob", what="job")},
            {"$set": {"_visible": False, "deleted_date": utc_now()}},
            projection={"history": 0},
        )
        if doc is None:
            raise NotFoundError(f"job {job_uuid} not found", job=job_uuid)
        self._audit("delete", job_uuid, {}, actor)
        return Job.from_document(doc)

    def undelete(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """Restore a soft-deleted job."""
        self.credentials.check_admin(token, action="undelete")
        doc = self.store.update(
            "job",
            {"uuid": require_kind(job_uuid, "pipelinejob", what="job")},
            {"$set": {"_visible": True, "deleted_date": None}},
            projection={"history": 0},
        )
        if doc is None:
            raise NotFoundError(f"job {job_uuid} not found", job=job_uuid)
        self._audit("undelete", job_uuid, {}, actor)
        return Job.from_document(doc)

    def purge(
        self,
        job_uuid: str,
        *,
        token: str | None,
        dry_run: bool = False,
        actor: Actor | None = None,
    ) -> PurgeReport:
        """Remove the job, its file records and its archive contents for good.

        With ``dry_run`` nothing is removed; the report lists what would go. The archive
        contents go first (a storage failure leaves the job and its records for another
        try), then the job, then its file records: an indexing run racing the purge finds
        the job gone after its next write and removes what it wrote since (see
        :mod:`datacatalog.indexing`). The action is audited, with the error when it
        failed part-way.
        """
        self.credentials.check_admin(token, action="purge")
        job = Job.from_document(job_document(self.store, job_uuid, include_deleted=True))
        system = self.storage.get(job.archive_system)
        check_no_job_inside(self.store, job)
        file_query = {"generated_by": job_uuid}
        files = sorted(
            d["name"] for d in self.store.find("file", file_query, projection={"name": 1})
        )
        entries: list[str] = []
        with self._audited("purge", job_uuid, actor, dry_run=dry_run) as details:
            details.update(
                {
                    "archive_path": job.archive_path,
                    "archive_system": job.archive_system,
                    "files": len(files),
                    "pipeline_uuid": job.pipeline_uuid,
                    "child_of": job.child_of,
                }
            )
            if dry_run:
                entries = [f.path for f in system.list_files(job.archive_path).files]
            else:
                entries = system.remove_tree(job.archive_path)
                self.store.delete_many("job", {"uuid": job_uuid})
                self.store.delete_many("file", file_query)
            details["archive_entries"] = len(entries)
        return PurgeReport(
            job_uuid=job_uuid,
            dry_run=dry_run,
            archive_path=job.archive_path,
            archive_system=job.archive_system,
            files=files,
            archive_entries=sorted(entries),
        )

    def audit_log(self, job_uuid: str | None = None, *, limit: int = 100) -> list[AuditRecord]:
        """Admin actions, newest first (for one job, or all).

        The order is the order the actions were recorded in, taken from the catalog's
        ``audit`` sequence (:meth:`Store.next_sequence`), never from their dates alone:
        actions within one millisecond share a date. Records written before the sequence
        existed have none and come last, by date.
        """
        if job_uuid is not None:
            require_kind(job_uuid, "pipelinejob", what="job")
        query = {"job_uuid": job_uuid} if job_uuid is not None else {}
        docs = self.store.find("audit", query, sort=[("seq", -1), ("date", -1)], limit=limit)
        return [AuditRecord.from_document(d) for d in docs]

    @contextmanager
    def _audited(
        self, action: str, job_uuid: str, actor: Actor | None, *, dry_run: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Audit the action done in the block, with the details it fills in.

        A failure is audited too, with its message, and then raised as it was.
        """
        details: dict[str, Any] = {}
        try:
            yield details
        except Exception as exc:
            details["error"] = str(exc) or type(exc).__name__
            # The action's own error is what the caller needs, even if the audit fails too.
            with suppress(DataCatalogError):
                self._audit(action, job_uuid, details, actor, dry_run=dry_run)
            raise
        self._audit(action, job_uuid, details, actor, dry_run=dry_run)

    def _audit(
        self,
        action: str,
        job_uuid: str,
        details: Mapping[str, Any],
        actor: Actor | None,
        *,
        dry_run: bool = False,
    ) -> None:
        self.store.insert(
            "audit",
            {
                "uuid": random_uuid("generic"),
                "seq": self.store.next_sequence("audit"),
                "action": action,
                "job_uuid": job_uuid,
                "date": utc_now(),
                "actor": (actor or self.actor).to_dict(),
                "details": dict(details),
                "dry_run": dry_run,
            },
        )
