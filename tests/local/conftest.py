"""Fixtures of the managed local server's tests: temporary data dirs whose server stops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.local_server import require_mongod_binary, stop_local_server


@pytest.fixture
def local_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A temporary data dir whose managed server (if a test starts one) is stopped after."""
    require_mongod_binary()
    data_dir = tmp_path / "data"
    try:
        yield data_dir
    finally:
        stop_local_server(data_dir)


@pytest.fixture(scope="module")
def shared_local_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data dir with a started managed server, shared by a module's tests."""
    from datacatalog.local import LocalServer

    require_mongod_binary()
    data_dir = tmp_path_factory.mktemp("local") / "data"
    try:
        LocalServer(data_dir).ensure()
        yield data_dir
    finally:
        stop_local_server(data_dir)
