"""The pipeline-jobs API: thin classes over the catalog's core services.

This is the documented Python API of the system this package replaces, kept at the
same import paths with the same signatures; everything behind it is
:mod:`datacatalog.jobs` and :mod:`datacatalog.indexing`.

=================================  ===================================================
class                              use
=================================  ===================================================
:class:`ManagedPipelineJob`        create (or attach to) the job of one pipeline run
:class:`ReactorManagedPipelineJob` the same, configured from a host object
:class:`JobManager`                drive a known job through the state machine
:class:`ManagedPipelineJobInstance` events and indexing for an existing job, by token
:class:`ManagedPipelineJobError`   the root of every error (its categories live in
                                   :mod:`datacatalog.errors`)
:class:`Driver`                    run code under a job: prepare → execute → cleanup
                                   (:mod:`datacatalog.driver`; ``job`` may be any of
                                   the classes above)
=================================  ===================================================

Submodules: ``config``, ``exceptions``, ``indexer``, ``indexrequest``, ``instanced``,
``jobmanager``, ``reactor``, ``store``.
"""

from __future__ import annotations

from datacatalog.driver import Driver, DriverResult
from datacatalog.managers.pipelinejobs import (
    config,
    exceptions,
    indexer,
    indexrequest,
    instanced,
    jobmanager,
    reactor,
    store,
)
from datacatalog.managers.pipelinejobs.config import PipelineJobsConfig, PipelinesConfig
from datacatalog.managers.pipelinejobs.exceptions import ManagedPipelineJobError
from datacatalog.managers.pipelinejobs.indexer import Indexer
from datacatalog.managers.pipelinejobs.instanced import ManagedPipelineJobInstance
from datacatalog.managers.pipelinejobs.jobmanager import JobManager
from datacatalog.managers.pipelinejobs.reactor import ReactorManagedPipelineJob
from datacatalog.managers.pipelinejobs.store import ManagedPipelineJob

__all__ = [
    "Driver",
    "DriverResult",
    "Indexer",
    "JobManager",
    "ManagedPipelineJob",
    "ManagedPipelineJobError",
    "ManagedPipelineJobInstance",
    "PipelineJobsConfig",
    "PipelinesConfig",
    "ReactorManagedPipelineJob",
    "config",
    "exceptions",
    "indexer",
    "indexrequest",
    "instanced",
    "jobmanager",
    "reactor",
    "store",
]
