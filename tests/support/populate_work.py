"""Work for populate tests that runs in other processes (a pool, Dask workers): importable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datacatalog.orchestrator.decorators import operation, workflow
from datacatalog.populate import Task


def write_output(task: Task) -> bool:
    """Write one output file naming the entity; fail for entities whose id ends in ``!``."""
    if task.entity_id.endswith("!"):
        raise RuntimeError(f"failing on purpose for {task.entity_id}")
    (Path(task.archive_dir) / "out.txt").write_text(f"{task.entity_id} {task.parameters}\n")
    return True


SCRIPT = """#!/bin/sh
# Counts its runs (outside the archive), fails for FAIL_IDS, hangs for HANG_ID.
# POPULATE_TAG marks that this populate has planned (it runs work only after planning);
# a job of FAIL_IDS fails only once every populate named in WAIT_FOR has (at most 60 s).
echo "$DATACATALOG_ENTITY_ID" >> "$COUNT_FILE"
if [ -n "$POPULATE_TAG" ]; then : > "$COUNT_FILE.$POPULATE_TAG"; fi
case " $FAIL_IDS " in
  *" $DATACATALOG_ENTITY_ID "*)
    for tag in $WAIT_FOR; do
      n=0
      while [ ! -e "$COUNT_FILE.$tag" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n + 1)); done
    done
    echo "failing on purpose" >&2; exit 3 ;;
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


@operation(toolbelt=True)
def write_entity(ctx: Any, toolbelt: Any, entity_id: str) -> None:
    """An operation writing the entity's id into the job's archive directory."""
    if entity_id.endswith("!"):
        raise RuntimeError(f"failing on purpose for {entity_id}")
    toolbelt.output_path("entity.txt").write_text(entity_id)


@workflow
def per_entity(ctx: Any, graph: Any, entity_id: str, note: str = "") -> None:
    """One task per job: writes its entity's id."""
    graph.add(write_entity, entity_id=entity_id)


@operation(toolbelt=True)
def write_unless_flagged(ctx: Any, toolbelt: Any, entity_id: str, flags: str) -> None:
    """Fail while a file named after the entity exists in the folder ``flags``."""
    if (Path(flags) / entity_id).exists():
        raise RuntimeError(f"failing on purpose for {entity_id}")
    toolbelt.output_path("entity.txt").write_text(entity_id)


@workflow
def flagged(ctx: Any, graph: Any, entity_id: str, flags: str) -> None:
    """One task per job, failing for the entities flagged in the folder ``flags``."""
    graph.add(write_unless_flagged, entity_id=entity_id, flags=flags)
