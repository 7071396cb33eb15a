"""``datacatalog workflows`` and ``datacatalog plugins``: run, watch, cancel and resume
workflow executions; install, list and validate plugins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from datacatalog.cli.context import App, pass_app
from datacatalog.cli.output import fields_panel, table, text
from datacatalog.cli.params import json_object
from datacatalog.errors import InvalidRequestError
from datacatalog.orchestrator import events
from datacatalog.orchestrator.decorators import Workflow
from datacatalog.orchestrator.executors import Executor, ProcessExecutor, ThreadExecutor
from datacatalog.orchestrator.model import Execution, TaskRecord
from datacatalog.orchestrator.plugin import PluginManager
from datacatalog.orchestrator.records import ExecutionRecords
from datacatalog.orchestrator.registry import declarations, resolve
from datacatalog.orchestrator.workflow_runner import (
    WorkflowRunner,
    request_cancel,
    workflow_parameters,
)

STATUS_STYLES = {
    "pending": "dim",
    "started": "cyan",
    "retrying": "yellow",
    "success": "green",
    "failed": "red",
    "succeeded": "green",
    "cancelling": "yellow",
    "cancelled": "magenta",
}


def _styled(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def parse_executor(spec: str, workers: int | None) -> Executor:
    """``thread``, ``process``, ``dask`` or ``dask=ADDRESS`` (``--workers`` sizes it)."""
    name, _, address = spec.partition("=")
    name = name.strip().lower()
    if name == "thread" and not address:
        return ThreadExecutor(pool_size=workers or 8)
    if name == "process" and not address:
        return ProcessExecutor(pool_size=workers or 4)
    if name == "dask":
        from datacatalog.orchestrator.executors.dask import DaskExecutor

        if address:
            return DaskExecutor(address=address, workers=workers)
        return DaskExecutor(workers=workers)
    raise InvalidRequestError(
        f"--executor {spec!r}: choose thread, process, dask or dask=ADDRESS", option="--executor"
    )


def parse_inputs(pairs: tuple[str, ...], *, text_only: set[str] | None = None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a VALUE that reads as JSON is taken as JSON, else as a string.

    The inputs named in ``text_only`` (annotated ``str``) always take VALUE as it is.
    """
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidRequestError(f"--input {pair!r}: expected KEY=VALUE", option="--input")
        if key.strip() in (text_only or set()):
            found[key.strip()] = value
            continue
        try:
            found[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            found[key.strip()] = value
    return found


def task_table(tasks: list[TaskRecord], title: str | None = "Tasks") -> Table:
    """The tasks of an execution: status, attempts, times, last error."""
    return table(
        title,
        ("task", "status", "attempts", "started", "ended", "error"),
        (
            (
                t.name,
                _styled(t.status),
                f"{t.attempts}/{'∞' if t.max_attempts == -1 else t.max_attempts}",
                t.started_at,
                t.ended_at,
                f"{t.error['type']}: {t.error['message']}" if t.error else "",
            )
            for t in tasks
        ),
        empty="no tasks",
    )


def _execution_fields(execution: Execution) -> dict[str, Any]:
    return {
        "status": _styled(execution.status),
        "workflow": execution.workflow_name,
        "job": execution.job_uuid,
        "executor": execution.executor,
        "inputs": json.dumps(execution.inputs),
        "created": execution.created_at,
        "started": execution.started_at,
        "ended": execution.ended_at,
        "resumes": execution.resumes,
        "error": f"{execution.error['type']}: {execution.error['message']} "
        f"(task {execution.error.get('task')})"
        if execution.error
        else None,
    }


@contextmanager
def live_tasks(app: App, runner: WorkflowRunner) -> Iterator[None]:
    """Show the runner's tasks live on stderr while the block runs (not with ``--json``)."""
    if app.json_mode:
        yield
        return

    def draw() -> Table:
        return task_table(runner.tasks, title=f"{runner.workflow_name} · {runner.execution_id}")

    with Live(draw(), console=app.out.err_console, refresh_per_second=8, transient=False) as live:

        def refresh(sender: Any, **_: Any) -> None:
            if sender is runner:
                live.update(draw())

        for signal in (*events.TASK_SIGNALS, *events.WORKFLOW_SIGNALS):
            signal.connect(refresh)
        try:
            yield
        finally:
            for signal in (*events.TASK_SIGNALS, *events.WORKFLOW_SIGNALS):
                signal.disconnect(refresh)
            live.update(draw())
    if not app.out.err_console.is_terminal:
        app.out.err_console.line()  # off a terminal, Rich ends the table without a newline


def _execute(app: App, runner: WorkflowRunner) -> None:
    """Run (showing the tasks live) and print the end; for an up-to-date job, say so."""
    if runner.up_to_date:
        runner.execute()  # records the check; nothing runs
        _up_to_date(app, runner)
        return
    app.out.note(
        f"execution {runner.execution_id} of {runner.workflow_name} on job "
        f"{runner.decision.job.uuid}"
        + ("" if runner.decision.event == "run" else f" ({runner.decision.message})")
    )
    with live_tasks(app, runner):
        runner.execute()
    _finish(app, runner)


def _up_to_date(app: App, runner: WorkflowRunner) -> None:
    decision = runner.decision
    execution = runner.execution

    def render(console: Console) -> None:
        console.print(decision.message)

    app.out.emit(
        {
            "up_to_date": True,
            "decision": decision.to_dict(),
            "execution": execution.to_dict() if execution is not None else None,
            "tasks": [t.to_dict() for t in runner.tasks],
        },
        render,
    )


def _finish(app: App, runner: WorkflowRunner) -> None:
    records = ExecutionRecords(app.catalog.store)
    assert runner.execution_id is not None  # it ran
    execution = records.execution(runner.execution_id)
    tasks = records.tasks(execution.id)

    report = runner.index_report

    def render(console: Console) -> None:
        console.print(Text.assemble(f"execution {execution.id} ", _styled(execution.status)))
        if report is not None:
            console.print(f"indexed {report.written} output file(s) of job {execution.job_uuid}")

    payload: dict[str, Any] = {
        "up_to_date": False,
        "decision": runner.decision.to_dict(),
        "execution": execution.to_dict(),
        "tasks": [t.to_dict() for t in tasks],
    }
    if report is not None:
        payload["index"] = report.to_dict()
    app.out.emit(payload, render)


@click.group()
def workflows() -> None:
    """Run workflows of operations on jobs, on threads, processes or a Dask cluster."""


@workflows.command("list")
@pass_app
def list_workflows(app: App) -> None:
    """List the declared workflows (registered, from plugins, from installed packages)."""
    found = declarations(PluginManager.default(app.catalog))

    def render(console: Console) -> None:
        console.print(
            table(
                "Workflows",
                ("name", "code", "declared by"),
                ((d.name, d.target, d.source) for d in found),
                empty="no workflows declared (install a plugin or a package)",
            )
        )

    app.out.emit(
        {"workflows": [{"name": d.name, "target": d.target, "source": d.source} for d in found]},
        render,
    )


CLI_MAX_ATTEMPTS = 3
"""Attempts in all per task on the command line (the API keeps ARIA's 30)."""
CLI_RETRY_INTERVAL = 5.0
"""Seconds between attempts on the command line (the API keeps ARIA's 30)."""


def _attempts(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value < 1 and value != -1:
        raise click.BadParameter("an integer of at least 1, or -1 (until it succeeds)")
    return value


@workflows.command("run")
@click.argument("name")
@click.option("--job", "job_uuid", metavar="UUID", help="Run on this existing job.")
@click.option("--pipeline", metavar="ID_OR_UUID", help="Create or attach the job of this pipeline.")
@click.option("--experiment-id", multiple=True, metavar="ID", help="Experiment id or UUID.")
@click.option("--sample-id", multiple=True, metavar="ID", help="Sample id or UUID.")
@click.option("--measurement-id", multiple=True, metavar="ID", help="Measurement id or UUID.")
@click.option(
    "--data", callback=json_object, metavar="JSON",
    help="More job parameters (JSON object) besides the workflow's name, version and inputs.",
)  # fmt: skip
@click.option(
    "--executor", "executor_spec", default="thread", show_default=True, metavar="SPEC",
    help="thread, process, dask (a local cluster) or dask=ADDRESS (an existing scheduler).",
)  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), help="Threads, processes or Dask workers.")
@click.option("--input", "inputs", multiple=True, metavar="KEY=VALUE", help="A workflow input.")
@click.option(
    "--max-attempts", default=CLI_MAX_ATTEMPTS, show_default=True, type=int, callback=_attempts,
    help="Attempts in all per task (-1: until it succeeds).",
)  # fmt: skip
@click.option(
    "--retry-interval", default=CLI_RETRY_INTERVAL, show_default=True,
    type=click.FloatRange(min=0), help="Seconds between attempts.",
)  # fmt: skip
@click.option(
    "--index/--no-index", default=True, show_default=True,
    help="Index what the workflow wrote to the archive directory when it succeeds.",
)  # fmt: skip
@click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), metavar="S",
    help="Seconds the execution may run; past them it stops and fails (reason timeout).",
)  # fmt: skip
@click.option(
    "--force", is_flag=True,
    help="Run again even when the job is up to date (a new execution; earlier file records "
    "are superseded).",
)  # fmt: skip
@click.option(
    "--rerun-stale", is_flag=True,
    help="Run again when the job ran but its outputs are missing or changed (else an error "
    "naming them).",
)  # fmt: skip
@pass_app
def run(
    app: App,
    name: str,
    job_uuid: str | None,
    pipeline: str | None,
    experiment_id: tuple[str, ...],
    sample_id: tuple[str, ...],
    measurement_id: tuple[str, ...],
    data: dict[str, Any] | None,
    executor_spec: str,
    workers: int | None,
    inputs: tuple[str, ...],
    max_attempts: int,
    retry_interval: float,
    index: bool,
    timeout: float | None,
    force: bool,
    rerun_stale: bool,
) -> None:
    """Run workflow NAME on a job (--job, or --pipeline with metadata ids).

    With --pipeline, the job's parameters are the workflow (name, version and inputs,
    defaults included) and --data: another input makes another job. A job that finished
    and whose indexed outputs verify is up to date: nothing runs (exit 0). A failed or
    cancelled one runs again as a new execution.
    """
    catalog = app.catalog
    if (job_uuid is None) == (pipeline is None):
        raise InvalidRequestError("give either --job UUID or --pipeline with metadata ids")
    if job_uuid is not None and data is not None:
        raise InvalidRequestError("--data describes a new job (with --pipeline), not --job")
    executor = parse_executor(executor_spec, workers)
    plugin_manager = PluginManager.default(catalog)
    _, found = resolve(name, plugin_manager)
    given = parse_inputs(inputs, text_only=_text_inputs(found))
    # Checked before the job exists: a refused input writes nothing.
    identity = workflow_parameters(name, given, plugin_manager)
    if job_uuid is None:
        extra = dict(data or {})
        if "workflow" in extra:
            raise InvalidRequestError(
                "--data: 'workflow' is the workflow's own parameter (name, version, inputs)",
                option="--data",
            )
        plan = catalog.jobs.plan(
            pipeline=str(pipeline),
            metadata={
                "experiment_id": list(experiment_id) or None,
                "sample_id": list(sample_id) or None,
                "measurement_id": list(measurement_id) or None,
            },
            data={**extra, "workflow": identity},
        )
        job_uuid = catalog.jobs.create(plan)[0].uuid
    runner = WorkflowRunner(
        catalog, None, plugin_manager, service_id=job_uuid, workflow_name=name,
        inputs=given, executor=executor, task_max_attempts=max_attempts,
        task_retry_interval=retry_interval, index_outputs=index, force=force,
        if_stale="rerun" if rerun_stale else "error", stage_timeout=timeout,
    )  # fmt: skip
    _execute(app, runner)


def _text_inputs(found: Workflow) -> set[str]:
    """The inputs annotated ``str`` alone: their ``--input`` values stay text."""
    return {name for name, kinds in found.input_kinds().items() if kinds == (str,)}


@workflows.command("show")
@click.argument("execution_id")
@click.option(
    "--logs", default=20, show_default=True, type=click.IntRange(min=0), help="Last N log records."
)
@pass_app
def show(app: App, execution_id: str, logs: int) -> None:
    """Show an execution: its tasks, attempts, times, errors and last log records."""
    records = ExecutionRecords(app.catalog.store)
    execution = records.execution(execution_id)
    tasks = records.tasks(execution.id)
    log = records.logs(execution.id, limit=0)[-logs:] if logs else []

    def render(console: Console) -> None:
        console.print(fields_panel(f"execution {execution.id}", _execution_fields(execution)))
        console.print(task_table(tasks))
        if log:
            console.print(
                table(
                    "Log",
                    ("date", "level", "task", "message"),
                    ((r["date"], r["level"], r.get("task") or "", r["message"]) for r in log),
                )
            )

    app.out.emit(
        {"execution": execution.to_dict(), "tasks": [t.to_dict() for t in tasks], "logs": log},
        render,
    )


@workflows.command("cancel")
@click.argument("execution_id")
@pass_app
def cancel(app: App, execution_id: str) -> None:
    """Ask a running execution to cancel (from any terminal): no new task starts."""
    execution, new = request_cancel(app.catalog, execution_id)

    def render(console: Console) -> None:
        if new:
            console.print(f"cancel requested for execution {execution.id} ({execution.status})")
        else:
            console.print(
                f"execution {execution.id} is {execution.status}"
                + (": cancel was requested already" if execution.cancel_requested else "")
            )

    app.out.emit({"execution": execution.to_dict(), "requested": new}, render)


@workflows.command("resume")
@click.argument("execution_id")
@click.option(
    "--retry-failed/--keep-failed", default=True, show_default=True,
    help="Run the failed tasks again too (--keep-failed: only the tasks that never ran or "
    "were cut short; a failed execution then does not resume).",
)  # fmt: skip
@click.option("--executor", "executor_spec", default="thread", show_default=True, metavar="SPEC")
@click.option("--workers", type=click.IntRange(min=1))
@click.option(
    "--index/--no-index", default=True, show_default=True,
    help="Index what the workflow wrote to the archive directory when it succeeds.",
)  # fmt: skip
@pass_app
def resume(
    app: App,
    execution_id: str,
    retry_failed: bool,
    executor_spec: str,
    workers: int | None,
    index: bool,
) -> None:
    """Resume a failed or cancelled execution on its job: the tasks that succeeded are kept
    with their outputs, the others run. No administrator is needed."""
    runner = WorkflowRunner(
        app.catalog, None, PluginManager.default(app.catalog), execution_id=execution_id,
        executor=parse_executor(executor_spec, workers), retry_failed=retry_failed,
        index_outputs=index,
    )  # fmt: skip
    _execute(app, runner)


@click.group()
def plugins() -> None:
    """Install, list and validate workflow plugins (wagons)."""


@plugins.command("install")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def install(app: App, source: Path) -> None:
    """Install the wagon SOURCE (.zip or .wgn)."""
    plugin = PluginManager.default(app.catalog).install(source)

    def render(console: Console) -> None:
        console.print(f"[green]installed[/green] plugin {plugin.key} in {text(plugin.directory)}")
        for name in plugin.workflows:
            console.print(f"  workflow {name}")

    app.out.emit({"plugin": plugin.to_dict()}, render)


@plugins.command("list")
@pass_app
def list_plugins(app: App) -> None:
    """List the installed plugins and the workflows they declare."""
    found = PluginManager.default(app.catalog).plugins()

    def render(console: Console) -> None:
        console.print(
            table(
                "Plugins",
                ("name", "version", "workflows", "directory", "installed"),
                (
                    (
                        p.package_name,
                        p.package_version,
                        ", ".join(p.workflows),
                        p.directory,
                        p.installed_at,
                    )
                    for p in found
                ),
                empty="no plugins installed",
            )
        )

    app.out.emit({"plugins": [p.to_dict() for p in found]}, render)


@plugins.command("validate")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def validate(app: App, source: Path) -> None:
    """Check that SOURCE is a valid wagon; installs nothing."""
    meta = PluginManager.validate_plugin(source)
    payload = {
        "valid": True,
        "package_name": meta.package_name,
        "package_version": meta.package_version,
        "wheels": list(meta.wheels),
    }

    def render(console: Console) -> None:
        console.print(f"[green]valid[/green] wagon {meta.package_name} {meta.package_version}")

    app.out.emit(payload, render)
