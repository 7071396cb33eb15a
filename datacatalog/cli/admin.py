"""``datacatalog admin``: admin tokens, reset/ready/delete/undelete/purge, the audit log.

Admin actions need an admin token. ``--token`` passes one (as a remote operator
would); without it the command mints one from the local deployment secret:
whoever can read that secret owns the catalog. Destructive actions ask for
confirmation unless ``--yes`` is given; with ``--json`` (no prompt possible)
``--yes`` is required.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from datacatalog.cli.context import App, pass_app
from datacatalog.cli.output import NotConfirmedError, fields_panel, table
from datacatalog.identifiers import require_kind
from datacatalog.jobs import AuditRecord, Job


@dataclass(frozen=True)
class _JobAction:
    """An admin action on one job that answers with the job (reset, ready, ...)."""

    name: str
    summary: str
    past: str
    question: str | None
    """Asked before acting (``None``: the action is not destructive; no ``--yes``)."""


_JOB_ACTIONS = (
    _JobAction(
        "reset",
        "RESET a job: empty its archive directory and unlink its indexed files.",
        "reset",
        "Reset job {uuid}? Its archive directory will be emptied",
    ),
    _JobAction(
        "ready",
        "Make a RESET job CREATED again.",
        "made ready",
        "Make job {uuid} ready (CREATED) again?",
    ),
    _JobAction(
        "delete",
        "Soft-delete a job (hidden from queries and events; `admin undelete` restores it).",
        "deleted",
        "Delete job {uuid}? It will be hidden until undeleted",
    ),
    _JobAction("undelete", "Restore a soft-deleted job.", "undeleted", None),
)

_PURGE_QUESTION = "Purge job {uuid}? The job, its file records and its archive files go for good"


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


def _confirm(app: App, action: str, question: str, yes: bool) -> None:
    if yes:
        return
    if app.json_mode:
        raise NotConfirmedError(f"{action} needs confirmation: pass --yes", action=action)
    try:
        confirmed = click.confirm(question, default=False, err=True)
    except click.Abort:  # end of input or Ctrl-C: nobody said yes
        click.echo(err=True)
        confirmed = False
    if not confirmed:
        raise NotConfirmedError(f"{action} was not confirmed; nothing was changed", action=action)


def _authorized(
    app: App,
    action: str,
    uuid: str,
    token: str | None,
    *,
    question: str | None,
    yes: bool,
    include_deleted: bool = False,
) -> str:
    """The admin token to act with, once the job exists and the action is confirmed.

    An unknown job and a wrong token are reported before the question is asked.
    """
    if question is None:
        return app.admin_token(token)
    app.catalog.jobs.get(uuid, include_deleted=include_deleted)
    admin_token = app.admin_token(token)
    app.catalog.jobs.check_admin(admin_token, action=action)
    _confirm(app, action, question.format(uuid=uuid), yes)
    return admin_token


def _token_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--token",
        metavar="T",
        help="An admin token (default: minted from the local secret).",
    )(func)


def _yes_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(func)


def _job_command(spec: _JobAction) -> click.Command:
    """The ``admin <action> UUID [--yes] [--token T]`` command of ``spec``."""

    def command(app: App, uuid: str, token: str | None, yes: bool = False) -> None:
        admin_token = _authorized(app, spec.name, uuid, token, question=spec.question, yes=yes)
        act: Callable[..., Job] = getattr(app.catalog.jobs, spec.name)
        job = act(uuid, token=admin_token)

        def render(console: Console) -> None:
            console.print(f"[green]{spec.past}[/green] job {job.uuid}: {job.state}")

        app.out.emit({"action": spec.name, "job": job.to_dict()}, render)

    command.__name__ = spec.name
    command.__doc__ = spec.summary
    decorated = pass_app(command)
    if spec.question is not None:
        decorated = _yes_option(decorated)
    decorated = click.argument("uuid")(_token_option(decorated))
    return admin.command(spec.name)(decorated)


for _spec in _JOB_ACTIONS:
    _job_command(_spec)


@admin.command("purge")
@click.argument("uuid")
@_token_option
@_yes_option
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@pass_app
def purge(app: App, uuid: str, token: str | None, yes: bool, dry_run: bool) -> None:
    """Remove a job, its file records and its archive files for good (deleted jobs too)."""
    admin_token = _authorized(
        app,
        "purge",
        uuid,
        token,
        question=_PURGE_QUESTION,
        yes=yes or dry_run,  # a dry run removes nothing: no question
        include_deleted=True,
    )
    report = app.catalog.jobs.purge(uuid, token=admin_token, dry_run=dry_run)
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
    if uuid is not None:
        # The log outlives purged jobs, so the job need not exist; the UUID must be one.
        require_kind(uuid, "pipelinejob", what="job")
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
        "seq": record.seq,
    }
