"""Planning and creating a job: its identity, archive path and links, then one insert.

The job's identity is what it computes: ``job_uuid(pipeline, child_of, data)``. Its
archive path is computed from the same values, once, and stored. Creating a job that
exists attaches to it *without changing it*; two processes creating the same job at once
end with one document (one insert on the unique ``uuid``: the loser reads the winner's).
Instanced archive paths are claimed through a unique index on ``(archive_system,
archive_path)``; on a collision a new instance name is drawn.

Archive directories never nest: a reset or purge empties a job's directory, and must not
take another job's outputs with it. Generated paths cannot nest (each ends in three
components computed from the job's identity, under one fixed prefix) and explicit paths
may not lie in or hold that prefix, so only an explicit path is checked against the other
explicit paths, with one read before its insert. Reset and purge check again just before
they empty anything (:func:`check_no_job_inside`), for two explicit paths created at the
same instant, and for jobs recorded before explicit paths were kept out of the prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Unpack

from datacatalog import archive, states
from datacatalog.errors import ConflictError, InvalidRequestError, PayloadTooLargeError
from datacatalog.freeform import check_json, check_object
from datacatalog.identifiers import job_uuid, kind_of
from datacatalog.indexrequests import (
    ArchiveIndexRequest,
    IndexRequest,
    ProductIndexRequest,
    index_request_from,
)
from datacatalog.jobs.events import entry_size, new_entry
from datacatalog.jobs.limits import (
    INSTANCE_ATTEMPTS,
    MAX_INDEX_REQUESTS,
    MAX_INPUTS,
    MAX_JOB_DATA_BYTES,
)
from datacatalog.jobs.model import PLAN_OPTIONS, Actor, Job, JobPlan, PlanOptions
from datacatalog.jobs.references import file_reference_uuid, reference_uuid, references_in
from datacatalog.metadata import MetadataRegistry
from datacatalog.pipelines import PipelineRegistry
from datacatalog.storage import StorageRegistry
from datacatalog.store import Document, Store


class JobPlanner:
    """Plans jobs (checks and computes, writes nothing) and creates them."""

    def __init__(
        self,
        store: Store,
        *,
        storage: StorageRegistry,
        pipelines: PipelineRegistry,
        metadata: MetadataRegistry,
        actor: Actor,
    ) -> None:
        self.store = store
        self.storage = storage
        self.pipelines = pipelines
        self.metadata = metadata
        self.actor = actor

    def plan(self, **options: Unpack[PlanOptions]) -> JobPlan:
        """Check every option (:class:`PlanOptions`) and compute the job's identity;
        writes nothing.

        ``instance`` names the instanced directory of an instanced job (default: a new
        ``<session>-<UTC time>`` name), so that a path computed earlier can be claimed.

        Raises:
            TypeError: An option :class:`PlanOptions` does not declare, or a required
                one left out.
        """
        _check_options(options)
        pipeline_uuid = self.pipelines.get(options["pipeline"]).uuid
        data, inputs = options.get("data"), options.get("inputs")
        archive_path, session = options.get("archive_path"), options.get("session")
        instanced, instance = options.get("instanced", False), options.get("instance")
        job_data = dict(check_object(data, where="data", max_bytes=MAX_JOB_DATA_BYTES))
        child_of = self.metadata.resolve(**dict(options["metadata"]))
        if inputs is not None and not isinstance(inputs, (list, tuple)):
            raise InvalidRequestError("inputs must be a list")
        check_json(list(inputs or []), where="inputs")
        files = references_in(job_data, inputs, store="files")
        refs = references_in(job_data, inputs, store="references")
        if len(files) + len(refs) > MAX_INPUTS:
            raise PayloadTooLargeError(f"a job may name at most {MAX_INPUTS} inputs")
        uuid = job_uuid(pipeline_uuid, child_of, job_data)
        if session is not None:
            archive.check_session(session)
        system = options.get("archive_system") or self.storage.default_name
        self.storage.get(system)
        explicit = archive_path is not None
        if archive_path is not None:
            path = archive.check_outside_generated(archive.check_archive_path(archive_path))
        else:
            path = archive.archive_path(pipeline_uuid, child_of, job_data)
            if instanced:
                name = (
                    archive.instanced_directory(session)
                    if instance is None
                    else _instance_name(instance)
                )
                path = f"{path}/{name}"
        extra_generators = [_generator(g) for g in (options.get("generated_by") or [])]
        return JobPlan(
            uuid=uuid,
            pipeline_uuid=pipeline_uuid,
            child_of=child_of,
            data=job_data,
            archive_path=path,
            archive_system=system,
            instanced=bool(instanced) and not explicit,
            explicit_path=explicit,
            session=session,
            agent=options.get("agent"),
            task=options.get("task"),
            acted_on=sorted({file_reference_uuid(f) for f in files}),
            acted_using=sorted({reference_uuid(r) for r in refs}),
            generated_by=sorted({pipeline_uuid, *extra_generators}),
            archive_patterns=_requests(
                options.get("archive_patterns"), ArchiveIndexRequest, "archive_patterns"
            ),
            product_patterns=_requests(
                options.get("product_patterns"), ProductIndexRequest, "product_patterns"
            ),
            archive_collection_level=options.get("archive_collection_level"),
        )

    def create(
        self, plan: JobPlan, *, setup_archive_path: bool = True, actor: Actor | None = None
    ) -> tuple[Job, bool]:
        """Create the planned job, or attach to it unchanged if it exists.

        Returns the job and whether this call created it.
        """
        who = actor or self.actor
        current = plan
        # An unknown system, or a path leaving the system's root through a symbolic link,
        # is refused before anything is written.
        self.storage.get(plan.archive_system).resolve(plan.archive_path)
        if plan.explicit_path:
            self._check_no_overlap(plan)
        for _attempt in range(INSTANCE_ATTEMPTS):
            doc = self._document(current, who)
            try:
                stored, created = self.store.insert_if_absent("job", doc)
            except ConflictError as exc:
                if exc.details.get("key") != ["archive_system", "archive_path"]:
                    raise
                if not current.instanced:
                    raise ConflictError(
                        f"archive path {current.archive_path} on {current.archive_system} "
                        "already belongs to another job",
                        archive_path=current.archive_path,
                    ) from exc
                base = current.archive_path.rsplit("/", 1)[0]
                fresh = f"{base}/{archive.instanced_directory(None)}"
                current = _replace_path(current, fresh)
                continue
            job = Job.from_document(stored)
            if setup_archive_path:
                self.storage.get(job.archive_system).makedirs(job.archive_path)
            return job, created
        raise ConflictError(
            f"could not claim a free instanced archive path after {INSTANCE_ATTEMPTS} attempts"
        )

    def document(self, plan: JobPlan, *, actor: Actor | None = None) -> Document:
        """The new job document of ``plan``, as :meth:`create` inserts it."""
        return self._document(plan, actor or self.actor)

    def _check_no_overlap(self, plan: JobPlan) -> None:
        """Refuse an explicit archive path inside another job's, or holding another job's."""
        path, system = plan.archive_path, plan.archive_system
        parts = path.strip("/").split("/")
        ancestors = ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
        clash = self.store.find(
            "job",
            {
                "archive_system": system,
                "uuid": {"$ne": plan.uuid},
                "$or": [{"archive_path": {"$in": ancestors}}, _under(path)],
            },
            projection={"uuid": 1, "archive_path": 1},
            limit=1,
        )
        if clash:
            raise _overlap(path, system, clash[0])

    def _document(self, plan: JobPlan, who: Actor) -> Document:
        entry = new_entry("create", {}, event_id=None, to_state=states.INITIAL_STATE, actor=who)
        return {
            "uuid": plan.uuid,
            "pipeline_uuid": plan.pipeline_uuid,
            "state": states.INITIAL_STATE,
            "last_event": "create",
            "history": [entry],
            "data": plan.data,
            "session": plan.session,
            "agent": plan.agent,
            "task": plan.task,
            "archive_path": plan.archive_path,
            "archive_system": plan.archive_system,
            "instanced": plan.instanced,
            "archive_collection_level": plan.archive_collection_level,
            "archive_patterns": plan.archive_patterns,
            "product_patterns": plan.product_patterns,
            "generated_by": plan.generated_by,
            "child_of": plan.child_of,
            "acted_on": plan.acted_on,
            "acted_using": plan.acted_using,
            "_properties": {
                "created_date": entry["date"],
                "modified_date": entry["date"],
                "revision": 0,
                "history_bytes": entry_size(entry),
            },
            "_visible": True,
        }


def _check_options(options: Mapping[str, Any]) -> None:
    """Refuse what a signature would: an undeclared option, a required one missing."""
    unknown = sorted(options.keys() - PLAN_OPTIONS)
    missing = [name for name in ("pipeline", "metadata") if name not in options]
    if unknown:
        raise TypeError(f"plan() got unexpected keyword arguments: {', '.join(unknown)}")
    if missing:
        raise TypeError(f"plan() is missing required keyword arguments: {', '.join(missing)}")


def _requests(
    values: Sequence[Any] | None, cls: type[IndexRequest], where: str
) -> list[dict[str, Any]]:
    if values is None:
        return []
    if not isinstance(values, (list, tuple)):
        raise InvalidRequestError(f"{where} must be a list of index requests")
    if len(values) > MAX_INDEX_REQUESTS:
        raise PayloadTooLargeError(f"{where} may hold at most {MAX_INDEX_REQUESTS} requests")
    out = []
    for value in values:
        request = index_request_from(value)
        if not isinstance(request, cls):
            raise InvalidRequestError(
                f"{where} holds a {request.kind} request, expected {cls.kind}"
            )
        out.append(request.to_dict())
    return out


def _instance_name(name: Any) -> str:
    if not isinstance(name, str) or "/" in name or not name.strip("."):
        raise InvalidRequestError(
            f"an instanced directory must be one path segment, not {name!r}", instance=str(name)
        )
    archive.check_archive_path("/" + name)
    return name


def _replace_path(plan: JobPlan, path: str) -> JobPlan:
    return replace(plan, archive_path=path)


def _generator(value: Any) -> str:
    kind = kind_of(value)
    if kind not in ("process", "pipeline"):
        raise InvalidRequestError(
            f"generated_by {value!r} must be a process or pipeline UUID", value=str(value)
        )
    assert isinstance(value, str)
    return value


def check_no_job_inside(store: Store, job: Job) -> None:
    """Refuse to empty ``job``'s directory when another job's archive path lies inside it.

    Raises:
        ConflictError: Naming the other job and its path.
    """
    inside = store.find(
        "job",
        {
            "archive_system": job.archive_system,
            "uuid": {"$ne": job.uuid},
            **_under(job.archive_path),
        },
        projection={"uuid": 1, "archive_path": 1},
        limit=1,
    )
    if inside:
        raise _overlap(job.archive_path, job.archive_system, inside[0])


def _under(path: str) -> dict[str, Any]:
    return {"archive_path": {"$regex": "^" + re.escape(path.rstrip("/") + "/")}}


def _overlap(path: str, system: str, other: Mapping[str, Any]) -> ConflictError:
    return ConflictError(
        f"archive path {path} on {system} overlaps job {other['uuid']}'s archive path "
        f"{other['archive_path']}; one job's directory may not hold another's",
        archive_path=path,
        job=other["uuid"],
    )
