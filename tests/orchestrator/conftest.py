"""Fixtures of the orchestrator tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
