"""The ``datacatalog`` command: global options, the command groups, ``serve`` and ``demo``.

The command line only parses arguments, calls the catalog's services and maps the
outcome to output and an exit code; it holds no logic of its own. Every command
accepts the global options::

    datacatalog [--mongodb-uri URI] [--database NAME] [--data-dir DIR] [--json] COMMAND

and ``--json`` may also follow the command (``datacatalog jobs list --json``).

With no MongoDB URI (neither ``--mongodb-uri`` nor ``DATACATALOG_MONGODB_URI``) the
catalog is the managed local server of the data dir (``local://<data dir>``: a
``mongod`` the command starts, or attaches to, under ``<data dir>/mongo``), so the
command works with zero configuration. Only where no usable ``mongod`` binary exists and
that server never held data, or with ``DATACATALOG_LOCAL_ENGINE=json``, is it the JSON
file ``<data dir>/catalog.json`` (docs/local-catalog.md).

Start-up stays fast because nothing heavy is imported until a command needs it:

* command groups are registered by *name* in :data:`COMMANDS` (module, attribute and
  the one-line help ``--help`` shows), and their module is imported only when the
  command runs (:class:`CatalogGroup` loads it in ``get_command``); ``datacatalog
  --help`` imports none of them;
* a command imports the modules only it uses inside its function: the service stack
  (FastAPI, uvicorn) in ``serve``, the demo in ``demo``, ``prov`` in the provenance
  exports;
* :class:`~datacatalog.cli.context.App` opens the catalog (and so imports the store and
  pymongo) on first use.

A new command group follows the same pattern: add its entry to :data:`COMMANDS`, keep
its module's top-level imports to click, rich and light catalog modules, and import
the rest inside the command. ``tests/cli/test_cli_imports.py`` fails when ``import
datacatalog.cli`` pulls in FastAPI, uvicorn, prov, pymongo, fsspec or jsonschema.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from datacatalog import __version__
from datacatalog.cli.context import App, pass_app
from datacatalog.cli.output import report_error
from datacatalog.errors import InvalidRequestError

if TYPE_CHECKING:
    from rich.console import Console

    from datacatalog.demo import DemoResult


@dataclass(frozen=True)
class LazyCommand:
    """A command group known by name, imported from ``module`` when it is used."""

    module: str
    attribute: str
    help: str


COMMANDS: dict[str, LazyCommand] = {
    "admin": LazyCommand(
        "datacatalog.cli.admin", "admin", "Administrative actions (they need an admin token)."
    ),
    "jobs": LazyCommand("datacatalog.cli.jobs", "jobs", "Create, inspect, drive and index jobs."),
    "metadata": LazyCommand(
        "datacatalog.cli.metadata", "metadata", "Load the metadata jobs are computed from."
    ),
    "pipelines": LazyCommand(
        "datacatalog.cli.pipelines", "pipelines", "Register and inspect pipelines."
    ),
    "provenance": LazyCommand(
        "datacatalog.cli.provenance", "provenance", "Trace files to the computations behind them."
    ),
    "lineage": LazyCommand(
        "datacatalog.cli.lineage",
        "lineage",
        "The lineage graph of ID (any catalogued UUID, or a file's catalog path).",
    ),
    "export": LazyCommand(
        "datacatalog.cli.lineage",
        "export",
        "Export JOB as PROV-JSON, OpenLineage run events or a Process Run RO-Crate.",
    ),
    "run": LazyCommand(
        "datacatalog.cli.run", "run", "Run COMMAND (after --) as the execute step of a managed job."
    ),
    "populate": LazyCommand(
        "datacatalog.cli.populate",
        "populate",
        "Run PIPELINE on every selected entity whose job is missing, failed or not done.",
    ),
    "coverage": LazyCommand(
        "datacatalog.cli.coverage",
        "coverage",
        "Which selected entities have a job of PIPELINE (or of any), and in which state.",
    ),
    "workflows": LazyCommand(
        "datacatalog.cli.workflows",
        "workflows",
        "Run workflows of operations on jobs, on threads, processes or a Dask cluster.",
    ),
    "plugins": LazyCommand(
        "datacatalog.cli.workflows",
        "plugins",
        "Install, list and validate workflow plugins (wagons).",
    ),
    "local": LazyCommand(
        "datacatalog.cli.local",
        "local",
        "Start, stop and inspect the local MongoDB server kept in the data dir.",
    ),
    "ui": LazyCommand(
        "datacatalog.cli.ui",
        "ui",
        "Serve this catalog and open its dashboard (jobs, files, lineage) in a browser.",
    ),
}
"""The command groups, by name; each module is imported only when its command runs."""


class CatalogGroup(click.Group):
    """The root group: reports every error in one place, with its exit code.

    With ``--json``, usage errors (an unknown option, a missing argument, a value
    outside its choices) are reported like any other error, as one line on stderr
    and an ``invalid_request`` error body on stdout; without it, click prints them
    with the usage line. Either way they exit 2.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command: those defined here and the lazily loaded groups."""
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module on first use."""
        found = self.commands.get(cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        entry = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        _accept_json_after_the_command(command)
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their one-line help, without importing the lazy ones."""
        names = self.list_commands(ctx)
        # The width click gives the help column.
        limit = formatter.width - 6 - max((len(name) for name in names), default=0)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is None:
                rows.append((name, COMMANDS[name].help))
            elif not loaded.hidden:
                rows.append((name, loaded.get_short_help_str(limit=limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

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
            if isinstance(exc, click.BadParameter):
                raise click.exceptions.Exit(_report_bad_value(exc)) from None
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
            if isinstance(exc, click.BadParameter):
                ctx.exit(_report_bad_value(exc))
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


def _report_bad_value(exc: click.BadParameter) -> int:
    """A value click refused (a missing file, a choice not offered): one line, like every
    other error, instead of click's usage block; a malformed command line (an unknown
    option, a missing argument) still shows the usage."""
    where = exc.ctx.command_path if exc.ctx is not None else "datacatalog"
    report_error(InvalidRequestError(f"{where}: {exc.format_message()}"), json_mode=False)
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
    help="MongoDB URI (default: DATACATALOG_MONGODB_URI, else the data dir's local server).",
)
@click.option(
    "--database",
    metavar="NAME",
    help="MongoDB database name (default: DATACATALOG_MONGODB_DATABASE, else 'catalog').",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data dir: local catalog, local archive, secret (default: DATACATALOG_DATA_DIR).",
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
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (uvicorn workers), each with its own database connection.",
)
@pass_app
def serve(app: App, host: str, port: int, workers: int) -> None:
    """Run the HTTP webhook service on this catalog."""
    settings = app.settings
    try:
        from datacatalog.service import serve as run_service
    except ImportError as exc:
        raise InvalidRequestError(f"the HTTP service cannot start: {exc}") from exc
    run_service(settings, host=host, port=port, workers=workers)


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
    from rich.tree import Tree

    from datacatalog import states
    from datacatalog.cli.jobs import files_table, history_tree, job_panel, relative_name
    from datacatalog.cli.output import fields_panel, text

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


def _json_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        app = ctx.find_object(App)
        if app is not None:
            app.out.json_mode = True


def _accept_json_after_the_command(command: click.Command) -> None:
    """Give ``command`` (and every command under it) a ``--json`` of its own.

    ``datacatalog jobs list --json`` then works as ``datacatalog --json jobs list``
    does. The flag is eager, so an error in a later option is already reported as JSON.
    """
    if not any(param.name == "json" for param in command.params):
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
        for sub in command.commands.values():
            _accept_json_after_the_command(sub)


for _command in cli.commands.values():
    _accept_json_after_the_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``datacatalog`` console script."""
    try:
        cli.main(args=argv, prog_name="datacatalog")
    finally:
        if "datacatalog.store" in sys.modules:
            from datacatalog.store import close_clients

            try:
                close_clients()
            except Exception:  # never in the way of the command's own exit
                logging.getLogger(__name__).debug("closing the clients", exc_info=True)
