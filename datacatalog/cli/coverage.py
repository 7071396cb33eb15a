"""``datacatalog coverage``: which selected entities a pipeline has processed, and how.

::

    datacatalog coverage --pipeline P [--pipeline P2] --experiment-id E --level sample
                         [--data JSON] [--limit N] [--offset N] [--json]

One row per selected entity, one column per pipeline and parameter set, each cell the
state of the entity's job (``-``: none yet), then the cells per state of each column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.markup import escape
from rich.table import Table

from datacatalog.cli.context import App, pass_app
from datacatalog.cli.params import json_object
from datacatalog.metadata import LEVELS

if TYPE_CHECKING:
    from rich.console import Console

    from datacatalog.jobs.coverage import Coverage

STATE_STYLES = {
    "FINISHED": "green",
    "VALIDATED": "green",
    "FINALIZED": "green",
    "INDEXING": "cyan",
    "VALIDATING": "cyan",
    "RUNNING": "cyan",
    "CREATED": "blue",
    "FAILED": "red",
    "REJECTED": "red",
    "RETIRED": "dim",
    "RESET": "yellow",
    "missing": "dim",
}

F = TypeVar("F", bound=Callable[..., Any])


def selection_options(func: F) -> F:
    """The options naming a metadata selection (one kind of id, and a level)."""
    options = [
        click.option(
            "--level",
            type=click.Choice(LEVELS),
            help="The level selected under the ids given (default: those entities).",
        ),
        click.option(
            "--measurement-id", multiple=True, metavar="ID", help="Measurement id or UUID."
        ),
        click.option("--sample-id", multiple=True, metavar="ID", help="Sample id or UUID."),
        click.option("--experiment-id", multiple=True, metavar="ID", help="Experiment id or UUID."),
        click.option(
            "--experiment-design-id",
            multiple=True,
            metavar="ID",
            help="Experiment design id or UUID.",
        ),
    ]
    for option in options:
        func = option(func)
    return func


def metadata_arguments(values: dict[str, tuple[str, ...]]) -> dict[str, list[str] | None]:
    """The selection options as metadata arguments (``experiment_id=[...]``)."""
    return {name: list(values.get(name, ())) or None for name in _ARGUMENTS}


_ARGUMENTS = ("experiment_design_id", "experiment_id", "sample_id", "measurement_id")


@click.command("coverage")
@click.option(
    "--pipeline",
    "pipelines",
    multiple=True,
    required=True,
    metavar="ID_OR_UUID",
    help="A pipeline (repeat for several).",
)
@selection_options
@click.option("--data", callback=json_object, metavar="JSON", help="Only these parameters.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@pass_app
def coverage(
    app: App,
    /,
    pipelines: tuple[str, ...],
    level: str | None,
    data: dict[str, Any] | None,
    limit: int,
    offset: int,
    **ids: tuple[str, ...],
) -> None:
    """Which selected entities have a job of PIPELINE (or of any), and in which state.

    Select entities with one kind of id (repeat it for a list) and, optionally, the
    level below them: --experiment-id E --level sample is every sample of E.
    """
    result = app.catalog.jobs.coverage(
        pipelines=list(pipelines) or None,
        metadata=metadata_arguments(ids),
        level=level,
        parameters=data,
        offset=offset,
        limit=limit,
    )
    app.out.emit(result.to_dict(), lambda console: render(console, result))


def render(console: Console, result: Coverage) -> None:
    """The matrix page, then the counts per column."""
    selection = result.selection
    console.print(f"Coverage of {len(selection.entities)} {escape(selection.describe())}")
    if not result.columns:
        names = ", ".join(sorted(set(result.pipeline_ids))) or "any pipeline"
        console.print(f"[dim]no job of {escape(names)} names any of them yet[/dim]")
        return
    matrix = Table()
    matrix.add_column(selection.kind, overflow="fold")
    for column in result.columns:
        matrix.add_column(escape(column.label), overflow="fold")
    for row in result.rows:
        cells = [_state(cell.state) if cell is not None else "[dim]-[/dim]" for cell in row.cells]
        matrix.add_row(escape(row.entity.id), *cells)
    shown = len(result.rows)
    if shown < result.entity_count:
        matrix.caption = (
            f"rows {result.offset + 1}-{result.offset + shown} of {result.entity_count} "
            "(--offset and --limit page through them)"
        )
    console.print(matrix)
    console.print("Cells per state")
    counts = Table()
    counts.add_column("column", overflow="fold")
    states = [s for s in STATE_STYLES if any(s in c for c in result.counts)]
    for state in states:
        counts.add_column(_state(state), justify="right")
    for column, per_state in zip(result.columns, result.counts, strict=True):
        counts.add_row(escape(column.label), *(str(per_state.get(s, 0)) for s in states))
    console.print(counts)


def _state(state: str) -> str:
    style = STATE_STYLES.get(state, "white")
    return f"[{style}]{escape(state)}[/{style}]"
