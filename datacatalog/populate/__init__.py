"""``populate``: run a pipeline on every selected entity whose job is missing or not done.

::

    report = populate(
        catalog,
        pipeline="demo-stats",
        metadata={"experiment_id": "experiment.demo.1"},
        level="measurement",
        command=["./analyze.sh", "{entity_id}"],     # or execute=fn (fn(task))
        executor="thread",                           # process, dask, dask=tcp://...
    )
    report.counts    # {"ran": 3, "up_to_date": 1}

Planning (:mod:`.planning`) makes one job per selected entity in a few batched round
trips; running (:mod:`.runner`) skips the jobs that are up to date and runs the rest
under their leases, on threads, processes or Dask (:mod:`.executors`), each job's work
a command or a callable (:mod:`.work`). Bad input is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from datacatalog.errors import InvalidRequestError
from datacatalog.populate.executors import Backend, ThreadBackend, parse_executor
from datacatalog.populate.planning import BATCH_SIZE, PlannedJob, PopulatePlan, plan
from datacatalog.populate.runner import (
    OUTCOMES,
    JobOutcome,
    PopulateReport,
    PopulateRun,
    check_options,
)
from datacatalog.populate.work import Command, Task, call_function, check_command, run_command
from datacatalog.populate.workflows import workflow_work
from datacatalog.selection import check_level, select

if TYPE_CHECKING:
    from datacatalog.catalog import Catalog
    from datacatalog.orchestrator.decorators import Workflow

__all__ = [
    "OUTCOMES",
    "Command",
    "JobOutcome",
    "PlannedJob",
    "PopulatePlan",
    "PopulateReport",
    "PopulateRun",
    "Task",
    "check_command",
    "populate",
]


def populate(
    catalog: Catalog,
    *,
    pipeline: str,
    metadata: Mapping[str, str | Sequence[str] | None],
    level: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    command: Sequence[str] | Command | None = None,
    execute: Callable[[Task], Any] | None = None,
    workflow: str | Workflow | None = None,
    workflow_inputs: Mapping[str, Any] | None = None,
    executor: str | Backend = "thread",
    workers: int | None = None,
    dry_run: bool = False,
    index: bool = True,
    retries: int = 0,
    timeout: float | None = None,
    if_stale: str = "error",
    max_failures: int | None = None,
    archive_patterns: Sequence[Any] | None = None,
    product_patterns: Sequence[Any] | None = None,
    agent: str | None = None,
    task: str | None = None,
    batch_size: int = BATCH_SIZE,
    on_plan: Callable[[PopulatePlan], None] | None = None,
    on_start: Callable[[PopulateRun], None] | None = None,
    on_outcome: Callable[[JobOutcome], None] | None = None,
) -> PopulateReport:
    """Plan one job per selected entity; run those not up to date; report each outcome.

    Args:
        catalog: The catalog.
        pipeline: The pipeline (id or UUID).
        metadata: The entities to select under, one kind (``{"experiment_id": "E"}``).
        level: The level selected below them (default: those entities).
        parameters: The jobs' parameters (their ``data``; part of their identity).
        command: A command line run for each job (see :mod:`datacatalog.populate.work`).
        execute: Or a callable, ``execute(task)`` (importable by name for processes/Dask).
        workflow: Or a workflow (a name, or a ``@workflow`` function), one execution per job.
        workflow_inputs: The workflow's inputs (the entity's are added when it declares them).
        executor: ``thread``, ``process``, ``dask``, ``dask=ADDRESS``, or a backend.
        workers: Jobs running at once (default: the cores; a Dask scheduler's threads).
        dry_run: Write nothing; report what would run, what is up to date, held or stale.
        index: Index each job's outputs after success.
        retries: Attempts after a failed one, per job.
        timeout: Seconds each job may take.
        if_stale: ``error``: count a job whose outputs changed as stale; ``rerun``: run it.
        max_failures: Start no new job after this many failed.
        archive_patterns: Index requests of the jobs' archives.
        product_patterns: Index requests of their products.
        agent: The agent recorded on new jobs.
        task: The task recorded on new jobs.
        batch_size: Entities planned per read-and-insert batch.
        on_plan: Called with the plan before anything runs (a progress bar's total).
        on_start: Called with the run before it starts (to stop it from a signal handler).
        on_outcome: Called with each job's outcome as it is known.

    Raises:
        InvalidRequestError: Bad input (named), before anything is written.
        NotFoundError: An unknown pipeline or metadata id.
        UnavailableError: A Dask scheduler that does not answer.
    """
    if workflow is not None and (command is not None or execute is not None):
        raise InvalidRequestError("give populate one of a command, a callable or a workflow")
    work, arguments, grace = _work(command, execute, dry_run=dry_run or workflow is not None)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidRequestError(f"retries must be a whole number >= 0, not {retries!r}")
    check_options(if_stale=if_stale, max_failures=max_failures)
    check_level(level)
    catalog.pipelines.get(pipeline)  # an unknown pipeline before anything else
    selection = select(catalog.store, level=level, metadata=catalog.metadata, **dict(metadata))
    flow = (
        None
        if workflow is None
        else workflow_work(catalog, workflow, workflow_inputs, selection.kind)
    )
    system = catalog.storage.get(None)
    if not system.is_local:
        raise InvalidRequestError(
            f"populate writes outputs to a local (or shared) directory; the default storage "
            f"system {system.name!r} is not local"
        )
    if dry_run:
        backend: Backend = ThreadBackend(workers or 4)
    elif isinstance(executor, Backend):
        backend = executor
    else:
        backend = parse_executor(executor, workers=workers)
    try:
        planned = plan(
            catalog.jobs,
            pipeline=pipeline,
            selection=selection,
            parameters=parameters,
            archive_patterns=archive_patterns,
            product_patterns=product_patterns,
            agent=agent,
            task=task,
            dry_run=dry_run,
            batch_size=batch_size,
        )
        if on_plan is not None:
            on_plan(planned)
        run = PopulateRun(
            catalog,
            planned,
            backend=backend,
            work=work,
            arguments=arguments,
            grace=grace,
            index=index,
            max_attempts=retries + 1,
            timeout=timeout,
            if_stale=if_stale,
            max_failures=max_failures,
            on_outcome=on_outcome,
            workflow=flow,
        )
        if on_start is not None:
            on_start(run)
        return run.run()
    finally:
        if backend is not executor:
            backend.close()


def _work(
    command: Sequence[str] | Command | None,
    execute: Callable[[Task], Any] | None,
    *,
    dry_run: bool,
) -> tuple[Callable[..., Any] | None, tuple[Any, ...], float]:
    if command is not None and execute is not None:
        raise InvalidRequestError("give populate a command or a callable (execute=), not both")
    if command is not None:
        spec = command if isinstance(command, Command) else Command(check_command(command))
        if isinstance(command, Command):
            check_command(command.argv)
        return run_command, (spec,), spec.grace
    if execute is not None:
        if not callable(execute):
            raise InvalidRequestError(f"execute must be callable, not {type(execute).__name__}")
        return call_function, (execute,), 0.0
    if not dry_run:
        raise InvalidRequestError(
            "populate needs a command, a callable (execute=) or a workflow to run"
        )
    return None, (), 0.0
