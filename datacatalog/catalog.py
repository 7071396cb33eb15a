"""The catalog: one object bundling a store, the configuration and every registry.

The command line, the HTTP service, the demo and the compatibility API each
open one :class:`Catalog` and work through its parts::

    catalog = Catalog.open()                 # zero configuration: the embedded catalog
    catalog = Catalog.open("mongodb://db.example.org/")
    catalog.pipelines.register({...})
    catalog.jobs.send(job_uuid, "run")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datacatalog.indexing import IndexingService
from datacatalog.jobs import Actor, JobService
from datacatalog.jobs.leases import LeaseService
from datacatalog.metadata import MetadataRegistry
from datacatalog.pipelines import PipelineRegistry
from datacatalog.settings import Settings
from datacatalog.storage import StorageRegistry
from datacatalog.store import Store, connect


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
        self.settings: Settings = self.jobs.settings
        self.storage: StorageRegistry = self.jobs.storage
        self.pipelines: PipelineRegistry = self.jobs.pipelines
        self.metadata: MetadataRegistry = self.jobs.metadata
        self.leases: LeaseService = self.jobs.leases
        self.indexing = IndexingService(store, jobs=self.jobs, storage=self.storage)

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
            lock_timeout=resolved.lock_timeout,
        )
        return cls(store, settings=resolved, actor=actor)

    def close(self) -> None:
        """Release the store."""
        self.store.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
