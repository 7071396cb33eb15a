"""What every command shares: the global options, the output and a lazily opened catalog."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from datacatalog.cli.output import Output

if TYPE_CHECKING:
    # Imported when first used: they bring the store, pymongo and fsspec, which
    # ``datacatalog --help`` never needs (see datacatalog.cli.main).
    from datacatalog.catalog import Catalog
    from datacatalog.settings import Settings

CLI_AGENT = "datacatalog-cli"
"""The agent recorded on the events the command line sends."""


@contextmanager
def stopped_by_signals(stop: Callable[[int], object]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``stop(signum)`` while the block runs (on the main thread
    only: signal handlers cannot be set from another); the previous handlers come back
    after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def person() -> str:
    """Who runs the command line, as a job's agent: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


class App:
    """What every command shares: the global options, the output, a lazily opened catalog.

    Args:
        json_mode: Print one JSON document on stdout.
        mongodb_uri: MongoDB URI (``None``: configuration, else the local catalog).
        database: MongoDB database name (``None``: configuration).
        data_dir: Data dir (``None``: configuration).
    """

    def __init__(
        self,
        *,
        json_mode: bool,
        mongodb_uri: str | None = None,
        database: str | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.out = Output(json_mode=json_mode)
        self._overrides: dict[str, Any] = {
            "mongodb_uri": mongodb_uri,
            "mongodb_database": database,
            "data_dir": data_dir,
        }
        self._settings: Settings | None = None
        self._catalog: Catalog | None = None

    @property
    def json_mode(self) -> bool:
        """True with ``--json``."""
        return self.out.json_mode

    @property
    def settings(self) -> Settings:
        """The configuration, with the global options applied."""
        if self._settings is None:
            from datacatalog.settings import Settings

            self._settings = Settings.load(**self._overrides)
        return self._settings

    @property
    def catalog(self) -> Catalog:
        """The catalog, opened on first use."""
        if self._catalog is None:
            from datacatalog.catalog import Catalog
            from datacatalog.jobs import Actor

            self._catalog = Catalog.open(
                settings=self.settings, actor=Actor.current(agent=CLI_AGENT)
            )
        return self._catalog

    def catalog_env(self) -> dict[str, str]:
        """The catalog settings the command line was given, so a command it runs finds them."""
        settings = self.settings
        env = {
            "DATACATALOG_DATA_DIR": str(settings.data_dir),
            "DATACATALOG_MONGODB_DATABASE": settings.mongodb_database,
        }
        if settings.mongodb_uri:
            env["DATACATALOG_MONGODB_URI"] = settings.mongodb_uri
        return env

    def admin_token(self, given: str | None) -> str:
        """``given``, or an admin token minted from the local secret.

        Whoever can read the deployment secret owns the catalog, so the local
        operator may act without passing a token. A token that is given, even an
        empty one (``--token "$UNSET"``), is used as it is and checked.
        """
        return given if given is not None else self.catalog.jobs.admin_token()

    def close(self) -> None:
        """Release the catalog."""
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None


pass_app = click.make_pass_decorator(App)


def runs_command_line(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command that runs a command line given after its options.

    The words after the options reach ``func`` untouched as ``command``; ``func`` takes the
    click context and the :class:`App` first (as ``click.pass_context`` and ``pass_app``
    give them). The command itself needs ``ignore_unknown_options`` in its settings.
    """
    return click.argument("command", nargs=-1, type=click.UNPROCESSED)(
        pass_app(click.pass_context(func))
    )
