"""``datacatalog local``: the managed MongoDB server behind the zero-configuration catalog."""

from __future__ import annotations

import time

import click
from rich.console import Console

from datacatalog.cli.context import App, pass_app
from datacatalog.cli.output import fields_panel, size


@click.group()
def local() -> None:
    """Start, stop and inspect the local MongoDB server kept in the data dir.

    With no MongoDB URI configured, the catalog lives on a mongod that datacatalog
    starts in <data dir>/mongo when a command needs it; it keeps running between
    commands and stops after DATACATALOG_LOCAL_IDLE_TIMEOUT seconds without clients.
    """


@local.command("start")
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help=(
        "When this command starts the server: stop it after this long without clients "
        "(default: DATACATALOG_LOCAL_IDLE_TIMEOUT, 900)."
    ),
)
@pass_app
def start(app: App, idle_timeout: float | None) -> None:
    """Start the local server now (or find the running one) and print its address."""
    from datacatalog.store.local import start_local

    settings = app.settings
    began = time.monotonic()
    state = start_local(
        settings.data_dir.resolve(),
        settings.mongodb_database,
        idle_timeout or settings.local_idle_timeout,
    )
    payload = {
        "address": state.uri,
        "pid": state.pid,
        "version": state.version,
        "idle_timeout": state.idle_timeout,
        "seconds": round(time.monotonic() - began, 3),
    }
    app.out.emit(
        payload,
        lambda console: console.print(
            f"local MongoDB {state.version} (pid {state.pid}) at {state.uri}; stops after "
            f"{state.idle_timeout:g} s without clients"
        ),
    )


@local.command("stop")
@pass_app
def stop(app: App) -> None:
    """Stop the local server cleanly (the next command that needs it starts it again)."""
    from datacatalog.local import LocalServer

    pid = LocalServer(app.settings.data_dir.resolve()).stop()
    message = "the local server was not running" if pid is None else f"stopped (pid {pid})"
    app.out.emit({"stopped": pid is not None, "pid": pid}, lambda c: c.print(message))


@local.command("status")
@pass_app
def status(app: App) -> None:
    """Show where the local server is, its pid, version, uptime, size and idle time left."""
    from datacatalog.local import LocalServer

    report = LocalServer(app.settings.data_dir.resolve()).status()

    def render(console: Console) -> None:
        shown = {
            "running": "yes" if report["running"] else "no",
            "address": report.get("address"),
            "pid": report.get("pid"),
            "version": report.get("version"),
            "uptime": _duration(report.get("uptime_seconds")),
            "clients": report.get("clients"),
            "idle time left": _duration(report.get("idle_left_seconds")),
            "size on disk": size(report["size_bytes"]),
            "folder": report["folder"],
            "log": report["log"],
        }
        if "problem" in report:
            shown["problem"] = report["problem"]
        if "fallback" in report:
            shown["JSON fallback"] = report["fallback"]
        console.print(fields_panel("local server", shown))

    app.out.emit(report, render)


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
