"""Fixtures of the orchestrator tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import orchestrator_ops as ops


@pytest.fixture
def key() -> Iterator[str]:
    """A fresh name for the calls, barriers and gates of :mod:`tests.support.orchestrator_ops`,
    forgotten when the test ends."""
    name = uuid.uuid4().hex
    yield name
    ops.CALLS.pop(name, None)
    ops.BARRIERS.pop(name, None)
    ops.GATES.pop(name, None)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A client of a local Dask cluster (two worker processes, no retried task), one per
    test module."""
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
