"""The ``datacatalog`` command line (click + rich).

One module per command group: :mod:`~datacatalog.cli.pipelines`,
:mod:`~datacatalog.cli.metadata`, :mod:`~datacatalog.cli.jobs`,
:mod:`~datacatalog.cli.admin`; the root command, ``serve`` and ``demo`` are in
:mod:`~datacatalog.cli.main`. :mod:`~datacatalog.cli.output` renders results (rich
for people, JSON with ``--json``) and maps errors to exit codes. ``docs/cli.md``
documents every command.
"""

from datacatalog.cli.main import cli, main

__all__ = ["cli", "main"]
