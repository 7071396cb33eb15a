"""The catalog: one object bundling a store, the configuration and every registry.

The command line, the HTTP service, the demo and the compatibility API each
open one :class:`Catalog` and work through its parts::

    catalog = Catalog.open()                 # zero configuration: the local catalog
    catalog = Catalog.open("mongodb://db.example.org/")
    catalog.pipelines.register({...})
    catalog.jobs.send(job_uuid, "run")
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from datacatalog import emission
from datacatalog.jobs import Actor, JobService
from datacatalog.jobs.leases import LeaseService
from datacatalog.metadata import MetadataRegistry
from datacatalog.pipelines import PipelineRegistry
from datacatalog.settings import Settings
from datacatalog.storage import StorageRegistry
from datacatalog.store import Store, connect

if TYPE_CHECKING:
    # Loaded when used: a command reading one job needs neither (see ``indexing``).
    from datacatalog.indexing import IndexingService
    from datacatalog.provenance.emitter import OpenLineageEmitter


class Catalog:
    """A connected catalog and its services."""

    def __init__(
        self,
        store: Store,
        *,
        settings: Settings | None = None,
        storage: StorageRegistry | None = None,
        actor: Actor | None = None,
    ) -> None:
        self.store = store
        self.jobs = JobService(store, settings=settings, storage=storage, actor=actor)
        self.jobs.catalog = self  # populate runs jobs through the whole catalog
        self.settings: Settings = self.jobs.settings
        self.storage: StorageRegistry = self.jobs.storage
        self.pipelines: PipelineRegistry = self.jobs.pipelines
        self.metadata: MetadataRegistry = self.jobs.metadata
        self.leases: LeaseService = self.jobs.leases
        # Live OpenLineage emission when DATACATALOG_OPENLINEAGE_URL or _FILE is set; the
        # emitter (the OpenLineage client, the provenance package) is imported only then.
        self.openlineage: OpenLineageEmitter | None = None
        if emission.configured():
            from datacatalog.provenance.emitter import from_environment

            self.openlineage = from_environment(
                store, storage=self.storage, data_dir=self.settings.data_dir
            )
        if self.openlineage is not None:
            self.jobs.observers.append(self.openlineage)

    @cached_property
    def indexing(self) -> IndexingService:
        """The indexing service, made (and its module imported) on first use."""
        from datacatalog.indexing import IndexingService

        return IndexingService(self.store, jobs=self.jobs, storage=self.storage)

    @classmethod
    def open(
        cls,
        target: str | Mapping[str, Any] | Any | None = None,
        *,
        settings: Settings | None = None,
        database: str | None = None,
        actor: Actor | None = None,
    ) -> Catalog:
        """Connect to ``target`` (default: the configured MongoDB or the embedded catalog)."""
        resolved = settings or Settings.load()
        store = connect(
            resolved.store_target() if target is None else target,
            database=database or resolved.mongodb_database,
            timeout_ms=_milliseconds(resolved.mongodb_timeout),
            lock_timeout=resolved.lock_timeout,
            failover_budget=resolved.mongodb_failover,
        )
        return cls(store, settings=resolved, actor=actor)

    def close(self) -> None:
        """Send what OpenLineage events are queued (bounded wait), then release the store."""
        if self.openlineage is not None:
            self.openlineage.close()
        self.store.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))
