"""Orchestrator events: blinker signals for the life of an execution and of its tasks.

==================================  ==================================================
signal                              sent when (keyword arguments)
==================================  ==================================================
``start_workflow_signal``           the execution starts (``execution``)
``on_resume_workflow_signal``       a cancelled or failed execution resumes (``execution``)
``on_cancelling_workflow_signal``   cancellation was requested (``execution``)
``on_cancelled_workflow_signal``    the execution ended cancelled (``execution``)
``on_success_workflow_signal``      the execution succeeded (``execution``)
``on_failure_workflow_signal``      the execution failed (``execution``, ``error``)
``sent_task_signal``                a task's attempt went to the executor (``task``)
``start_task_signal``               an attempt began on its worker (``task``, ``attempt``)
``on_success_task_signal``          an attempt succeeded (``task``, ``outcome``)
``on_failure_task_signal``          an attempt failed (``task``, ``outcome``, ``retry``)
==================================  ==================================================

The sender is the execution's run (its ``execution`` property is the record). The
runner hands each signal to its recorder (:mod:`.recorder`) before it sends it, so a
subscriber sees the record as it is stored (a task's write may still be on its way from
the recorder's writer thread; it lands before the execution ends). Subscribe with
``events.on_success_task_signal.connect(handler)``; a subscriber that raises is logged
and never changes the execution.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

start_workflow_signal = _signals.signal("start_workflow_signal")
on_resume_workflow_signal = _signals.signal("on_resume_workflow_signal")
on_cancelling_workflow_signal = _signals.signal("on_cancelling_workflow_signal")
on_cancelled_workflow_signal = _signals.signal("on_cancelled_workflow_signal")
on_success_workflow_signal = _signals.signal("on_success_workflow_signal")
on_failure_workflow_signal = _signals.signal("on_failure_workflow_signal")

sent_task_signal = _signals.signal("sent_task_signal")
start_task_signal = _signals.signal("start_task_signal")
on_success_task_signal = _signals.signal("on_success_task_signal")
on_failure_task_signal = _signals.signal("on_failure_task_signal")

WORKFLOW_SIGNALS = (
    start_workflow_signal,
    on_resume_workflow_signal,
    on_cancelling_workflow_signal,
    on_cancelled_workflow_signal,
    on_success_workflow_signal,
    on_failure_workflow_signal,
)
TASK_SIGNALS = (sent_task_signal, start_task_signal, on_success_task_signal, on_failure_task_signal)
