"""The service's routes, one router per area.

=============== =========================================================================
``lineage``     the lineage graph of any entity; a job as PROV-JSON, OpenLineage, RO-Crate
``events``      job writes: events and scheduler statuses (job token)
``jobs``        open reads: listings, a job, its history, its files
``workflows``   open reads: a job's workflow executions, one execution with its tasks
``provenance``  a file traced upstream; a job as W3C PROV-JSON
``indexing``    indexing a job's outputs (job token)
``admin``       reset, ready, delete, undelete, purge (admin token)
``health``      one cheap read of the catalog
=============== =========================================================================

Every route takes the catalog as a dependency
(:data:`datacatalog.service.dependencies.CatalogDep`). :data:`ROUTERS` is in the order
the application includes them, which is the order of the OpenAPI document's paths.
"""

from __future__ import annotations

from fastapi import APIRouter

from datacatalog.service.routes import (
    admin,
    events,
    health,
    indexing,
    jobs,
    lineage,
    provenance,
    workflows,
)

ROUTERS: tuple[APIRouter, ...] = (
    lineage.router,
    events.router,
    jobs.router,
    workflows.router,
    provenance.router,
    indexing.router,
    admin.router,
    health.router,
)
"""Every router of the service, in the order the application includes them."""
