"""A workflow as a populate's work: one execution of it per job, by the workflow runner.

The workflow is resolved (and its inputs checked) once, before anything is written. Each
job then gets a :class:`~datacatalog.orchestrator.workflow_runner.WorkflowRunner` whose
tasks run on the populate's executor (threads, processes, or the same Dask cluster). The
runner takes the job's lease and posts its events itself; the populate takes that lease
first for the runner's execution id and reads the job under it, as it does for a driver,
so a job handled elsewhere meanwhile is not run again.

A workflow that declares ``entity_kind``, ``entity_id`` or ``entity_uuid`` among its
inputs (or takes any input) is given the job's entity under those names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datacatalog.errors import InvalidRequestError

if TYPE_CHECKING:
    from datacatalog.catalog import Catalog
    from datacatalog.orchestrator.decorators import Workflow
    from datacatalog.selection import Entity

ENTITY_INPUTS = ("entity_kind", "entity_id", "entity_uuid")


@dataclass(frozen=True)
class WorkflowWork:
    """The workflow each job runs, its name as recorded, and the inputs it is given."""

    name: str
    workflow: Workflow
    inputs: dict[str, Any]

    def inputs_for(self, kind: str, entity: Entity) -> dict[str, Any]:
        """The inputs of one job's execution: the given ones and the entity's it declares."""
        values = {"entity_kind": kind, "entity_id": entity.id, "entity_uuid": entity.uuid}
        declared = set(self.workflow.parameters())
        takes_any = self.workflow.accepts_any_input()
        extra = {k: v for k, v in values.items() if takes_any or k in declared}
        return {**self.inputs, **extra}


def workflow_work(
    catalog: Catalog, workflow: str | Workflow, inputs: Mapping[str, Any] | None, kind: str
) -> WorkflowWork:
    """Resolve ``workflow`` and check its inputs (with an entity's), writing nothing.

    Raises:
        UndeclaredWorkflowError: Nothing declares it.
        InvalidRequestError: Inputs it does not take, or required ones missing.
    """
    from datacatalog.orchestrator.plugin import PluginManager
    from datacatalog.orchestrator.registry import resolve
    from datacatalog.selection import Entity

    name, found = resolve(workflow, PluginManager.default(catalog))
    work = WorkflowWork(name, found, dict(inputs or {}))
    problems = found.check_inputs(work.inputs_for(kind, Entity("", "")))
    if problems:
        raise InvalidRequestError(f"workflow {name}: {'; '.join(problems)}", workflow=name)
    return work
