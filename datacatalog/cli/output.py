"""Command-line output: rich rendering for people, one JSON document for machines.

Every command produces exactly one result. :meth:`Output.emit` prints it either as
one JSON document on stdout (``--json``) or through a rendering function that draws
rich tables, panels and trees. Nothing with rich markup reaches stdout in JSON mode.

Errors are reported in one place, :func:`report_error`: one line on stderr
(``error: <message>``), plus, with ``--json``, an error body on stdout::

    {"error": {"code": "not_found", "message": "...", "details": {...}}}

The process exit code comes from :func:`datacatalog.errors.mapping_for`, the same
table the HTTP service reads its status codes from.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from datacatalog.errors import DataCatalogError, mapping_for

NOT_A_TERMINAL_WIDTH = 160
"""Console width when output goes to a pipe or a file (no wrapping of UUIDs)."""


class NotConfirmedError(DataCatalogError):
    """The operator declined (or could not be asked) to confirm an admin action."""

    code = "not_confirmed"


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # A pipe or a file gets a fixed, wide layout whatever the environment says, so
    # scripts reading the output see whole UUIDs and paths.
    width = None if stream.isatty() else NOT_A_TERMINAL_WIDTH
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


class Output:
    """Where a command's result goes, and in which form.

    Args:
        json_mode: Print one JSON document on stdout instead of rich output.
    """

    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode
        self._console: Console | None = None
        self._err_console: Console | None = None

    @property
    def console(self) -> Console:
        """The rich console on stdout (human mode only)."""
        if self._console is None:
            self._console = _console(stderr=False)
        return self._console

    @property
    def err_console(self) -> Console:
        """The rich console on stderr (progress bars, notes)."""
        if self._err_console is None:
            self._err_console = _console(stderr=True)
        return self._err_console

    def emit(self, payload: Any, render: Callable[[Console], None]) -> None:
        """Print a command's result.

        Args:
            payload: The JSON-ready result, printed as is with ``--json``.
            render: Draws the result on a rich console otherwise.
        """
        if self.json_mode:
            click.echo(dumps(payload))
        else:
            render(self.console)

    def note(self, text: str) -> None:
        """A remark for people, on stderr; silent with ``--json``."""
        if not self.json_mode:
            self.err_console.print(text)


def dumps(payload: Any) -> str:
    """The JSON text of ``payload`` (dates as ISO 8601)."""
    return json.dumps(payload, indent=2, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return str(value)


def error_body(exc: BaseException) -> dict[str, Any]:
    """``{"error": {"code", "message", "details"}}`` for any exception."""
    if isinstance(exc, DataCatalogError):
        body = exc.to_dict()
        body.setdefault("details", {})
    else:
        body = {"code": "error", "message": one_line(exc), "details": {}}
    return {"error": body}


def one_line(exc: BaseException) -> str:
    """The exception's message on a single line.

    A file system error reads ``<reason>: <path>``; any other error that is not the
    library's own is marked unexpected and named by its type.
    """
    if isinstance(exc, DataCatalogError):
        text = str(exc).strip() or type(exc).__name__
    elif isinstance(exc, OSError) and exc.strerror:
        where = [str(name) for name in (exc.filename, exc.filename2) if name is not None]
        text = ": ".join([exc.strerror, " -> ".join(where)] if where else [exc.strerror])
    else:
        text = f"unexpected {type(exc).__name__}: {str(exc).strip() or '(no message)'}"
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def report_error(exc: BaseException, *, json_mode: bool) -> int:
    """Print ``exc`` (one line on stderr; the error body on stdout with ``--json``).

    Returns:
        The exit code for the error's category.
    """
    click.echo(f"error: {one_line(exc)}", err=True)
    if json_mode:
        click.echo(dumps(error_body(exc)))
    return mapping_for(exc).exit_code


# -- rendering helpers -----------------------------------------------------------------------


def text(value: Any) -> str:
    """``value`` as plain text, safe to print as rich markup."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, (dict, list)):
        return escape(json.dumps(value, ensure_ascii=False, default=_json_default))
    return escape(str(value))


def size(value: int | None) -> str:
    """A byte count for people (``1.2 KiB``)."""
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{value} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    empty: str = "nothing to show",
) -> Table:
    """A table of plain values (each cell passed through :func:`text`)."""
    grid = Table(title=title, title_justify="left", show_lines=False, caption=None)
    for name in columns:
        grid.add_column(name, overflow="fold")
    count = 0
    for row in rows:
        grid.add_row(*(cell if _is_renderable(cell) else text(cell) for cell in row))
        count += 1
    if count == 0:
        grid.caption = empty
    return grid


def _is_renderable(cell: Any) -> bool:
    return isinstance(cell, (Table, Panel)) or hasattr(cell, "__rich_console__")


def fields_panel(title: str, values: Mapping[str, Any], *, style: str = "cyan") -> Panel:
    """A panel listing ``name: value`` pairs."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in values.items():
        grid.add_row(escape(name), value if _is_renderable(value) else text(value))
    return Panel(grid, title=title, title_align="left", border_style=style, expand=False)
