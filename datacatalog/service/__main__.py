"""``python -m datacatalog.service [--host HOST] [--port PORT] [--workers N]``: run the service.

Configuration comes from the ``DATACATALOG_*`` environment (see
:mod:`datacatalog.settings`); ``datacatalog serve`` does the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from datacatalog.errors import DataCatalogError, mapping_for
from datacatalog.service.server import serve
from datacatalog.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8750


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, load the settings and serve; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m datacatalog.service", description="Run the datacatalog webhook service."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1: this one)"
    )
    args = parser.parse_args(argv)
    try:
        serve(Settings.load(), host=args.host, port=args.port, workers=args.workers)
    except DataCatalogError as exc:
        print(f"datacatalog service: {exc}", file=sys.stderr)
        return mapping_for(exc).exit_code
    except OSError as exc:  # the data dir or the secret file cannot be made or read
        where = f": {exc.filename}" if exc.filename is not None else ""
        print(f"datacatalog service: {exc.strerror or exc}{where}", file=sys.stderr)
        return mapping_for(exc).exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
