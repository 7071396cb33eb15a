"""The workflow orchestrator: operations in a graph, run with retries and cancellation.

Its public surface is ARIA's (``aria.orchestrator``; docs/workflows.md), over the job
catalog: every execution belongs to a job and drives its state (``run`` → ``finish`` /
``fail``).

* :mod:`.decorators` — ``@operation`` and ``@workflow``;
* :mod:`.events` — the orchestrator's signals;
* :mod:`.exceptions` — its errors;
* :mod:`.plugin` — ``PluginManager``: wagons and declared workflows;
* :mod:`.workflow_runner` — ``WorkflowRunner``: one execution on one job; it runs the
  :mod:`.loop`, asks the :mod:`.scheduler` what is ready and has its :mod:`.recorder`
  write what each signal means;
* :mod:`.executors` — threads, processes, Dask distributed.
"""

from __future__ import annotations

from datacatalog.orchestrator import decorators, events, exceptions
from datacatalog.orchestrator.decorators import operation, workflow

__all__ = ["decorators", "events", "exceptions", "operation", "workflow"]
