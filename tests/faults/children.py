"""What the runner fault tests start in a child process and kill mid-run.

``python -m tests.faults.children driver|workflow URI DATA_DIR JOB TTL MARKER``: opens the
catalog on ``URI`` and runs the job under a :class:`~datacatalog.driver.Driver` or a
:class:`~datacatalog.orchestrator.workflow_runner.WorkflowRunner` with a lease of ``TTL``
seconds. The work writes half of an output file, then creates ``MARKER`` (the parent kills
the child once it exists) and blocks until it is killed.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from datacatalog.catalog import Catalog
from datacatalog.driver import Driver
from datacatalog.orchestrator.decorators import operation, workflow
from datacatalog.orchestrator.executors import ThreadExecutor
from datacatalog.orchestrator.graph import TaskGraph
from datacatalog.orchestrator.workflow_runner import WorkflowRunner
from datacatalog.settings import Settings
from tests.faults.harness import SECRET

DATABASE = "faults"
DB_TIMEOUT = 1.5


def settings_for(data_dir: Path) -> Settings:
    """The settings the parent and its children share (same secret, same timeout)."""
    return Settings.load(env={}, data_dir=data_dir, secret=SECRET, mongodb_timeout=DB_TIMEOUT)


def half_write_then_block(directory: Path, marker: Path) -> None:
    """Start an output the run never finishes, say so through ``marker``, never return."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "partial.dat").write_bytes(b"half")
    marker.write_text("executing")
    threading.Event().wait()


@operation(toolbelt=True)
def stuck(ctx: Any, toolbelt: Any, marker: str) -> None:
    """A task the test kills its runner in the middle of."""
    half_write_then_block(toolbelt.output_path("."), Path(marker))


@workflow
def stuck_workflow(ctx: Any, graph: TaskGraph, marker: str) -> None:
    """One task that blocks until its runner is killed."""
    graph.add(stuck, marker=marker)


def main(argv: list[str]) -> None:
    kind, uri, data_dir, job, ttl, marker = argv
    catalog = Catalog.open(uri, settings=settings_for(Path(data_dir)), database=DATABASE)
    if kind == "driver":
        driver = Driver(
            job,
            catalog=catalog,
            lease_ttl=float(ttl),
            execute=lambda _driver, payload: half_write_then_block(
                Path(payload.output_entries[0].path), Path(marker)
            ),
        )
        driver.start()
        driver.wait_for_completion()
    elif kind == "workflow":
        runner = WorkflowRunner(
            catalog,
            None,
            None,
            service_id=job,
            workflow_name=stuck_workflow,
            inputs={"marker": marker},
            executor=ThreadExecutor(pool_size=1),
            lease_ttl=float(ttl),
        )
        runner.execute()
    else:
        raise SystemExit(f"unknown kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
