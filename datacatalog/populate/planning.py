"""Planning a populate: one job per selected entity, read and created in batches.

A pipeline, its parameters and a metadata selection make one job per entity, whose
identity is ``job_uuid(pipeline, [entity], parameters)`` and whose archive path follows
from the same values: both are computed here without a round trip. The first entity is
planned by :meth:`JobService.plan`, which checks every argument once; the others are
the same plan with their entity's identity and path.

Then, per batch of :data:`BATCH_SIZE` entities, ONE read of the jobs that exist already
and ONE unordered insert of the missing ones (a job another populate inserted meanwhile
is refused by the unique index, and read back with one more read). Planning 10,000
entities is so a few dozen round trips, not thousands. A dry run does the reads only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from datacatalog import archive
from datacatalog.errors import ConflictError, InvalidRequestError
from datacatalog.identifiers import job_uuid
from datacatalog.jobs import JobService
from datacatalog.jobs.model import JobPlan
from datacatalog.metadata import ID_FIELDS
from datacatalog.pipelines import Pipeline
from datacatalog.selection import Entity, Selection
from datacatalog.store import Document

BATCH_SIZE = 1000
"""Entities per batch: one read of existing jobs and one insert each."""

_FIELDS = {
    "uuid": 1,
    "state": 1,
    "lease": 1,
    "_visible": 1,
    "_properties.history_bytes": 1,
    "archive_path": 1,
    "archive_system": 1,
}


@dataclass(frozen=True)
class PlannedJob:
    """One entity's job as planning found (or made) it.

    Attributes:
        entity: The selected entity.
        uuid: The job's identity.
        state: Its state when planned (``None``: it does not exist; only in a dry run).
        history_bytes: The size of its history when planned (a longer one later means
            events happened since).
        created: Whether this populate created it.
        visible: False for a deleted job.
        lease_holder: The holder of its lease when planned, and when that lease expires.
    """

    entity: Entity
    uuid: str
    archive_path: str
    archive_system: str
    state: str | None
    history_bytes: int
    created: bool
    visible: bool = True
    lease_holder: str | None = None
    lease_expires: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "entity": {"uuid": self.entity.uuid, "id": self.entity.id},
            "job": self.uuid,
            "state": self.state,
            "created": self.created,
        }


@dataclass(frozen=True)
class PopulatePlan:
    """What a populate covers: the pipeline, parameters, selection and one job per entity."""

    pipeline: Pipeline
    parameters: dict[str, Any]
    selection: Selection
    jobs: tuple[PlannedJob, ...]
    dry_run: bool


def plan(
    jobs: JobService,
    *,
    pipeline: str,
    selection: Selection,
    parameters: Mapping[str, Any] | None = None,
    archive_patterns: Sequence[Any] | None = None,
    product_patterns: Sequence[Any] | None = None,
    agent: str | None = None,
    task: str | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> PopulatePlan:
    """Plan (and, unless ``dry_run``, create) one job per selected entity.

    Raises:
        NotFoundError: An unknown pipeline.
        InvalidRequestError: Bad parameters or index requests, or a bad batch size.
        ConflictError: A generated archive path held by a job of another identity.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidRequestError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
    first = selection.entities[0]
    template = jobs.plan(
        pipeline=pipeline,
        metadata={ID_FIELDS[selection.kind]: first.uuid},
        data=parameters,
        archive_patterns=archive_patterns,
        product_patterns=product_patterns,
        agent=agent,
        task=task,
    )
    found = jobs.pipelines.get(template.pipeline_uuid)
    planned: list[PlannedJob] = []
    entities = selection.entities
    for start in range(0, len(entities), batch_size):
        batch = [_for_entity(template, e) for e in entities[start : start + batch_size]]
        planned.extend(_batch(jobs, batch, entities[start : start + batch_size], dry_run))
    return PopulatePlan(
        pipeline=found,
        parameters=dict(template.data),
        selection=selection,
        jobs=tuple(planned),
        dry_run=dry_run,
    )


def _for_entity(template: JobPlan, entity: Entity) -> JobPlan:
    child_of = [entity.uuid]
    return replace(
        template,
        uuid=job_uuid(template.pipeline_uuid, child_of, template.data),
        child_of=child_of,
        archive_path=archive.archive_path(template.pipeline_uuid, child_of, template.data),
    )


def _batch(
    jobs: JobService, plans: list[JobPlan], entities: Sequence[Entity], dry_run: bool
) -> list[PlannedJob]:
    """One read of the batch's existing jobs, one insert of the missing ones."""
    store = jobs.store
    existing = _read(jobs, [p.uuid for p in plans])
    missing = [i for i, p in enumerate(plans) if p.uuid not in existing]
    created: set[int] = set()
    sizes: dict[int, int] = {}
    if missing and not dry_run:
        documents = [jobs.planner.document(plans[i]) for i in missing]
        sizes = {
            i: d["_properties"]["history_bytes"] for i, d in zip(missing, documents, strict=True)
        }
        taken = store.insert_many("job", documents)
        created = {missing[i] for i in range(len(missing))} - {missing[i] for i in taken}
        if taken:  # inserted meanwhile by someone else: read them
            existing.update(_read(jobs, [plans[missing[i]].uuid for i in taken]))
            unknown = [plans[missing[i]] for i in taken if plans[missing[i]].uuid not in existing]
            if unknown:
                raise ConflictError(
                    f"archive path {unknown[0].archive_path} on {unknown[0].archive_system} "
                    "already belongs to another job",
                    archive_path=unknown[0].archive_path,
                )
    out = []
    for i, (job_plan, entity) in enumerate(zip(plans, entities, strict=True)):
        doc = existing.get(job_plan.uuid)
        if i in created or doc is None:  # created now, or would be by a real run
            made = i in created
            out.append(
                PlannedJob(
                    entity=entity,
                    uuid=job_plan.uuid,
                    archive_path=job_plan.archive_path,
                    archive_system=job_plan.archive_system,
                    state="CREATED" if made else None,
                    history_bytes=sizes[i] if made else 0,
                    created=made,
                )
            )
            continue
        lease = doc.get("lease") or {}
        out.append(
            PlannedJob(
                entity=entity,
                uuid=job_plan.uuid,
                archive_path=doc["archive_path"],
                archive_system=doc["archive_system"],
                state=doc["state"],
                history_bytes=int(doc.get("_properties", {}).get("history_bytes", 0)),
                created=False,
                visible=bool(doc.get("_visible", True)),
                lease_holder=lease.get("holder"),
                lease_expires=lease.get("expires"),
            )
        )
    return out


def _read(jobs: JobService, uuids: list[str]) -> dict[str, Document]:
    docs = jobs.store.find("job", {"uuid": {"$in": uuids}}, projection=_FIELDS)
    return {d["uuid"]: d for d in docs}
