"""``datacatalog admin``: admin tokens, reset/ready/delete/undelete/purge, the audit log.

Admin actions need an admin token. ``--token`` passes one (as a remote operator
would); without it the command mints one from the local deployment secret:
whoever can read that secret owns the catalog. Destructive actions ask for
confirmation unless ``--yes`` is given; with ``--json`` (no prompt possible)
``--yes`` is required.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from datacatalog.cli.context import App, pass_app
from datacatalog.cli.output import NotConfirmedError, fields_panel, table
from datacatalog.jobs import AuditRecord, Job

_QUESTIONS = {
    "reset": "Reset job {uuid}? Its archive directory will be emptied",
    "ready": "Make job {uuid} ready (CREATED) again?",
    "delete": "Delete job {uuid}? It will be hidden until undeleted",
    "purge": "Purge job {uuid}? The job, its file records and its archive files go for good",
}


@click.group()
def admin() -> None:
    """Administrative actions (they need an admin token)."""


@admin.command("token")
@pass_app
def token(app: App) -> None:
    """Print a fresh admin token (valid for one to two token lifetimes)."""
    value = app.catalog.jobs.admin_token()
    lifetime = app.settings.admin_token_lifetime
    app.out.emit(
        {"token": value, "lifetime_seconds": lifetime},
        lambda console: console.print(value, markup=False),
    )


def _confirm(app: App, action: str, uuid: str, yes: bool) -> None:
    if yes:
        return
    if app.json_mode:
        raise NotConfirmedError(f"{action} needs confirmation: pass --yes", action=action)
    question = _QUESTIONS[action].format(uuid=uuid)
    if not click.confirm(question, default=False, err=True):
        raise NotConfirmedError(f"{action} was not confirmed; nothing was changed", action=action)


def _token_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--token",
        metavar="T",
        help="An admin token (default: minted from the local secret).",
    )(func)


def _yes_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(func)


def _emit_job(app: App, action: str, job: Job) -> None:
    past = {"reset": "reset", "ready": "made ready", "delete": "deleted", "undelete": "undeleted"}

    def render(console: Console) -> None:
        console.print(f"[green]{past[action]}[/green] job {job.uuid}: {job.state}")

    app.out.emit({"action": action, "job": job.to_dict()}, render)


@admin.command("reset")
@click.argument("uuid")
@_token_option
@_yes_option
@pass_app
def reset(app: App, uuid: str, token: str | None, yes: bool) -> None:
    """RESET a job: empty its archive directory and unlink its indexed files."""
    catalog = app.catalog
    catalog.jobs.get(uuid)  # an unknown job is reported before any question
    admin_token = app.admin_token(token)
    _confirm(app, "reset", uuid, yes)
    _emit_job(app, "reset", catalog.jobs.reset(uuid, token=admin_token))


@admin.command("ready")
@click.argument("uuid")
@_token_option
@_yes_option
@pass_app
def ready(app: App, uuid: str, token: str | None, yes: bool) -> None:
    """Make a RESET job CREATED again."""
    catalog = app.catalog
    catalog.jobs.get(uuid)
    admin_token = app.admin_token(token)
    _confirm(app, "ready", uuid, yes)
    _emit_job(app, "ready", catalog.jobs.ready(uuid, token=admin_token))


@admin.command("delete")
@click.argument("uuid")
@_token_option
@_yes_option
@pass_app
def delete(app: App, uuid: str, token: str | None, yes: bool) -> None:
    """Soft-delete a job (hidden from queries and events; `admin undelete` restores it)."""
    catalog = app.catalog
    catalog.jobs.get(uuid)
    admin_token = app.admin_token(token)
    _confirm(app, "delete", uuid, yes)
    _emit_job(app, "delete", catalog.jobs.delete(uuid, token=admin_token))


@admin.command("undelete")
@click.argument("uuid")
@_token_option
@pass_app
def undelete(app: App, uuid: str, token: str | None) -> None:
    """Restore a soft-deleted job."""
    catalog = app.catalog
    _emit_job(app, "undelete", catalog.jobs.undelete(uuid, token=app.admin_token(token)))


@admin.command("purge")
@click.argument("uuid")
@_token_option
@_yes_option
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@pass_app
def purge(app: App, uuid: str, token: str | None, yes: bool, dry_run: bool) -> None:
    """Remove a job, its file records and its archive files for good (deleted jobs too)."""
    catalog = app.catalog
    catalog.jobs.get(uuid, include_deleted=True)
    admin_token = app.admin_token(token)
    if not dry_run:
        _confirm(app, "purge", uuid, yes)
    report = catalog.jobs.purge(uuid, token=admin_token, dry_run=dry_run)
    payload = {
        "job_uuid": report.job_uuid,
        "dry_run": report.dry_run,
        "archive_system": report.archive_system,
        "archive_path": report.archive_path,
        "files": report.files,
        "archive_entries": report.archive_entries,
    }

    def render(console: Console) -> None:
        verb = "would remove" if dry_run else "removed"
        title = f"purge of job {uuid}" + (" (dry run: nothing removed)" if dry_run else "")
        console.print(
            fields_panel(
                title,
                {
                    "archive": f"{report.archive_system}:{report.archive_path}",
                    f"{verb} file records": len(report.files),
                    f"{verb} archive entries": len(report.archive_entries),
                },
                style="red" if not dry_run else "yellow",
            )
        )
        if report.archive_entries or report.files:
            rows = [("archive entry", e) for e in report.archive_entries]
            rows += [("file record", f) for f in report.files]
            console.print(table(None, ("what", "path"), rows))

    app.out.emit(payload, render)


@admin.command("audit")
@click.argument("uuid", required=False)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
@pass_app
def audit(app: App, uuid: str | None, limit: int) -> None:
    """Show recorded admin actions, newest first (for one job, or all)."""
    records = app.catalog.jobs.audit_log(uuid, limit=limit)
    payload = {"audit": [audit_dict(r) for r in records]}

    def render(console: Console) -> None:
        console.print(
            table(
                "Audit log" + (f" of job {uuid}" if uuid else ""),
                ("date", "action", "job", "by", "dry run", "details"),
                (
                    (
                        r.date,
                        r.action,
                        r.job_uuid,
                        " ".join(str(r.actor.get(k)) for k in ("agent", "host") if r.actor.get(k)),
                        "yes" if r.dry_run else "",
                        r.details or None,
                    )
                    for r in records
                ),
                empty="no admin actions recorded",
            )
        )

    app.out.emit(payload, render)


def audit_dict(record: AuditRecord) -> dict[str, Any]:
    """An audit record, JSON-ready."""
    return {
        "uuid": record.uuid,
        "action": record.action,
        "job_uuid": record.job_uuid,
        "date": record.date.isoformat(),
        "actor": record.actor,
        "details": record.details,
        "dry_run": record.dry_run,
    }
