"""The stage driver: run pipeline code under a managed job (an operator life-cycle).

::

    from datacatalog.driver import Driver

    def execute(driver, payload):
        out = payload.output_entries[0].path          # the job's archive directory
        ...                                            # return False (or raise) to fail

    driver = Driver(job_uuid, execute=execute, catalog=catalog, index_outputs=True)
    driver.start()
    result = driver.wait_for_completion()              # DriverResult

Modules: :mod:`~datacatalog.driver.core` (:class:`Driver`, the life-cycle's public face),
its parts :mod:`~datacatalog.driver.starting` (the re-run decision, the lease, the first
event), :mod:`~datacatalog.driver.supervisor` (the callbacks under the stage timeout, on
the threads of :mod:`~datacatalog.driver.workers`), :mod:`~datacatalog.driver.ending`
(the terminal event, sent again until the lease ends), :mod:`~datacatalog.driver.notifications`
and the state they share (:mod:`~datacatalog.driver.state`); :mod:`~datacatalog.driver.values`
(result, notifications, payload), :mod:`~datacatalog.driver.entries` (what the payload
names), :mod:`~datacatalog.driver.options` (the arguments checked),
:mod:`~datacatalog.driver.source` (the job from the arguments or the environment).
``docs/runners.md`` documents the whole life-cycle.
"""

from __future__ import annotations

from datacatalog.driver import values
from datacatalog.driver.core import Driver
from datacatalog.driver.values import *  # noqa: F403 - re-exported: values.__all__

__all__ = ["Driver"]
__all__ += values.__all__
