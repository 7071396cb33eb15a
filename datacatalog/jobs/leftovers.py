"""What a new execution of a job that ran does with what the earlier ones left.

``retry`` (a FAILED job runs again) and ``rerun`` (a forced or stale one) are applied
here, however they arrive (a driver, ``datacatalog run``, a webhook): the transition
itself is the one conditional update of :mod:`datacatalog.jobs.events`; once it applied,
and only for the event that applied (a replayed idempotency key changes nothing):

1. the file records ``generated_by`` the job are **superseded**: unlinked from it (the
   records stay in the catalog, with their checksums; the new run's indexing links again
   the files it writes);
2. the archive directory is **emptied**, so that nothing a failed or earlier run left
   there is ever indexed as the new run's output (the directory is checked first to hold
   no other job's, as for an administrator's reset).

The event's own history entry says so, read just before it is applied:
``"leftovers": "cleared"``, ``"superseded": {"files": N, "named": [{name, sha256,
size}, ...]}`` and ``"cleared": {"files": N, "named": [...]}`` (the first
:data:`MAX_NAMED` of each). Event data ``{"leftovers": "keep"}`` skips both steps (a
workflow resuming on the tasks that succeeded keeps their outputs); the entry then says
``"leftovers": "kept"``.
Should emptying the directory fail, the job fails (reason ``leftovers_not_cleared``) and
the error is raised: the job never runs on a directory it could not clear.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace
from typing import Any

from datacatalog import states
from datacatalog.errors import DataCatalogError, InvalidRequestError
from datacatalog.jobs.events import EventApplier, EventCall
from datacatalog.jobs.model import Actor, EventResult
from datacatalog.jobs.plan import check_no_job_inside
from datacatalog.jobs.queries import JobQueries
from datacatalog.storage import StorageRegistry
from datacatalog.store import Store

__all__ = ["LEFTOVERS", "MAX_NAMED", "NewExecutions"]

LEFTOVERS = ("clear", "keep")
"""What a new execution does with the archive directory: ``clear`` (default) or ``keep``."""

MAX_NAMED = 20
"""Files named in the history per list (superseded records, removed entries)."""


class NewExecutions:
    """Applies ``retry`` and ``rerun`` with what they entail, on one store."""

    def __init__(
        self,
        store: Store,
        *,
        events: EventApplier,
        queries: JobQueries,
        storage: StorageRegistry,
    ) -> None:
        self.store = store
        self.events = events
        self.queries = queries
        self.storage = storage
        for event in ("retry", "rerun"):
            events.handlers[event] = self.apply_event

    def apply_event(self, call: EventCall) -> EventResult:
        """Apply ``retry`` or ``rerun``, then supersede and clear (see the module docstring).

        Raises:
            InvalidRequestError: ``leftovers`` is neither ``clear`` nor ``keep``.
            InvalidTransitionError: The event is not allowed from the job's state.
            ConflictError: Another job's archive path lies inside this one's.
            StorageFailureError: The directory could not be emptied (the job is FAILED).
        """
        job_uuid, row, payload, event_id = call.job_uuid, call.row, call.payload, call.event_id
        leftovers = payload.get("leftovers", "clear")
        if leftovers not in LEFTOVERS:
            raise InvalidRequestError(
                f"leftovers must be one of {', '.join(LEFTOVERS)}, not {leftovers!r}"
            )
        keep = leftovers == "keep"
        job = self.queries.get(job_uuid)
        system = self.storage.get(job.archive_system)
        body: dict[str, Any] = {**payload, "leftovers": "kept" if keep else "cleared"}
        applies = job.state in row.sources and not self.events.replayed(job_uuid, event_id)
        if not keep and applies:
            # Said in the event's own entry: what it supersedes and what it clears.
            check_no_job_inside(self.store, job)
            body["superseded"] = self._superseded(job_uuid)
            listed = [f.path for f in system.list_files(job.archive_path).files]
            body["cleared"] = {"files": len(listed), "named": sorted(listed)[:MAX_NAMED]}
        result = self.events.apply(replace(call, payload=body))
        if not result.applied or keep:
            return result
        try:
            self.store.update_many(
                "file", {"generated_by": job_uuid}, {"$pull": {"generated_by": job_uuid}}
            )
            system.remove_tree_contents(job.archive_path)
        except DataCatalogError as exc:
            self._fail(job_uuid, call.who, exc)
            raise
        return result

    def _superseded(self, job_uuid: str) -> dict[str, Any]:
        """How many file records the job has, and the first few (name, sha256, size)."""
        query = {"generated_by": job_uuid}
        records = self.store.find(
            "file",
            query,
            sort=[("name", 1)],
            limit=MAX_NAMED,
            projection={"name": 1, "sha256": 1, "size": 1},
        )
        return {
            "files": self.store.count("file", query),
            "named": [
                {"name": r["name"], "sha256": r.get("sha256"), "size": r.get("size")}
                for r in records
            ],
        }

    def _fail(self, job_uuid: str, who: Actor, error: DataCatalogError) -> None:
        data = {
            "reason": "leftovers_not_cleared",
            "error": {"type": type(error).__name__, "message": str(error)[:2000]},
        }
        # The clearing's own error is what the caller needs, even if this fails too.
        with suppress(DataCatalogError):
            self.events.apply(EventCall(job_uuid, states.transition("fail"), data, None, who))
