"""``datacatalog populate``: run a pipeline on every selected entity that still needs it.

::

    datacatalog populate --pipeline P --experiment-id E --level measurement [--data JSON]
        [--executor thread|process|dask|dask=tcp://HOST:PORT] [--workers N]
        [--dry-run] [--max-failures N] [--rerun-stale] [--retries N] [--timeout S]
        [--index/--no-index] [--grace S]
    (-- COMMAND ARGS... | --callable MODULE:FUNCTION | --workflow NAME [--input KEY=VALUE]...)

One job per selected entity (created in batches when missing); the jobs that are up to
date (their indexed outputs verify by SHA-256) are skipped, the others run COMMAND (or
the callable) under their lease, so two populates at once run each job once between
them. A progress bar on a terminal; the end is a table of counts (ran, up to date,
failed, held elsewhere, stale ...), or one JSON document with ``--json``. Exit status: 0
when nothing failed, 1 when a job failed (or ``--max-failures`` stopped it), 128 + N
when signal N (SIGINT, SIGTERM) stopped it: running jobs then fail with reason
``cancelled`` and their leases are released.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from datacatalog.cli.context import App, runs_command_line, stopped_by_signals
from datacatalog.cli.coverage import STATE_STYLES, metadata_arguments, selection_options
from datacatalog.cli.params import json_object
from datacatalog.errors import InvalidRequestError

if TYPE_CHECKING:
    from rich.console import Console

    from datacatalog.populate import (
        Command,
        JobOutcome,
        PopulatePlan,
        PopulateReport,
        PopulateRun,
    )

EXIT_FAILED = 1
"""Exit status when a job failed, or ``--max-failures`` stopped the populate."""

LABELS = {
    "ran": "ran",
    "up_to_date": "up to date",
    "failed": "failed",
    "held": "held elsewhere",
    "stale": "stale",
    "refused": "refused",
    "cancelled": "cancelled",
    "not_started": "not started",
    "would_run": "would run",
}
STYLES = {
    "ran": "green",
    "up_to_date": "green",
    "failed": "red",
    "cancelled": "red",
    "held": "yellow",
    "stale": "yellow",
    "refused": "magenta",
    "not_started": "dim",
    "would_run": "cyan",
}
MAX_LISTED = 50  # jobs listed under the counts (failed, stale, refused, held)


@click.command("populate", context_settings={"ignore_unknown_options": True})
@click.option("--pipeline", required=True, metavar="ID_OR_UUID", help="The pipeline to run.")
@selection_options
@click.option("--data", callback=json_object, metavar="JSON", help="Job parameters (JSON object).")
@click.option(
    "--executor",
    "executor_spec",
    default="thread",
    show_default=True,
    metavar="SPEC",
    help="thread, process, dask (a local cluster) or dask=tcp://HOST:PORT.",
)
@click.option("--workers", type=click.IntRange(min=1), help="Jobs at once (default: the cores).")
@click.option("--dry-run", is_flag=True, help="Write nothing: say what would run.")
@click.option("--max-failures", type=click.IntRange(min=1), help="Start no job after N failed.")
@click.option("--rerun-stale", is_flag=True, help="Run jobs whose outputs changed again.")
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per job.")
@click.option(
    "--index/--no-index", default=True, show_default=True, help="Index each job's outputs."
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL when a command is stopped.",
)
@click.option(
    "--callable", "callable_name", metavar="MODULE:FUNCTION", help="Run FUNCTION(task) instead."
)
@click.option("--workflow", metavar="NAME", help="Run workflow NAME on each job instead.")
@click.option("--input", "inputs", multiple=True, metavar="KEY=VALUE", help="A workflow input.")
@click.option(
    "--dask-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a Dask scheduler.",
)
@runs_command_line
def populate(
    ctx: click.Context,
    app: App,
    /,
    pipeline: str,
    level: str | None,
    data: dict[str, Any] | None,
    executor_spec: str,
    workers: int | None,
    dry_run: bool,
    max_failures: int | None,
    rerun_stale: bool,
    retries: int,
    timeout: float | None,
    index: bool,
    grace: float,
    callable_name: str | None,
    workflow: str | None,
    inputs: tuple[str, ...],
    dask_timeout: float,
    command: tuple[str, ...],
    **ids: tuple[str, ...],
) -> None:
    """Run PIPELINE on every selected entity whose job is missing, failed or not done.

    Select entities with one kind of id (repeat it for a list) and the level below
    them (--experiment-id E --level measurement). COMMAND (after --) runs once per
    job, with the job and its entity in its environment (DATACATALOG_JOB_UUID,
    DATACATALOG_ARCHIVE_PATH, DATACATALOG_ENTITY_ID ...) and {entity_id} in its
    arguments replaced. Jobs that are up to date are skipped; failed ones run again.
    """
    from datacatalog.populate import populate as run_populate
    from datacatalog.populate.executors import parse_executor

    argv = list(command[1:] if command[:1] == ("--",) else command)
    spec, execute = _what_runs(
        app,
        argv,
        callable_name=callable_name,
        workflow=workflow,
        inputs=inputs,
        dry_run=dry_run,
        grace=grace,
    )
    catalog = app.catalog
    interrupted: list[int] = []
    run_box: list[PopulateRun] = []
    progress = _Progress(app)

    def started(run: PopulateRun) -> None:
        run_box.append(run)
        if interrupted:
            run.stop(signal.Signals(interrupted[0]).name)

    def stop(signum: int) -> None:
        interrupted.append(signum)
        if run_box:
            run_box[0].stop(signal.Signals(signum).name)

    backend = None
    if not dry_run:
        # Made here, before planning: an unreachable scheduler is refused with nothing written.
        backend = parse_executor(executor_spec, workers=workers, timeout=dask_timeout)
    try:
        with stopped_by_signals(stop), progress:
            report = run_populate(
                catalog,
                pipeline=pipeline,
                metadata=metadata_arguments(ids),
                level=level,
                parameters=data,
                command=spec,
                execute=execute,
                workflow=workflow,
                workflow_inputs=_inputs(inputs) if inputs else None,
                executor=backend if backend is not None else "thread",
                workers=workers,
                dry_run=dry_run,
                index=index,
                retries=retries,
                timeout=timeout,
                if_stale="rerun" if rerun_stale else "error",
                max_failures=max_failures,
                on_plan=progress.planned,
                on_start=started,
                on_outcome=progress.advance,
            )
    finally:
        if backend is not None:
            backend.close()
    app.out.emit(report.to_dict(), lambda console: render(console, report))
    if interrupted:
        ctx.exit(128 + interrupted[0])
    ctx.exit(EXIT_FAILED if report.failed else 0)


def _inputs(pairs: tuple[str, ...]) -> dict[str, Any]:
    from datacatalog.cli.workflows import parse_inputs

    return parse_inputs(pairs)


def _what_runs(
    app: App,
    argv: list[str],
    *,
    callable_name: str | None,
    workflow: str | None,
    inputs: tuple[str, ...],
    dry_run: bool,
    grace: float,
) -> tuple[Command | None, Callable[..., Any] | None]:
    """The command or the callable each job runs (neither: a workflow, or a dry run
    without a command), once the options agree."""
    from datacatalog.populate import Command, check_command

    if sum(map(bool, (argv, callable_name, workflow))) > 1:
        raise InvalidRequestError("give one of a COMMAND after --, --callable or --workflow")
    if inputs and workflow is None:
        raise InvalidRequestError("--input gives a workflow's inputs: use it with --workflow")
    execute = _import(callable_name) if callable_name is not None else None
    if argv or (execute is None and workflow is None and not dry_run):
        return Command(check_command(argv), env=app.catalog_env(), grace=grace), execute
    return None, execute


def _import(name: str) -> Callable[..., Any]:
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise InvalidRequestError(f"--callable {name!r}: give MODULE:FUNCTION")
    try:
        module = importlib.import_module(module_name)
        found = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise InvalidRequestError(f"--callable {name!r}: {exc}") from exc
    if not callable(found):
        raise InvalidRequestError(f"--callable {name!r} is not callable")
    return found  # type: ignore[no-any-return]


class _Progress:
    """A rich progress bar on stderr when it is a terminal (and not ``--json``)."""

    def __init__(self, app: App) -> None:
        self.enabled = not app.json_mode and sys.stderr.isatty()
        self.app = app
        self._bar: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def planned(self, plan: PopulatePlan) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.app.out.err_console,
            transient=True,
        )
        verb = "checking" if plan.dry_run else "populating"
        self._task = self._bar.add_task(
            f"{verb} {plan.pipeline.id} on {len(plan.jobs)} {plan.selection.kind}(s)",
            total=len(plan.jobs),
        )
        self._bar.start()

    def advance(self, outcome: JobOutcome) -> None:
        if self._bar is None:
            return
        with self._lock:
            self._bar.advance(self._task)


def render(console: Console, report: PopulateReport) -> None:
    """The counts, then the jobs that did not run to success (up to a bound)."""
    title = "Dry run of" if report.dry_run else "Populated"
    console.print(
        f"{title} {escape(report.pipeline_id)} on {len(report.outcomes)} "
        f"{report.level}(s), {escape(report.executor)}"
    )
    counts = Table()
    counts.add_column("outcome")
    counts.add_column("jobs", justify="right")
    for name, n in report.counts.items():
        style = STYLES.get(name, "white")
        counts.add_row(f"[{style}]{LABELS[name]}[/{style}]", str(n))
    if report.stopped:
        counts.caption = f"stopped: {escape(report.stopped)}"
    console.print(counts)
    notable = [o for o in report.outcomes if o.outcome not in ("ran", "up_to_date", "would_run")]
    if not notable:
        return
    console.print("Jobs to look at")
    listed = Table()
    for name in ("entity", "job", "outcome", "state", "why"):
        listed.add_column(name, overflow="fold")
    for item in notable[:MAX_LISTED]:
        state = item.state or "-"
        listed.add_row(
            escape(item.entity.id),
            item.job,
            LABELS[item.outcome],
            f"[{STATE_STYLES.get(state, 'white')}]{escape(state)}[/]",
            escape(item.message or item.reason or ""),
        )
    if len(notable) > MAX_LISTED:
        listed.caption = f"{len(notable) - MAX_LISTED} more (--json lists every job)"
    console.print(listed)
