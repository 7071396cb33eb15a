"""A workflow runner on the thread executor for tests: a fake clock, no retry wait."""

from __future__ import annotations

import uuid
from typing import Any

from datacatalog.orchestrator.executors import ThreadExecutor
from datacatalog.orchestrator.plugin import PluginManager
from datacatalog.orchestrator.workflow_runner import WorkflowRunner
from tests.support.clocks import FakeClock
from tests.support.jobs import World


def runner(
    world: World, workflow: Any, clock: FakeClock | None = None, job: Any = None, **options: Any
) -> WorkflowRunner:
    job = job or world.new_job({"n": uuid.uuid4().hex})
    options.setdefault("executor", ThreadExecutor(pool_size=4))
    options.setdefault("task_retry_interval", 0)
    return WorkflowRunner(
        world.catalog,
        None,
        PluginManager(world.catalog, world.data_dir / "plugins"),
        service_id=job.uuid,
        workflow_name=workflow,
        clock=clock or FakeClock(),
        cancel_poll_interval=0.05,
        **options,
    )
