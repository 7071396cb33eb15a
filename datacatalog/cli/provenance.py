"""``datacatalog provenance``: where a file came from, PROV export, why two jobs differ."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.tree import Tree

from datacatalog import provenance as core
from datacatalog.cli.context import App, pass_app
from datacatalog.cli.output import table, text
from datacatalog.errors import InvalidRequestError


@click.group()
def provenance() -> None:
    """Trace files to the computations behind them."""


@provenance.command("lineage")
@click.argument("file")
@pass_app
def lineage(app: App, file: str) -> None:
    """Trace FILE (a file UUID or its absolute catalog path) upstream.

    Shows the file, the jobs that generated it and the files it was derived from,
    each job's pipeline, and the metadata chain up to the experiment design.
    """
    found = core.lineage(app.catalog.store, file)

    def render(console: Console) -> None:
        record = found.file
        tree = Tree(f"[bold cyan]{text(record['name'])}[/bold cyan]  {record['uuid']}")
        tree.add(f"sha256 {text(record.get('sha256'))}  level {text(record.get('level'))}")
        pipelines = {p["uuid"]: p for p in found.pipelines}
        metadata = {m["uuid"]: m for m in found.metadata}
        for job in found.jobs:
            branch = tree.add(f"job [bold]{job['uuid']}[/bold] ({job['state']})")
            pipeline = pipelines.get(job["pipeline_uuid"])
            label = pipeline["id"] if pipeline else "(unregistered)"
            branch.add(f"pipeline [bold]{text(label)}[/bold]  {job['pipeline_uuid']}")
            branch.add(f"data {text(job.get('data'))}")
            for parent in job.get("child_of", []):
                _metadata_branch(branch, parent, metadata)
        if found.upstream_files:
            upstream = tree.add("[bold]derived from[/bold]")
            for item in found.upstream_files:
                upstream.add(f"{text(item['name'])}  {item['uuid']}")
        console.print(tree)

    app.out.emit(found.to_dict(), render)


def _metadata_branch(branch: Tree, uuid: str, metadata: dict[str, dict[str, object]]) -> None:
    entity = metadata.get(uuid)
    while entity is not None:
        kind = str(entity["kind"])
        branch = branch.add(
            f"{kind.replace('_', ' ')} [bold]{text(entity.get(kind + '_id'))}[/bold]  {uuid}"
        )
        parents = entity.get("child_of") or []
        if not isinstance(parents, list) or not parents:
            return
        uuid = str(parents[0])
        entity = metadata.get(uuid)


@provenance.command("export")
@click.argument("job")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the document to this file instead of standard output.",
)
@pass_app
def export(app: App, job: str, output: Path | None) -> None:
    """Export JOB, its outputs, inputs, pipeline and metadata as W3C PROV-JSON.

    Without --output the document is printed (it is the one JSON document, with or
    without --json); with --output, --json prints where it was written.
    """
    document = core.prov_json(app.catalog.store, job)
    if output is None:
        click.echo(document)
        return
    try:
        output.write_text(document + "\n", encoding="utf-8")
    except OSError as exc:
        raise InvalidRequestError(
            f"cannot write {output}: {exc.strerror or exc}", path=str(output)
        ) from exc
    app.out.note(f"wrote PROV-JSON of job {job} to {output}")
    app.out.emit({"job": job, "output": str(output)}, lambda console: None)


@provenance.command("diff")
@click.argument("left")
@click.argument("right")
@pass_app
def diff(app: App, left: str, right: str) -> None:
    """Explain why jobs LEFT and RIGHT are different jobs.

    A job's identity is its pipeline, the metadata it is a child of and its data;
    this lists which of those differ.
    """
    result = core.diff_jobs(app.catalog.store, left, right)

    def render(console: Console) -> None:
        if result.same_identity:
            console.print("[green]same identity[/green]: pipeline, metadata and data are equal")
            return
        rows: list[tuple[str, object, object]] = []
        if result.pipeline is not None:
            rows.append(("pipeline", result.pipeline[0], result.pipeline[1]))
        if result.child_of_only_left or result.child_of_only_right:
            rows.append(
                ("child of", result.child_of_only_left or "-", result.child_of_only_right or "-")
            )
        rows.extend((path, a, b) for path, (a, b) in result.data.items())
        console.print(table(f"{left} vs {right}", ("identity input", "left", "right"), rows))

    app.out.emit(result.to_dict(), render)
