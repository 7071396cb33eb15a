"""The jobs service: one object over the parts that plan, drive, read and administer jobs.

Each part lives in its own module and can be used alone; :class:`JobService` composes
them on one store and offers their operations under one name, as callers have always
used them (``catalog.jobs.send(...)``, ``catalog.jobs.get(...)``):

======================  ==============================================================
part                    operations
======================  ==============================================================
``credentials``         ``secret``, ``job_token``, ``admin_token``, ``check_admin``,
                        ``webhook_url`` (:mod:`datacatalog.jobs.credentials`)
``planner``             ``plan``, ``create`` (:mod:`datacatalog.jobs.plan`)
``queries``             ``get``, ``history``, ``find`` (:mod:`datacatalog.jobs.queries`)
``events``              ``send`` (:mod:`datacatalog.jobs.events`)
``leases``              ``acquire``, ``renew``, ``release``, ``get`` of a job's lease
                        (:mod:`datacatalog.jobs.leases`; also ``catalog.leases``)
``admin``               ``reset``, ``ready``, ``delete``, ``undelete``, ``purge``,
                        ``audit_log`` (:mod:`datacatalog.jobs.admin`)
``coverage``            ``coverage`` of a metadata selection by pipelines
                        (:mod:`datacatalog.jobs.coverage`)
``populate``            ``populate``: one job per selected entity, the missing ones
                        run (:mod:`datacatalog.populate`)
``lifecycle``           ``start`` (lease + ``run``, a new job created in the same write)
                        and ``end`` (terminal events + lease release), one write each
                        (:mod:`datacatalog.jobs.lifecycle`)
``new_executions``      what ``retry`` and ``rerun`` entail besides the transition
                        (:mod:`datacatalog.jobs.leftovers`)
======================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from datacatalog.freeform import check_object
from datacatalog.jobs.admin import JobAdmin
from datacatalog.jobs.coverage import Coverage, coverage, pipelines_on
from datacatalog.jobs.credentials import Credentials
from datacatalog.jobs.events import EventApplier, EventOptions
from datacatalog.jobs.executions import Execution, executions
from datacatalog.jobs.leases import LeaseService
from datacatalog.jobs.leftovers import NewExecutions
from datacatalog.jobs.lifecycle import Lifecycle
from datacatalog.jobs.model import (
    Actor,
    AuditRecord,
    EventResult,
    HistoryEntry,
    Job,
    JobPlan,
    PlanOptions,
    PurgeReport,
)
from datacatalog.jobs.plan import JobPlanner
from datacatalog.jobs.queries import FindFilters, JobQueries
from datacatalog.metadata import MetadataRegistry
from datacatalog.pipelines import PipelineRegistry
from datacatalog.selection import check_level, select
from datacatalog.settings import Settings
from datacatalog.storage import StorageRegistry
from datacatalog.store import Store

if TYPE_CHECKING:
    from datacatalog.catalog import Catalog
    from datacatalog.populate import PopulateReport


class JobService:
    """Create, drive, query and administer jobs on one store.

    Each operation is its part's (see the module docstring), which documents it.
    """

    def __init__(
        self,
        store: Store,
        *,
        settings: Settings | None = None,
        storage: StorageRegistry | None = None,
        actor: Actor | None = None,
    ) -> None:
        self.store = store
        # The catalog this service belongs to (set by Catalog), which populate runs through.
        self.catalog: Catalog | None = None
        self.settings = settings or Settings.load()
        self.storage = storage or StorageRegistry(
            systems=self.settings.storage_map(), default=self.settings.default_storage
        )
        self.actor = actor or Actor.current()
        self.pipelines = PipelineRegistry(store)
        self.metadata = MetadataRegistry(store)

        self.credentials = Credentials(self.settings)
        self.queries = JobQueries(store, pipelines=self.pipelines)
        self.planner = JobPlanner(
            store,
            storage=self.storage,
            pipelines=self.pipelines,
            metadata=self.metadata,
            actor=self.actor,
        )
        self.events = EventApplier(store, credentials=self.credentials, actor=self.actor)
        # Observers of every event sent (see EventApplier.observers).
        self.observers = self.events.observers
        self.leases = LeaseService(store, events=self.events, actor=self.actor)
        self.lifecycle = Lifecycle(store, events=self.events, leases=self.leases)
        self.admin = JobAdmin(
            store,
            events=self.events,
            queries=self.queries,
            credentials=self.credentials,
            storage=self.storage,
            actor=self.actor,
        )
        self.new_executions = NewExecutions(
            store, events=self.events, queries=self.queries, storage=self.storage
        )

    @property
    def secret(self) -> str:
        """The deployment secret (read or generated once)."""
        return self.credentials.secret

    # -- tokens (Credentials) ---------------------------------------------------------------

    def job_token(self, job_uuid: str) -> str:
        """The token that authorizes events for ``job_uuid``."""
        return self.credentials.job_token(job_uuid)

    def admin_token(self) -> str:
        """An admin token for the current window."""
        return self.credentials.admin_token()

    def check_admin(self, token: str | None, *, action: str) -> None:
        """Raise unless ``token`` is a valid admin token."""
        self.credentials.check_admin(token, action=action)

    def webhook_url(self, job_uuid: str, *, base_url: str | None = None) -> str:
        """``<service>/jobs/<uuid>/events?token=<job token>`` (docs/service.md, "Events")."""
        return self.credentials.webhook_url(job_uuid, base_url=base_url)

    # -- creating (JobPlanner) --------------------------------------------------------------

    def plan(self, **options: Unpack[PlanOptions]) -> JobPlan:
        """Check every option (:class:`~datacatalog.jobs.model.PlanOptions`) and compute
        the job's identity; writes nothing."""
        return self.planner.plan(**options)

    def create(
        self, plan: JobPlan, *, setup_archive_path: bool = True, actor: Actor | None = None
    ) -> tuple[Job, bool]:
        """Create the planned job, or attach to it unchanged; returns it and whether new."""
        return self.planner.create(plan, setup_archive_path=setup_archive_path, actor=actor)

    # -- reading (JobQueries) ---------------------------------------------------------------

    def get(self, job_uuid: str, *, include_deleted: bool = False) -> Job:
        """A job by UUID; a deleted job is not found unless ``include_deleted``."""
        return self.queries.get(job_uuid, include_deleted=include_deleted)

    def archive_dir(self, job: Job | str) -> Path | None:
        """The local directory of a job's archive path (where its outputs are written),
        or None when the job's storage system is not local (see :meth:`Job.archive_dir`)."""
        found = self.get(job) if isinstance(job, str) else job
        return found.archive_dir(self.storage)

    def history(self, job_uuid: str, *, include_deleted: bool = False) -> list[HistoryEntry]:
        """The job's events, oldest first."""
        return self.queries.history(job_uuid, include_deleted=include_deleted)

    def executions(self, job_uuid: str, *, include_deleted: bool = False) -> list[Execution]:
        """The job's executions (and up-to-date checks), oldest first, from its history."""
        return executions(job_uuid, self.queries.history(job_uuid, include_deleted=include_deleted))

    def find(self, **filters: Unpack[FindFilters]) -> list[Job]:
        """Jobs matching the filters, newest first (see :meth:`JobQueries.find`)."""
        return self.queries.find(**filters)

    # -- events (EventApplier) --------------------------------------------------------------

    def send(self, job_uuid: str, event: str, **options: Unpack[EventOptions]) -> EventResult:
        """Apply one event to a job atomically (see :meth:`EventApplier.send`)."""
        return self.events.send(job_uuid, event, **options)

    # -- admin actions (JobAdmin) -----------------------------------------------------------

    def reset(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """RESET the job: unlink its indexed files and empty its archive directory."""
        return self.admin.reset(job_uuid, token=token, actor=actor)

    def ready(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """Make a RESET job CREATED again."""
        return self.admin.ready(job_uuid, token=token, actor=actor)

    def delete(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """Soft-delete: hide the job from queries and events."""
        return self.admin.delete(job_uuid, token=token, actor=actor)

    def undelete(self, job_uuid: str, *, token: str | None, actor: Actor | None = None) -> Job:
        """Restore a soft-deleted job."""
        return self.admin.undelete(job_uuid, token=token, actor=actor)

    def purge(
        self,
        job_uuid: str,
        *,
        token: str | None,
        dry_run: bool = False,
        actor: Actor | None = None,
    ) -> PurgeReport:
        """Remove the job, its file records and its archive contents for good."""
        return self.admin.purge(job_uuid, token=token, dry_run=dry_run, actor=actor)

    def audit_log(self, job_uuid: str | None = None, *, limit: int = 100) -> list[AuditRecord]:
        """Admin actions, newest first (for one job, or all)."""
        return self.admin.audit_log(job_uuid, limit=limit)

    # -- coverage ---------------------------------------------------------------------------

    def coverage(
        self,
        *,
        metadata: Mapping[str, str | Sequence[str] | None],
        pipelines: str | Sequence[str] | None = None,
        level: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> Coverage:
        """Which selected entities have a job of ``pipelines``, in which state.

        ``metadata`` names the entities (one kind, e.g. ``{"experiment_id": "E"}``) and
        ``level`` the level below them to report on (default: those entities);
        ``pipelines`` None (or empty) stands for every pipeline with a job on them. See
        :func:`datacatalog.jobs.coverage.coverage` for the rest.
        """
        names = [pipelines] if isinstance(pipelines, str) else list(pipelines or [])
        check_level(level)
        found = [self.pipelines.get(name) for name in names]
        if parameters is not None:
            parameters = check_object(parameters, where="parameters")
        selection = select(self.store, level=level, metadata=self.metadata, **dict(metadata))
        if not names:
            found = [self.pipelines.get(u) for u in pipelines_on(self.store, selection)]
        return coverage(
            self.store,
            pipelines=list({p.uuid: p for p in found}.values()),
            selection=selection,
            parameters=parameters,
            offset=offset,
            limit=limit,
        )

    # -- populate ---------------------------------------------------------------------------

    def populate(self, **options: Any) -> PopulateReport:
        """Run a pipeline on every selected entity whose job is not up to date.

        The options are :func:`datacatalog.populate.populate`'s (``pipeline``,
        ``metadata``, ``level``, ``command`` or ``execute``, ``executor`` ...).
        """
        from datacatalog.catalog import Catalog
        from datacatalog.populate import populate

        catalog = self.catalog or Catalog(
            self.store, settings=self.settings, storage=self.storage, actor=self.actor
        )
        return populate(catalog, **options)
