"""Work for populate tests that runs in other processes (a pool, Dask workers): importable."""

from __future__ import annotations

from pathlib import Path

from datacatalog.populate import Task


def write_output(task: Task) -> bool:
    """Write one output file naming the entity; fail for entities whose id ends in ``!``."""
    if task.entity_id.endswith("!"):
        raise RuntimeError(f"failing on purpose for {task.entity_id}")
    (Path(task.archive_dir) / "out.txt").write_text(f"{task.entity_id} {task.parameters}\n")
    return True


SCRIPT = """#!/bin/sh
# Counts its runs (outside the archive), fails for FAIL_IDS, hangs for HANG_ID.
echo "$DATACATALOG_ENTITY_ID" >> "$COUNT_FILE"
case " $FAIL_IDS " in
  *" $DATACATALOG_ENTITY_ID "*) echo "failing on purpose" >&2; exit 3 ;;
esac
if [ "$DATACATALOG_ENTITY_ID" = "$HANG_ID" ]; then sleep 60; fi
echo "$DATACATALOG_ENTITY_ID $1" > "$DATACATALOG_ARCHIVE_PATH/out.txt"
"""


def write_script(directory: Path) -> Path:
    """The counting command of :data:`SCRIPT`, executable, in ``directory``."""
    path = directory / "work.sh"
    path.write_text(SCRIPT)
    path.chmod(0o755)
    return path
