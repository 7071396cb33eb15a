"""Fixtures of the fault suite (``make test-faults``): processes to break on purpose.

Fixtures:
    mongod: a :class:`~tests.faults.harness.ControlledMongod`, started, per test.
    service: a :class:`~tests.faults.harness.ServiceProcess` over ``mongod``, started.
    fast_timeout: the database timeout (seconds) the tests configure everywhere.

The runner faults (``test_runner_faults.py``) start a stage driver or a workflow runner
as a :class:`~tests.faults.harness.RunnerProcess` over ``mongod`` and kill it mid-run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import ControlledMongod, ServiceProcess

FAST_TIMEOUT = 1.5


@pytest.fixture
def fast_timeout() -> float:
    return FAST_TIMEOUT


@pytest.fixture
def mongod(tmp_path: Path) -> Iterator[ControlledMongod]:
    server = ControlledMongod(tmp_path / "mongod").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def service(
    mongod: ControlledMongod, tmp_path: Path, fast_timeout: float
) -> Iterator[ServiceProcess]:
    data_dir = tmp_path / "service"
    data_dir.mkdir()
    process = ServiceProcess(mongod.uri, data_dir, mongodb_timeout=fast_timeout).start()
    try:
        yield process
    finally:
        process.stop()
