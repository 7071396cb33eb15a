"""Fixtures of the populate tests: the ``world`` here is the populate catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from datacatalog.store import Store
from tests.support.populate_catalog import World, make_world


@pytest.fixture
def world(store: Store, tmp_path: Path) -> World:
    return make_world(store, tmp_path)
