"""Fixtures of the command-line tests: the command line on the current engine.

``dc`` and ``world`` run it in process (click's CliRunner), on an empty catalog and on
one holding the example pipeline and metadata; ``dc_any`` runs it as a subprocess.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import CLI, EXAMPLES, Runner, make_runner


@pytest.fixture
def dc(
    engine: str, tmp_path: Path, database_name: str, request: pytest.FixtureRequest
) -> Iterator[CLI]:
    """The command line on the current engine, with an empty catalog."""
    data_dir = tmp_path / "data"
    if engine == "memory":
        yield CLI(["--data-dir", str(data_dir)], data_dir)
        return
    from datacatalog.store import connect

    uri = request.getfixturevalue("mongo_uri")
    yield CLI(
        ["--data-dir", str(data_dir), "--mongodb-uri", uri, "--database", database_name],
        data_dir,
    )
    store = connect(uri, database=database_name)
    try:
        store.drop_database()
    finally:
        store.close()


@pytest.fixture
def world(dc: CLI) -> CLI:
    """The command line on a catalog holding the example pipeline and metadata."""
    dc.json("pipelines", "register", str(EXAMPLES / "pipeline.json"))
    dc.json("metadata", "load", str(EXAMPLES / "metadata.yaml"))
    return dc


@pytest.fixture
def dc_any(
    engine: str, tmp_path: Path, database_name: str, request: pytest.FixtureRequest
) -> Iterator[Runner]:
    """The command on the current engine (embedded catalog, or the real server)."""
    if engine == "memory":
        yield make_runner(tmp_path)
        return
    uri = request.getfixturevalue("mongo_uri")
    runner = make_runner(
        tmp_path, {"DATACATALOG_MONGODB_URI": uri, "DATACATALOG_MONGODB_DATABASE": database_name}
    )
    yield runner
    with runner.catalog() as catalog:
        catalog.store.drop_database()
