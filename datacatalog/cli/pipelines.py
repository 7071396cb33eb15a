"""``datacatalog pipelines``: register, list and show pipelines."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.syntax import Syntax

from datacatalog.cli.context import App, pass_app
from datacatalog.cli.output import dumps, fields_panel, table
from datacatalog.cli.params import read_document
from datacatalog.errors import InvalidRequestError
from datacatalog.pipelines import Pipeline


@click.group()
def pipelines() -> None:
    """Register and inspect pipelines."""


@pipelines.command("register")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def register(app: App, file: Path) -> None:
    """Register the pipeline defined in FILE (JSON or YAML).

    Registering the same definition again changes nothing.
    """
    spec = read_document(file)
    if not isinstance(spec, dict):
        raise InvalidRequestError(f"{file} must hold one pipeline (a JSON/YAML object)")
    pipeline, created = app.catalog.pipelines.register(spec)

    def render(console: Console) -> None:
        verb = "registered" if created else "already registered"
        console.print(f"[green]{verb}[/green] pipeline {pipeline.id} ({pipeline.uuid})")
        console.print(pipeline_panel(pipeline))

    app.out.emit({"pipeline": pipeline.to_dict(), "created": created}, render)


@pipelines.command("list")
@click.option("--limit", default=0, type=click.IntRange(min=0), help="At most this many (0: all).")
@pass_app
def list_pipelines(app: App, limit: int) -> None:
    """List registered pipelines, newest first."""
    found = app.catalog.pipelines.find(limit=limit)

    def render(console: Console) -> None:
        console.print(
            table(
                "Pipelines",
                ("uuid", "id", "name", "levels", "components", "registered"),
                (
                    (
                        p.uuid,
                        p.id,
                        p.name,
                        ",".join(p.processing_levels),
                        len(p.components),
                        p.created_date,
                    )
                    for p in found
                ),
                empty="no pipelines registered",
            )
        )

    app.out.emit({"pipelines": [p.to_dict() for p in found]}, render)


@pipelines.command("show")
@click.argument("id_or_uuid")
@pass_app
def show(app: App, id_or_uuid: str) -> None:
    """Show one pipeline by UUID or id (an id gives the newest registration)."""
    pipeline = app.catalog.pipelines.get(id_or_uuid)
    app.out.emit(
        {"pipeline": pipeline.to_dict()}, lambda console: console.print(pipeline_panel(pipeline))
    )


def pipeline_panel(pipeline: Pipeline) -> object:
    """A panel describing ``pipeline``, its components included."""
    return fields_panel(
        f"pipeline {pipeline.id}",
        {
            "uuid": pipeline.uuid,
            "id": pipeline.id,
            "name": pipeline.name,
            "description": pipeline.description,
            "type": pipeline.pipeline_type,
            "processing levels": ", ".join(pipeline.processing_levels),
            "accepts": ", ".join(pipeline.accepts) or None,
            "produces": ", ".join(pipeline.produces) or None,
            "registered": pipeline.created_date,
            "components": Syntax(dumps(pipeline.components), "json", background_color="default"),
        },
    )
