"""``datacatalog jobs``: create, inspect, drive and index jobs."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.tree import Tree

from datacatalog import states
from datacatalog.catalog import Catalog
from datacatalog.cli.context import App, pass_app, person
from datacatalog.cli.output import Output, fields_panel, size, table, text
from datacatalog.cli.params import json_object
from datacatalog.errors import DataCatalogError, InvalidRequestError
from datacatalog.identifiers import kind_of
from datacatalog.jobs import HistoryEntry, Job
from datacatalog.jobs.executions import Execution
from datacatalog.pipelines import PROCESSING_LEVELS

if TYPE_CHECKING:
    from datacatalog.indexing import IndexProgress

VERIFY_FAILED_EXIT = 1
"""Exit code of ``jobs verify`` when a file changed or went missing."""


@click.group()
def jobs() -> None:
    """Create, inspect, drive and index jobs."""


# -- create / list / show / history --------------------------------------------------------


@jobs.command("create")
@click.option("--pipeline", required=True, metavar="ID_OR_UUID", help="The pipeline to run.")
@click.option("--experiment-id", multiple=True, metavar="ID", help="Experiment id or UUID.")
@click.option("--sample-id", multiple=True, metavar="ID", help="Sample id or UUID.")
@click.option("--measurement-id", multiple=True, metavar="ID", help="Measurement id or UUID.")
@click.option("--data", callback=json_object, metavar="JSON", help="Job parameters (JSON object).")
@click.option("--instanced", is_flag=True, help="Give the run its own instanced directory.")
@click.option("--agent", metavar="TEXT", help="Who makes the job [default: user@host].")
@click.option("--task", metavar="TEXT", help="What the job is for [default: this command].")
@pass_app
def create(
    app: App,
    pipeline: str,
    experiment_id: tuple[str, ...],
    sample_id: tuple[str, ...],
    measurement_id: tuple[str, ...],
    data: dict[str, Any] | None,
    instanced: bool,
    agent: str | None,
    task: str | None,
) -> None:
    """Create the job for PIPELINE on some metadata, or find the existing one.

    Give the metadata the job is computed from with one kind of id, repeated as
    needed (``--sample-id S1 --sample-id S2``). The job's identity is its pipeline,
    metadata and data, so the same command finds the same job.
    """
    catalog = app.catalog
    metadata = {
        "experiment_id": list(experiment_id) or None,
        "sample_id": list(sample_id) or None,
        "measurement_id": list(measurement_id) or None,
    }
    typed = ["datacatalog", "jobs", "create", "--pipeline", pipeline]
    for kind, values in metadata.items():
        typed += [arg for value in values or [] for arg in (f"--{kind.replace('_', '-')}", value)]
    if data is not None:
        typed += ["--data", json.dumps(data, sort_keys=True)]
    if instanced:
        typed.append("--instanced")
    plan = catalog.jobs.plan(
        pipeline=pipeline,
        metadata=metadata,
        data=data,
        instanced=instanced,
        agent=agent if agent is not None else person(),
        task=task if task is not None else shlex.join(typed),
    )
    job, created = catalog.jobs.create(plan)
    token = catalog.jobs.job_token(job.uuid)
    webhook = catalog.jobs.webhook_url(job.uuid)
    directory = _archive_dir(catalog, job)

    def render(console: Console) -> None:
        verb = "[green]created[/green]" if created else "[yellow]found existing[/yellow]"
        console.print(f"{verb} job {job.uuid} ({job.state})")
        console.print(
            fields_panel(
                f"job {job.uuid}",
                {
                    "state": job.state,
                    "pipeline": job.pipeline_uuid,
                    "child of": ", ".join(job.child_of),
                    "data": job.data,
                    "archive path": job.archive_path,
                    "archive system": job.archive_system,
                },
            )
        )
        # Outside the panel, unwrapped, so they can be copied whole.
        if directory is not None:
            console.print(f"outputs  {directory}", markup=False, soft_wrap=True)
        console.print(f"token    {token}", markup=False, soft_wrap=True)
        console.print(f"webhook  {webhook}", markup=False, soft_wrap=True)

    app.out.emit(
        {
            "job": job.to_dict(),
            "created": created,
            "archive_dir": directory,
            "token": token,
            "webhook_url": webhook,
        },
        render,
    )


def _archive_dir(catalog: Catalog, job: Job) -> str | None:
    """The job's local output directory as text; None where its storage is not local
    (or its storage system is no longer configured)."""
    try:
        found = catalog.jobs.archive_dir(job)
    except DataCatalogError:
        return None
    return str(found) if found is not None else None


@jobs.command("list")
@click.option(
    "--state",
    type=click.Choice(states.STATES, case_sensitive=False),
    help="Only jobs in this state.",
)
@click.option("--pipeline", metavar="ID_OR_UUID", help="Only jobs of this pipeline.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(0, 1000))
@pass_app
def list_jobs(app: App, state: str | None, pipeline: str | None, limit: int) -> None:
    """List jobs, newest first."""
    catalog = app.catalog
    found = catalog.jobs.find(
        state=state.upper() if state else None, pipeline=pipeline, limit=limit
    )
    names = _pipeline_names(catalog, {j.pipeline_uuid for j in found})

    def render(console: Console) -> None:
        console.print(
            table(
                "Jobs",
                ("uuid", "state", "pipeline", "child of", "last event", "created"),
                (
                    (
                        j.uuid,
                        j.state,
                        names.get(j.pipeline_uuid, j.pipeline_uuid),
                        "\n".join(j.child_of),
                        j.last_event,
                        j.created_date,
                    )
                    for j in found
                ),
                empty="no jobs",
            )
        )

    app.out.emit({"jobs": [j.to_dict() for j in found]}, render)


def _pipeline_names(catalog: Catalog, uuids: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for uuid in sorted(uuids):
        try:
            names[uuid] = catalog.pipelines.get(uuid).id
        except DataCatalogError:
            continue  # a job whose pipeline record is gone still lists, by UUID
    return names


@jobs.command("show")
@click.argument("uuid")
@pass_app
def show(app: App, uuid: str) -> None:
    """Show a job: its state, linkages, archive path, lease and executions."""
    catalog = app.catalog
    job = catalog.jobs.get(uuid)
    links = linkages(catalog, job)
    archive = archive_location(catalog, job)
    allowed = states.allowed_events(job.state)
    runs = catalog.jobs.executions(job.uuid)

    def render(console: Console) -> None:
        console.print(job_panel(job, allowed))
        console.print(linkage_tree(job, links))
        console.print(fields_panel("archive", archive, style="magenta"))
        console.print(lease_panel(job))
        console.print(executions_table(runs))

    app.out.emit(
        {
            "job": job.to_dict(),
            "linkages": links,
            "archive": archive,
            "allowed_events": allowed,
            "executions": [e.to_dict() for e in runs],
        },
        render,
    )


def executions_table(runs: Sequence[Execution]) -> object:
    """Every execution of the job (and every up-to-date check), oldest first."""
    return table(
        "executions",
        ["#", "run id", "began with", "holder", "where", "started", "ended", "outcome", "reason"],
        (
            [
                "-" if e.number is None else e.number,
                e.run_id,
                e.began_with,
                e.holder,
                f"{e.host} (pid {e.pid})" if e.host else None,
                e.started,
                e.ended,
                e.outcome,
                e.reason,
            ]
            for e in runs
        ),
        empty="never ran",
    )


def job_panel(job: Job, allowed: Sequence[str]) -> object:
    """The job's own fields."""
    return fields_panel(
        f"job {job.uuid}",
        {
            "state": f"{job.state} ({states.STATE_DESCRIPTIONS.get(job.state, '')})",
            "last event": job.last_event,
            "next events": ", ".join(allowed) or None,
            "pipeline": job.pipeline_uuid,
            "data": job.data,
            "session": job.session,
            "agent": job.agent,
            "task": job.task,
            "instanced": job.instanced,
            "created": job.created_date,
            "modified": job.modified_date,
            "revision": job.revision,
        },
    )


def lease_panel(job: Job) -> object:
    """Who holds the job's lease (its one active execution), or that no one does."""
    lease = job.lease
    if lease is None:
        return fields_panel("lease", {"holder": "none (no active execution)"}, style="green")
    fields: dict[str, Any] = {
        "holder": f"{lease.kind} {lease.holder}",
        "where": f"{lease.host} (pid {lease.pid})",
        "since": lease.since,
        "renewed": lease.renewed,
        "expires": lease.expires,
    }
    if lease.taken_over:
        fields["took over"] = lease.taken_over.get("holder")
    return fields_panel("lease", fields, style="yellow")


def linkages(catalog: Catalog, job: Job) -> dict[str, list[dict[str, Any]]]:
    """The job's links, each UUID resolved to what it names where the catalog knows it."""
    return {
        "generated_by": [_describe(catalog, u) for u in job.generated_by],
        "child_of": [_describe(catalog, u) for u in job.child_of],
        "acted_on": [_describe(catalog, u) for u in job.acted_on],
        "acted_using": [_describe(catalog, u) for u in job.acted_using],
    }


def _describe(catalog: Catalog, uuid: str) -> dict[str, Any]:
    kind = kind_of(uuid)
    found: dict[str, Any] = {"uuid": uuid, "kind": kind}
    try:
        if kind == "pipeline":
            pipeline = catalog.pipelines.get(uuid)
            found.update(id=pipeline.id, name=pipeline.name)
        elif kind in ("experiment_design", "experiment", "sample", "measurement"):
            entity = catalog.metadata.get(kind, uuid)
            found.update(id=entity.id, child_of=entity.child_of)
    except DataCatalogError:
        found["missing"] = True
    return found


def linkage_tree(job: Job, links: dict[str, list[dict[str, Any]]]) -> Tree:
    """A tree of the job's links."""
    tree = Tree(f"[bold]linkages of job {job.uuid}[/bold]")
    for relation, items in links.items():
        branch = tree.add(f"[cyan]{relation}[/cyan]")
        if not items:
            branch.add("[dim](none)[/dim]")
        for item in items:
            label = f"{item.get('kind') or 'untyped'} {text(item['uuid'])}"
            if "id" in item:
                label += f"  [bold]{text(item['id'])}[/bold]"
            if item.get("missing"):
                label += "  [red](not in the catalog)[/red]"
            branch.add(label)
    return tree


def archive_location(catalog: Catalog, job: Job) -> dict[str, Any]:
    """Where the job's outputs live."""
    location: dict[str, Any] = {"system": job.archive_system, "path": job.archive_path}
    try:
        system = catalog.storage.get(job.archive_system)
    except DataCatalogError:
        location["url"] = None
    else:
        location["url"] = system.url.rstrip("/") + job.archive_path
    # Where a pipeline on this machine writes the outputs (None: storage not local).
    location["directory"] = _archive_dir(catalog, job)
    return location


@jobs.command("history")
@click.argument("uuid")
@pass_app
def history(app: App, uuid: str) -> None:
    """Show a job's events, oldest first."""
    catalog = app.catalog
    job = catalog.jobs.get(uuid)
    entries = catalog.jobs.history(uuid)
    app.out.emit(
        {"job": job.uuid, "state": job.state, "history": [e.to_dict() for e in entries]},
        lambda console: console.print(history_tree(job, entries)),
    )


def history_tree(job: Job, entries: Sequence[HistoryEntry]) -> Tree:
    """A tree of the job's events: one branch per event, its data and sender below."""
    tree = Tree(f"[bold]history of job {job.uuid}[/bold] ({len(entries)} events, now {job.state})")
    for entry in entries:
        arrow = f" -> {entry.to_state}" if entry.to_state else ""
        branch = tree.add(f"{text(entry.date)}  [cyan]{text(entry.name)}[/cyan]{arrow}")
        if entry.data:
            branch.add(f"data {text(entry.data)}")
        sender = " ".join(
            part
            for part in (
                entry.agent,
                f"on {entry.host}" if entry.host else None,
                f"pid {entry.pid}" if entry.pid is not None else None,
                f"v{entry.version}" if entry.version else None,
            )
            if part
        )
        if sender:
            branch.add(f"[dim]by {text(sender)}[/dim]")
        if entry.event_id:
            branch.add(f"[dim]event id {text(entry.event_id)}[/dim]")
    return tree


# -- events --------------------------------------------------------------------------------


@jobs.command("event")
@click.argument("uuid")
@click.argument("name", metavar="NAME")
@click.option("--data", callback=json_object, metavar="JSON", help="Event data (a JSON object).")
@click.option("--token", metavar="T", help="The job token; when given it is checked.")
@click.option("--event-id", metavar="K", help="Idempotency key: resending it changes nothing.")
@pass_app
def event(
    app: App,
    uuid: str,
    name: str,
    data: dict[str, Any] | None,
    token: str | None,
    event_id: str | None,
) -> None:
    """Send the event NAME to a job (run, update, finish, fail, ...).

    With --token the token is checked, as for a remote caller; without it the
    command acts as the local owner of the catalog.
    """
    row = states.transition(name)
    if row.admin:
        raise InvalidRequestError(
            f"{name!r} is an administrative action: use `datacatalog admin {name} {uuid}`",
            event=name,
        )
    result = app.catalog.jobs.send(uuid, name, data=data, token=token, event_id=event_id)
    job = result.job

    def render(console: Console) -> None:
        if result.applied:
            console.print(f"[green]{name}[/green]: job {job.uuid} is {job.state}")
        else:
            console.print(
                f"[yellow]already recorded[/yellow] (event id {text(event_id)}): "
                f"nothing changed; job {job.uuid} is {job.state}"
            )

    app.out.emit(
        {"job": job.to_dict(), "event": result.entry.to_dict(), "applied": result.applied},
        render,
    )


# -- indexing ------------------------------------------------------------------------------


@contextmanager
def progress_bar(out: Output, label: str) -> Iterator[Callable[[IndexProgress], None]]:
    """A rich progress bar on stderr, driven by an indexing progress callback.

    Yields the callback. Nothing is drawn with ``--json`` or when stderr is not a
    terminal.
    """
    # Imported here: only index and verify draw a bar (``jobs show`` starts without it).
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=out.err_console,
        transient=True,
        disable=out.json_mode or not out.err_console.is_terminal,
    )
    task = bar.add_task(label, total=None, detail="")

    def update(step: IndexProgress) -> None:
        bar.update(
            task,
            total=step.total,
            completed=step.seen,
            detail=f"{step.matched} matched, {step.written} written",
        )

    with bar:
        yield update


@jobs.command("index")
@click.argument("uuid")
@click.option("--fixity/--no-fixity", default=False, help="Compute sha256 checksums.")
@click.option(
    "--level",
    type=click.Choice(PROCESSING_LEVELS),
    default=None,
    help="Processing level of the files [default: the one the job's pipeline declares].",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="PATTERN",
    help="Index only paths matching this regular expression (repeatable; OR-ed).",
)
@click.option(
    "--transition/--no-transition",
    default=True,
    show_default=True,
    help="Send index/indexed so the job ends FINISHED.",
)
@pass_app
def index(
    app: App,
    uuid: str,
    fixity: bool,
    level: str | None,
    filters: tuple[str, ...],
    transition: bool,
) -> None:
    """Index the files in a job's archive path."""
    catalog = app.catalog
    with progress_bar(app.out, "indexing") as on_progress:
        report = catalog.indexing.index(
            uuid,
            transition=transition,
            level=level,
            fixity=fixity,
            filters=list(filters) or None,
            progress=on_progress,
        )
    payload = report.to_dict()

    def render(console: Console) -> None:
        # Counts, not the written records' UUIDs (`jobs files` lists those).
        console.print(
            fields_panel(
                f"indexed job {uuid}",
                {
                    "state": report.state,
                    "files seen": report.seen,
                    "matched": report.matched,
                    "records written": report.written,
                    "bulk writes": report.batches,
                    "skipped": len(report.skipped),
                    "errors": len(report.errors),
                },
                style="red" if report.errors else "cyan",
            )
        )
        problems = [("error", path, why) for path, why in report.errors]
        problems += [("skipped", path, why) for path, why in report.skipped]
        if problems:
            console.print(table("Not indexed", ("what", "path", "why"), problems))

    app.out.emit(payload, render)


@jobs.command("verify")
@click.argument("uuid")
@pass_app
def verify(app: App, uuid: str) -> None:
    """Re-hash a job's indexed files and report any drift.

    Exits 1 when a file changed or is missing (files indexed without a checksum are
    compared by size and reported as unhashed).
    """
    catalog = app.catalog
    with progress_bar(app.out, "verifying") as on_progress:
        report = catalog.indexing.verify(uuid, progress=on_progress)
    names = {record.uuid: record.name for record in catalog.indexing.files(uuid)}
    payload = report.to_dict()
    payload["counts"] = report.counts()
    payload["names"] = {u: names[u] for u in sorted(names)}

    def render(console: Console) -> None:
        rows = [
            (status, names.get(file_uuid, file_uuid), file_uuid)
            for status in ("changed", "missing", "unhashed")
            for file_uuid in getattr(report, status)
        ]
        summary = ", ".join(f"{count} {status}" for status, count in report.counts().items())
        verdict = "[green]ok[/green]" if report.ok else "[red]drift found[/red]"
        console.print(f"{verdict}: job {uuid}: {summary}")
        if rows:
            console.print(table("Files that need attention", ("status", "file", "uuid"), rows))

    app.out.emit(payload, render)
    if not report.ok:
        raise click.exceptions.Exit(VERIFY_FAILED_EXIT)


@jobs.command("files")
@click.argument("uuid")
@pass_app
def files(app: App, uuid: str) -> None:
    """List the files indexed for a job, with checksums and derivation links."""
    catalog = app.catalog
    job = catalog.jobs.get(uuid, include_deleted=True)
    records = [r.to_dict() for r in catalog.indexing.files(uuid)]
    app.out.emit(
        {"job": uuid, "archive_path": job.archive_path, "files": records},
        lambda console: console.print(files_table(job, records)),
    )


def relative_name(job: Job, name: str) -> str:
    """A file's path relative to the job's archive path (other paths unchanged)."""
    prefix = job.archive_path.rstrip("/") + "/"
    return name[len(prefix) :] if name.startswith(prefix) else name


def files_table(job: Job, records: Sequence[dict[str, Any]]) -> object:
    """A table of file records, named relative to the job's archive path."""
    return table(
        f"Files of job {job.uuid} in {job.archive_system}:{job.archive_path}",
        ("name", "size", "sha256", "level", "type", "derived from"),
        (
            (
                relative_name(job, str(r.get("name"))),
                size(r.get("size")),
                r.get("sha256"),
                r.get("level"),
                r.get("type"),
                "\n".join(r.get("derived_from") or []) or None,
            )
            for r in records
        ),
        empty="no files indexed",
    )
