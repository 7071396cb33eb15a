"""``datacatalog lineage`` and ``datacatalog export``: the lineage graph and standard exports."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from datacatalog import provenance as core
from datacatalog.cli.context import App, pass_app
from datacatalog.errors import InvalidRequestError
from datacatalog.provenance import openlineage, rocrate

EXPORT_FORMATS = ("prov-json", "openlineage", "ro-crate")


def _write(output: Path, content: str) -> None:
    try:
        output.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise InvalidRequestError(
            f"cannot write {output}: {exc.strerror or exc}", path=str(output)
        ) from exc


@click.command("lineage")
@click.argument("ref", metavar="ID")
@click.option("--up", "direction", flag_value="up", default=True, help="Causes (the default).")
@click.option("--down", "direction", flag_value="down", help="Effects: what was made from ID.")
@click.option("--both", "direction", flag_value="both", help="One walk each way.")
@click.option(
    "--depth", type=click.IntRange(0, core.MAX_DEPTH), default=core.DEFAULT_DEPTH, show_default=True
)
@click.option(
    "--relation",
    "relations",
    multiple=True,
    type=click.Choice(core.RELATIONS),
    help="Follow only this relation (repeat for several; default: all).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(core.PICTURE_FORMATS),
    default="tree",
    show_default=True,
    help="tree (text), json, dot, mermaid or svg (needs Graphviz dot).",
)
@click.option("--max-nodes", type=click.IntRange(1, core.MAX_NODES), default=core.DEFAULT_MAX_NODES)
@click.option("--include-deleted", is_flag=True, help="Keep soft-deleted entities.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the picture to this file instead of standard output.",
)
@pass_app
def lineage(
    app: App,
    ref: str,
    direction: str,
    depth: int,
    relations: tuple[str, ...],
    fmt: str,
    max_nodes: int,
    include_deleted: bool,
    output: Path | None,
) -> None:
    """The lineage graph of ID (any catalogued UUID, or a file's catalog path).

    Upstream (--up) are the causes: jobs, pipelines, inputs, metadata up to the
    experiment design. Downstream (--down) is everything made from ID.
    """
    result = core.graph(
        app.catalog,
        ref,
        direction=direction,
        depth=depth,
        relations=relations or None,
        include_deleted=include_deleted,
        max_nodes=max_nodes,
    )
    if output is not None:
        _write(output, core.render(result, fmt))
        app.out.note(f"wrote the {fmt} lineage of {result.root} to {output}")
        app.out.emit({"root": result.root, "output": str(output)}, lambda console: None)
        return
    if fmt == "tree":

        def render(console: Console) -> None:
            console.print(core.to_tree(result))

        app.out.emit(result.to_dict(), render)
        return
    click.echo(core.render(result, fmt), nl=False)


@click.command("export")
@click.argument("job")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    default="prov-json",
    show_default=True,
    help="W3C PROV-JSON, OpenLineage run events (JSON Lines) or an RO-Crate.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    help="Where to write (an RO-Crate needs it: a directory, or a file ending in .zip).",
)
@click.option("--with-files", is_flag=True, help="RO-Crate: copy the files into the crate.")
@click.option(
    "--namespace",
    default=openlineage.DEFAULT_NAMESPACE,
    show_default=True,
    help="OpenLineage job namespace.",
)
@pass_app
def export(
    app: App, job: str, fmt: str, output: Path | None, with_files: bool, namespace: str
) -> None:
    """Export JOB as PROV-JSON, OpenLineage run events or a Process Run RO-Crate."""
    catalog = app.catalog
    if with_files and fmt != "ro-crate":
        raise InvalidRequestError("--with-files applies to --format ro-crate only")
    if fmt == "ro-crate":
        if output is None:
            raise InvalidRequestError("an RO-Crate needs --output (a directory or a .zip file)")
        written = rocrate.export(
            catalog.store, job, output, storage=catalog.storage, with_files=with_files
        )
        app.out.note(f"wrote the RO-Crate of job {job} to {written}")
        app.out.emit({"job": job, "format": fmt, "output": str(written)}, lambda console: None)
        return
    if fmt == "openlineage":
        content = openlineage.export(
            catalog.store, job, storage=catalog.storage, namespace=namespace
        )
    else:
        content = core.prov_json(catalog.store, job) + "\n"
    if output is None:
        click.echo(content, nl=False)
        return
    _write(output, content)
    app.out.note(f"wrote the {fmt} export of job {job} to {output}")
    app.out.emit({"job": job, "format": fmt, "output": str(output)}, lambda console: None)
