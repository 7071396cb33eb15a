"""``datacatalog metadata``: load experiment designs, experiments, samples and measurements."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from datacatalog.cli.context import App, pass_app
from datacatalog.cli.output import table
from datacatalog.cli.params import read_document
from datacatalog.errors import InvalidRequestError
from datacatalog.metadata import LEVELS


@click.group()
def metadata() -> None:
    """Load the metadata jobs are computed from."""


@metadata.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def load(app: App, file: Path) -> None:
    """Load the metadata documents listed in FILE (JSON or YAML).

    FILE holds a list of experiment designs, experiments, samples and measurements;
    each names its own id (``sample_id``, ...) and may name its parent's
    (``experiment_id``, ...). Every document is checked first: if one is wrong,
    nothing is written. Loading the same file again updates in place.
    """
    documents = read_document(file)
    if not isinstance(documents, list):
        if documents is None:
            found = "it is empty"
        elif isinstance(documents, dict):
            found = "it holds one document; make it a list ('- sample_id: ...')"
        else:
            found = f"it holds a {type(documents).__name__}"
        raise InvalidRequestError(f"{file} must hold a list of metadata documents; {found}")
    result = app.catalog.metadata.load(documents)
    order = {kind: i for i, kind in enumerate(LEVELS)}
    entities = sorted(result.entities, key=lambda e: (order[e.kind], e.id))

    def render(console: Console) -> None:
        console.print(
            f"loaded {len(entities)} document(s): "
            f"[green]{result.created} created[/green], {result.updated} updated"
        )
        console.print(
            table(
                "Metadata",
                ("kind", "id", "uuid", "child of"),
                ((e.kind, e.id, e.uuid, ", ".join(e.child_of) or None) for e in entities),
            )
        )

    app.out.emit(
        {
            "created": result.created,
            "updated": result.updated,
            "entities": [e.to_dict() for e in entities],
        },
        render,
    )
