"""The ``datacatalog`` command: global options, the command groups, ``serve`` and ``demo``.

The command line only parses arguments, calls the catalog's services and maps the
outcome to output and an exit code; it holds no logic of its own. Every command
accepts the global options::

    datacatalog [--mongodb-uri URI] [--database NAME] [--data-dir DIR] [--json] COMMAND

and ``--json`` may also follow the command (``datacatalog jobs list --json``).

With no MongoDB URI (neither ``--mongodb-uri`` nor ``DATACATALOG_MONGODB_URI``) the
embedded local catalog under the data dir is used, so the command works with zero
configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.tree import Tree

from datacatalog import __version__, states
from datacatalog.cli.admin import admin
from datacatalog.cli.context import App, pass_app
from datacatalog.cli.jobs import files_table, history_tree, job_panel, jobs, relative_name
from datacatalog.cli.lineage import export, lineage
from datacatalog.cli.local import local
from datacatalog.cli.metadata import metadata
from datacatalog.cli.output import fields_panel, report_error, text
from datacatalog.cli.pipelines import pipelines
from datacatalog.cli.provenance import provenance
from datacatalog.cli.run import run as run_command
from datacatalog.cli.ui import ui
from datacatalog.cli.workflows import plugins, workflows
from datacatalog.errors import InvalidRequestError

if TYPE_CHECKING:
    from datacatalog.demo import DemoResult


class CatalogGroup(click.Group):
    """The root group: reports every error in one place, with its exit code.

    With ``--json``, usage errors (an unknown option, a missing argument, a value
    outside its choices) are reported like any other error, as one line on stderr
    and an ``invalid_request`` error body on stdout; without it, click prints them
    with the usage line. Either way they exit 2.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse the global options (a usage error there is reported as JSON too)."""
        given = list(args)  # parsing consumes ``args``
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if _asks_for_json(given):
                raise click.exceptions.Exit(_report_usage_error(exc)) from None
            raise
        ctx.meta[_ARGS] = given
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; turn any error into one line and the table's exit code."""
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if _json_mode(ctx) or _asks_for_json(ctx.meta.get(_ARGS, [])):
                ctx.exit(_report_usage_error(exc))
            raise
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            # Library errors carry their category; anything else (a file system error,
            # a bug) is still one line and exit code 1, never a traceback.
            ctx.exit(report_error(exc, json_mode=_json_mode(ctx)))


_ARGS = "datacatalog.args"
"""Key of the command line's arguments in the root context's ``meta``."""


def _asks_for_json(args: list[str]) -> bool:
    """True when ``--json`` is among the options (before a ``--``)."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


def _report_usage_error(exc: click.UsageError) -> int:
    where = exc.ctx.command_path if exc.ctx is not None else "datacatalog"
    error = InvalidRequestError(f"{where}: {exc.format_message()}")
    report_error(error, json_mode=True)
    return exc.exit_code


def _json_mode(ctx: click.Context) -> bool:
    app = ctx.find_object(App)
    if app is not None:
        return app.json_mode
    return bool(ctx.params.get("json_mode", False))


@click.group(cls=CatalogGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--mongodb-uri",
    metavar="URI",
    help="MongoDB URI (default: DATACATALOG_MONGODB_URI, else the embedded local catalog).",
)
@click.option(
    "--database",
    metavar="NAME",
    help="MongoDB database name (default: DATACATALOG_MONGODB_DATABASE, else 'catalog').",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data dir: embedded catalog, local archive, secret (default: DATACATALOG_DATA_DIR).",
)
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document on stdout.")
@click.version_option(__version__, "--version", prog_name="datacatalog")
@click.pass_context
def cli(
    ctx: click.Context,
    mongodb_uri: str | None,
    database: str | None,
    data_dir: Path | None,
    json_mode: bool,
) -> None:
    """Provenance-tracking pipeline job manager backed by MongoDB."""
    app = App(json_mode=json_mode, mongodb_uri=mongodb_uri, database=database, data_dir=data_dir)
    ctx.obj = app
    ctx.call_on_close(app.close)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8750, show_default=True, type=click.IntRange(1, 65535))
@pass_app
def serve(app: App, host: str, port: int) -> None:
    """Run the HTTP webhook service on this catalog."""
    settings = app.settings
    try:
        from datacatalog.service import serve as run_service
    except ImportError as exc:
        raise InvalidRequestError(f"the HTTP service cannot start: {exc}") from exc
    run_service(settings, host=host, port=port)


@cli.command()
@pass_app
def demo(app: App) -> None:
    """Run the end-to-end demonstration on this catalog (zero configuration works).

    Registers the example pipeline and metadata, creates a job for one sample, runs
    a small computation into the job's archive path, indexes the outputs with sha256
    and prints the job, its history and each file's provenance. Running it again
    finds the same job.
    """
    from datacatalog import demo as demo_module

    result = demo_module.run(app.catalog, progress=app.out.note)
    app.out.emit(result.to_dict(), lambda console: render_demo(result, console))


def render_demo(result: DemoResult, console: Console) -> None:
    """Print the demo's job, history, files and provenance."""
    job = result.job
    if result.job_created:
        console.print(f"[green]created[/green] job {job.uuid}")
    else:
        console.print(f"[yellow]found the existing job[/yellow] {job.uuid}: nothing duplicated")
    console.print(job_panel(job, states.allowed_events(job.state)))
    console.print(
        fields_panel(
            "archive", {"system": job.archive_system, "path": job.archive_path}, style="magenta"
        )
    )
    console.print(history_tree(job, result.history))
    console.print(files_table(job, result.files))
    tree = Tree("[bold]provenance[/bold]")
    for name, chain in result.provenance.items():
        branch = tree.add(f"[cyan]{text(relative_name(job, name))}[/cyan]")
        for step in chain[1:]:
            kind = "job" if step.kind == "pipelinejob" else step.kind.replace("_", " ")
            branch = branch.add(f"{kind} [bold]{text(step.label)}[/bold]  {step.uuid}")
    console.print(tree)


for _group in (
    pipelines,
    metadata,
    jobs,
    admin,
    provenance,
    lineage,
    export,
    ui,
    workflows,
    plugins,
    local,
):
    cli.add_command(_group)
cli.add_command(run_command)


def _json_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        app = ctx.find_object(App)
        if app is not None:
            app.out.json_mode = True


def _accept_json_after_the_command(group: click.Group) -> None:
    """Give every command a ``--json`` of its own, the same as the global option.

    ``datacatalog jobs list --json`` then works as ``datacatalog --json jobs list``
    does. The flag is eager, so an error in a later option is already reported as JSON.
    """
    for command in group.commands.values():
        command.params.append(
            click.Option(
                ["--json"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_json_flag,
                help="Print one JSON document on stdout (as the global --json).",
            )
        )
        if isinstance(command, click.Group):
            _accept_json_after_the_command(command)


_accept_json_after_the_command(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``datacatalog`` console script."""
    cli.main(args=argv, prog_name="datacatalog")
