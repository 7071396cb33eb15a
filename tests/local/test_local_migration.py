"""Importing a ``catalog.json`` from the JSON engine into the managed server.

One managed server is shared by the module (each test uses its own database name); every
test writes a real JSON catalog through the JSON engine first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from datacatalog.catalog import Catalog
from datacatalog.errors import ConflictError, DataCatalogError
from datacatalog.settings import Settings
from datacatalog.store import connect, migrate
from datacatalog.store.local import local_uri

pytestmark = pytest.mark.local_server


def json_catalog(data_dir: Path, database: str, pipelines: int) -> dict[str, int]:
    """Write a JSON catalog with ``pipelines`` pipelines and some metadata; its counts."""
    settings = Settings.load(
        env={"DATACATALOG_DATA_DIR": str(data_dir), "DATACATALOG_LOCAL_ENGINE": "json"},
        mongodb_database=database,
    )
    with Catalog.open(settings=settings) as catalog:
        for i in range(pipelines):
            catalog.pipelines.register({"id": f"p{i}", "components": [{"image": "ex/a:1"}]})
        catalog.metadata.load(
            [{"experiment_id": "exp-1"}, {"sample_id": "s-1", "experiment_id": "exp-1"}]
        )
        return {
            kind: catalog.store.count(kind, {}) for kind in ("pipeline", "experiment", "sample")
        }


def server_counts(data_dir: Path, database: str) -> dict[str, int]:
    with connect(local_uri(data_dir), database=database) as store:
        return {kind: store.count(kind, {}) for kind in ("pipeline", "experiment", "sample")}


def kept_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("catalog.json.migrated-*"))


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    return "m_" + request.node.name[:40].replace("[", "_").replace("]", "_")


@pytest.fixture
def clean(shared_local_dir: Path) -> Path:
    """The shared data dir with no JSON catalog or kept copies left by an earlier test."""
    for path in [*shared_local_dir.glob("catalog.json*")]:
        path.unlink()
    return shared_local_dir


def test_round_trip_imports_once_verifies_and_keeps_the_file(clean: Path, database: str) -> None:
    expected = json_catalog(clean, database, 30)
    original = (clean / "catalog.json").read_bytes()
    assert (
        server_counts(clean, database) == expected == {"pipeline": 30, "experiment": 1, "sample": 1}
    )
    assert not (clean / "catalog.json").exists()
    [kept] = kept_files(clean)
    assert kept.read_bytes() == original  # nothing lost: the old file is kept as it was
    # Idempotent: opening again imports nothing more.
    assert server_counts(clean, database) == expected
    assert kept_files(clean) == [kept]


def test_an_interrupted_import_starts_over(
    clean: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "BATCH", 10)
    expected = json_catalog(clean, database, 25)  # three batches of pipelines
    calls: list[int] = []
    real = migrate._insert_batch

    def interrupted(collection: Any, documents: list[Any]) -> None:
        calls.append(len(documents))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies between two batches
        real(collection, documents)

    monkeypatch.setattr(migrate, "_insert_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        connect(local_uri(clean), database=database)
    assert (clean / "catalog.json").exists() and not kept_files(clean)
    monkeypatch.setattr(migrate, "_insert_batch", real)

    assert server_counts(clean, database) == expected  # no duplicates, nothing missing
    assert len(kept_files(clean)) == 1


def test_a_database_already_holding_other_data_is_not_mixed(clean: Path, database: str) -> None:
    json_catalog(clean, database + "_src", 1)
    # Import the file into a database that already has its own experiments.
    (clean / "catalog.json").rename(clean / "catalog.json.tmp")
    with Catalog.open(
        settings=Settings.load(env={"DATACATALOG_DATA_DIR": str(clean)}, mongodb_database=database)
    ) as catalog:
        catalog.metadata.load([{"experiment_id": "already-here"}])
    (clean / "catalog.json.tmp").rename(clean / "catalog.json")
    with pytest.raises(ConflictError, match="already holds experiments"):
        connect(local_uri(clean), database=database)
    assert (clean / "catalog.json").exists()  # kept for the user to decide


def test_a_file_that_is_not_a_json_catalog_is_refused(clean: Path, database: str) -> None:
    (clean / "catalog.json").write_text('{"format": "something else"}')
    with pytest.raises(DataCatalogError, match="is not an embedded catalog"):
        connect(local_uri(clean), database=database)
    assert (clean / "catalog.json").exists()
    (clean / "catalog.json").unlink()
