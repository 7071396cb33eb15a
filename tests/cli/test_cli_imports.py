"""The command line starts fast: ``import datacatalog.cli`` loads nothing heavy.

Each check runs in a fresh interpreter, so modules other tests imported do not hide
an import. Every command group that is added must keep these passing: register it in
``datacatalog.cli.main.COMMANDS`` and import heavy modules inside its commands.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

# The module, not the ``main`` function the package exports under the same name.
cli_main = importlib.import_module("datacatalog.cli.main")

HEAVY = (
    "fastapi",
    "uvicorn",
    "starlette",
    "prov",
    "httpx",
    "pymongo",
    "mongomock_ng",
    "fsspec",
    "jsonschema",
    "jsonschema_rs",
    "referencing",
    "yaml",
    "psutil",
    "datacatalog.catalog",
    "datacatalog.store",
    "datacatalog.jobs",
    "datacatalog.service",
    "datacatalog.demo",
)
"""Modules ``import datacatalog.cli`` (and ``datacatalog --help``) must not load."""


SHOW_NEEDS_NOT = (
    "fastapi",
    "uvicorn",
    "starlette",
    "prov",
    "openlineage",
    "httpx",
    "fsspec",
    "jsonschema",
    "yaml",
    "psutil",
    "datacatalog.provenance",
    "datacatalog.indexing",
    "datacatalog.service",
    "datacatalog.orchestrator",
    "datacatalog.demo",
    "rich.progress",
)
"""Modules ``datacatalog jobs show UUID`` must not load: it reads one job and prints it."""


def _loaded_after(
    code: str, heavy: tuple[str, ...] = HEAVY, env: dict[str, str] | None = None
) -> list[str]:
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps([m for m in {list(heavy)!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_module() -> None:
    assert _loaded_after("import datacatalog.cli") == []


def test_help_loads_no_heavy_module() -> None:
    code = (
        "import contextlib, io\n"
        "from datacatalog.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])"
    )
    assert _loaded_after(code) == []


@pytest.mark.parametrize("name", sorted(cli_main.COMMANDS))
def test_each_lazy_group_loads_and_its_listed_help_is_its_own(name: str) -> None:
    command = cli_main.cli.get_command(click.Context(cli_main.cli), name)
    assert isinstance(command, click.Command)
    assert command.name == name
    assert cli_main.COMMANDS[name].help == command.get_short_help_str(limit=200)
    # Loaded commands take --json after their name, as the built-in ones do.
    assert any(p.name == "json" for p in command.params)
    if isinstance(command, click.Group):
        subcommands = command.commands.values()
        assert all(any(p.name == "json" for p in sub.params) for sub in subcommands)


def test_jobs_show_loads_neither_provenance_nor_indexing(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DATACATALOG_") or k == "DATACATALOG_LOCAL_ENGINE"
    }
    env["DATACATALOG_DATA_DIR"] = str(tmp_path)
    make = (
        "from datacatalog.catalog import Catalog\n"
        "c = Catalog.open()\n"
        "p, _ = c.pipelines.register({'id': 'imports', 'components': []})\n"
        "c.metadata.load([{'experiment_design_id': 'design.imports'}])\n"
        "plan = c.jobs.plan(pipeline=p.uuid, metadata={'experiment_design_id': 'design.imports'})\n"
        "print(c.jobs.create(plan)[0].uuid)\n"
        "c.close()"
    )
    made = subprocess.run(
        [sys.executable, "-c", make], capture_output=True, text=True, check=True, env=env
    )
    uuid = made.stdout.strip().splitlines()[-1]
    code = (
        "import contextlib, io\n"
        "from datacatalog.cli import main\n"
        "shown = io.StringIO()\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(shown):\n"
        f"    main(['--json', 'jobs', 'show', {uuid!r}])\n"
        f"assert {uuid!r} in shown.getvalue(), shown.getvalue()"
    )
    assert _loaded_after(code, SHOW_NEEDS_NOT, env) == []
