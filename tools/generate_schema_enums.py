"""Rewrite the job state and event enums of ``schemas/definitions.json``.

The state machine is declared once, in :mod:`datacatalog.states`. The JSON
Schemas name its states and events too (``$defs/job_state`` and
``$defs/job_event``, used by the job and job history entry schemas); this tool
copies them from the table so the two never drift apart.

Usage::

    python tools/generate_schema_enums.py           # rewrite the file if needed
    python tools/generate_schema_enums.py --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFINITIONS = REPO / "schemas" / "definitions.json"


def render(definitions: dict[str, Any]) -> str:
    """Serialize a schema the way every file under ``schemas/`` is written."""
    return json.dumps(definitions, indent=2, ensure_ascii=False) + "\n"


def updated(definitions: dict[str, Any]) -> dict[str, Any]:
    """Return ``definitions`` with the enums taken from the state table."""
    from datacatalog.states import EVENTS, STATES

    result: dict[str, Any] = json.loads(json.dumps(definitions))
    result["$defs"]["job_state"]["enum"] = list(STATES)
    result["$defs"]["job_event"]["enum"] = list(EVENTS)
    return result


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` only compare) the definitions file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report a difference")
    parser.add_argument("--path", type=Path, default=DEFINITIONS, help="definitions.json")
    args = parser.parse_args(argv)

    current = args.path.read_text(encoding="utf-8")
    wanted = render(updated(json.loads(current)))
    if current == wanted:
        return 0
    if args.check:
        print(f"{args.path} is out of date; run {Path(__file__).name}", file=sys.stderr)
        return 1
    args.path.write_text(wanted, encoding="utf-8")
    print(f"rewrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
