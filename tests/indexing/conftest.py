"""Fixtures of the indexing tests: a catalog on two storage systems (``local``, ``mem``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacatalog.catalog import Catalog
from datacatalog.settings import Settings
from datacatalog.store import Store
from tests.support.indexing import METADATA, PIPELINE


@pytest.fixture(params=["local", "mem"])
def archive_system(request: pytest.FixtureRequest) -> str:
    """Name of the storage system jobs archive to."""
    return str(request.param)


@pytest.fixture
def catalog(store: Store, tmp_path: Path) -> Iterator[Catalog]:
    """A catalog on the test store, with a local and a memory storage system."""
    settings = Settings.load(
        env={},
        data_dir=tmp_path,
        secret="s" * 32,
        storage_systems={"mem": f"memory://dc-indexing-{uuid.uuid4().hex}"},
    )
    cat = Catalog(store, settings=settings)
    cat.pipelines.register(PIPELINE)
    cat.metadata.load(METADATA)
    yield cat
    memory = cat.storage.get("mem")
    if memory.fs.exists(memory.root):
        memory.fs.rm(memory.root, recursive=True)
