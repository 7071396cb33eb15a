"""Where a stage driver's job and catalog come from: its arguments, or the environment.

A driver is given a job UUID, a :class:`~datacatalog.jobs.Job`, a
:class:`~datacatalog.jobs.JobPlan` (the job is created in the write that starts it), or a
compatibility-API object holding one (``ManagedPipelineJob``,
``ManagedPipelineJobInstance``: anything with a ``uuid`` and a ``catalog``). Given
none, it reads the job from the environment that ``datacatalog run`` and remote
launchers set::

    DATACATALOG_JOB_UUID    the job (required)
    DATACATALOG_JOB_TOKEN   its token (required: the events come from outside the catalog)

and the catalog from the usual settings (``DATACATALOG_MONGODB_URI``, ...).
"""

from __future__ import annotations

import os
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datacatalog.catalog import Catalog
from datacatalog.errors import InvalidRequestError
from datacatalog.identifiers import require_kind
from datacatalog.jobs import Job, JobPlan
from datacatalog.store import Store

JOB_UUID_ENV = "DATACATALOG_JOB_UUID"
JOB_TOKEN_ENV = "DATACATALOG_JOB_TOKEN"


@dataclass
class JobSource:
    """The job a driver drives, the catalog it is in, and the token for its events."""

    job_uuid: str
    catalog: Catalog
    token: str | None
    owns_catalog: bool  # opened here, so closed when the driver ends


def resolve(
    job: Any,
    *,
    catalog: Catalog | None = None,
    store: Store | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
) -> JobSource:
    """Find the job, its catalog and its token from the driver's arguments.

    Raises:
        InvalidRequestError: A job of the wrong type, a malformed UUID, both ``catalog``
            and ``store``, or (with no job) a missing or malformed environment variable.
    """
    _check_arguments(catalog, store, token)
    if job is None:
        job_uuid, token = _from_environment(os.environ if env is None else env, token)
    elif isinstance(job, (Job, JobPlan)):
        job_uuid = job.uuid
    elif isinstance(job, (str, uuidlib.UUID)):
        job_uuid = require_kind(str(job), "pipelinejob", what="job")
    elif isinstance(getattr(job, "catalog", None), Catalog) and hasattr(job, "uuid"):
        # A compatibility-API object: its job (set up or loaded), catalog and token.
        job_uuid = _compatibility_job_uuid(job)
        if catalog is None and store is None:
            catalog = job.catalog
        if token is None:
            token = getattr(job, "token", None)
    else:
        raise InvalidRequestError(
            "a driver's job must be a job UUID, a Job, a JobPlan or a "
            "ManagedPipelineJob(Instance), "
            f"not {type(job).__name__}"
        )
    if catalog is not None:
        return JobSource(job_uuid, catalog, token, owns_catalog=False)
    if store is not None:
        return JobSource(job_uuid, Catalog(store), token, owns_catalog=False)
    return JobSource(job_uuid, Catalog.open(), token, owns_catalog=True)


def _check_arguments(catalog: Any, store: Any, token: Any) -> None:
    if catalog is not None and store is not None:
        raise InvalidRequestError("give a driver catalog= or store=, not both")
    if catalog is not None and not isinstance(catalog, Catalog):
        raise InvalidRequestError(f"catalog must be a Catalog, not {type(catalog).__name__}")
    if store is not None and not isinstance(store, Store):
        raise InvalidRequestError(f"store must be a Store, not {type(store).__name__}")
    if token is not None and not isinstance(token, str):
        raise InvalidRequestError("a job token must be a string")


def _from_environment(environ: Mapping[str, str], token: str | None) -> tuple[str, str]:
    """The job UUID and (unless given) the token, from the environment."""
    job_uuid = _from_env(environ, JOB_UUID_ENV)
    try:
        require_kind(job_uuid, "pipelinejob", what="job")
    except InvalidRequestError as exc:
        raise InvalidRequestError(
            f"{JOB_UUID_ENV}={job_uuid!r} does not name a job: {exc}", variable=JOB_UUID_ENV
        ) from exc
    return job_uuid, token if token is not None else _from_env(environ, JOB_TOKEN_ENV)


def _compatibility_job_uuid(job: Any) -> str:
    """The job a compatibility-API object holds, once it was set up or loaded."""
    if job.uuid is None:
        raise InvalidRequestError(
            f"{type(job).__name__} has no job yet: call setup() (or load()) first"
        )
    return require_kind(str(job.uuid), "pipelinejob", what="job")


def _from_env(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise InvalidRequestError(
            f"no job given and {name} is not set: pass the job to the driver, "
            "or run it under `datacatalog run`",
            variable=name,
        )
    return value
