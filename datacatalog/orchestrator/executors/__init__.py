"""Executors: where the attempts of a workflow's tasks run.

* :class:`ThreadExecutor` — threads in the runner's process;
* :class:`ProcessExecutor` — one child process per attempt (a child that dies fails
  that attempt alone);
* :class:`DaskExecutor` — a Dask distributed cluster: a local one it starts and closes,
  or an existing scheduler it never shuts down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datacatalog.orchestrator.executors.base import Executor, Finished, Started
from datacatalog.orchestrator.executors.process import ProcessExecutor
from datacatalog.orchestrator.executors.thread import ThreadExecutor

if TYPE_CHECKING:
    from datacatalog.orchestrator.executors.dask import DaskExecutor

__all__ = ["DaskExecutor", "Executor", "Finished", "ProcessExecutor", "Started", "ThreadExecutor"]


def __getattr__(name: str) -> Any:
    # Dask is imported when first asked for: it is heavy and most runs do not need it.
    if name == "DaskExecutor":
        from datacatalog.orchestrator.executors.dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(name)
