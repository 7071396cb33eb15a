"""Tests for the embedded local catalog: persistence, sharing between processes, crashes."""

from __future__ import annotations

import json
import multiprocessing
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import filelock
import pytest

from datacatalog.errors import (
    ConflictError,
    DataCatalogError,
    InvalidRequestError,
    StorageFailureError,
    UnavailableError,
)
from datacatalog.identifiers import typed_uuid
from datacatalog.store import Store, Upsert, connect

WORKER_DOCS = 50


def ref(key: str, /, **extra: Any) -> dict[str, Any]:
    """A valid ``reference`` document."""
    return {"uuid": typed_uuid(key, "reference"), "uri": f"s3://bucket/{key}", **extra}


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    return tmp_path / "catalog.json"


def open_catalog(path: Path) -> Store:
    return connect("embedded://" + str(path))


def uuids(store: Store) -> set[str]:
    return {d["uuid"] for d in store.find("reference", {})}


def test_data_persists_across_connects(catalog_file: Path) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    doc = ref("kept", when=when, big=2**40, ratio=0.25, text="é✓", nested={"l": [1, None]})
    first = open_catalog(catalog_file)
    inserted = first.insert("reference", doc)
    first.close()
    assert catalog_file.is_file()
    second = open_catalog(catalog_file)
    assert second.get("reference", {"uuid": doc["uuid"]}) == inserted
    # The unique index exists in the reloaded catalog too.
    with pytest.raises(ConflictError):
        second.insert("reference", doc)
    assert second.count("reference", {}) == 1


def test_updates_and_deletes_persist(catalog_file: Path) -> None:
    store = open_catalog(catalog_file)
    store.insert("reference", ref("a"))
    store.insert("reference", ref("b"))
    store.update("reference", {"uuid": typed_uuid("a", "reference")}, {"$set": {"name": "A"}})
    store.delete_many("reference", {"uuid": typed_uuid("b", "reference")})
    fresh = open_catalog(catalog_file)
    [only] = fresh.find("reference", {})
    assert only["name"] == "A"
    assert only["_properties"]["revision"] == 1


def test_snapshot_format(catalog_file: Path) -> None:
    open_catalog(catalog_file).insert("reference", ref("f"))
    snapshot = json.loads(catalog_file.read_text(encoding="utf-8"))
    assert snapshot["format"] == "datacatalog-embedded/1"
    assert len(snapshot["collections"]["references"]) == 1


def test_two_stores_interleaving_never_lose_a_write(catalog_file: Path) -> None:
    a = open_catalog(catalog_file)
    b = open_catalog(catalog_file)
    a.insert("reference", ref("from-a-1"))
    b.insert("reference", ref("from-b-1"))
    a.insert("reference", ref("from-a-2"))
    b.update("reference", {"uuid": typed_uuid("from-a-1", "reference")}, {"$set": {"seen": "b"}})
    a.insert("reference", ref("from-a-3"))
    keys = ("from-a-1", "from-b-1", "from-a-2", "from-a-3")
    expected = {typed_uuid(k, "reference") for k in keys}
    assert uuids(a) == uuids(b) == expected
    fresh = open_catalog(catalog_file)
    assert uuids(fresh) == expected
    changed = fresh.get("reference", {"uuid": typed_uuid("from-a-1", "reference")})
    assert changed is not None and changed["seen"] == "b"


def test_conflict_seen_across_stores(catalog_file: Path) -> None:
    a = open_catalog(catalog_file)
    b = open_catalog(catalog_file)
    a.insert("reference", ref("same"))
    with pytest.raises(ConflictError):
        b.insert("reference", ref("same"))
    _, created = b.insert_if_absent("reference", ref("same"))
    assert created is False


def _insert_many(path: str, worker: int, barrier: Any) -> None:
    """Child process: wait for the other, then insert WORKER_DOCS documents one by one."""
    store = connect("embedded://" + path)
    barrier.wait(timeout=60)
    for i in range(WORKER_DOCS):
        store.insert("reference", ref(f"worker-{worker}-{i}", worker=worker))


def test_two_processes_inserting_concurrently(catalog_file: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=_insert_many, args=(str(catalog_file), n, barrier)) for n in (1, 2)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]
    store = open_catalog(catalog_file)
    assert store.count("reference", {}) == 2 * WORKER_DOCS
    assert store.count("reference", {"worker": 1}) == WORKER_DOCS
    assert store.count("reference", {"worker": 2}) == WORKER_DOCS


def _die_while_saving(path: str) -> None:
    """Child process: crash (no cleanup at all) between writing the new file and renaming it."""
    store = connect("embedded://" + path)

    def crash(*args: Any) -> None:
        os._exit(3)

    os.replace = crash  # type: ignore[assignment]
    store.insert("reference", ref("never-saved"))


def test_process_killed_while_saving_leaves_old_snapshot(catalog_file: Path) -> None:
    open_catalog(catalog_file).insert("reference", ref("before"))
    before = catalog_file.read_bytes()
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_die_while_saving, args=(str(catalog_file),))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 3
    assert catalog_file.read_bytes() == before
    store = open_catalog(catalog_file)
    assert uuids(store) == {typed_uuid("before", "reference")}
    store.insert("reference", ref("after"))
    assert open_catalog(catalog_file).count("reference", {}) == 2


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_save_keeps_old_snapshot(
    catalog_file: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    store = open_catalog(catalog_file)
    store.insert("reference", ref("saved"))
    before = catalog_file.read_bytes()

    def fail(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, failing, fail)
        with pytest.raises(StorageFailureError) as info:
            store.insert("reference", ref("lost"))
    assert str(catalog_file) in str(info.value)
    assert "No space left on device" in str(info.value)
    assert catalog_file.read_bytes() == before
    assert json.loads(before)["format"] == "datacatalog-embedded/1"
    assert [p.name for p in catalog_file.parent.iterdir() if p.name.endswith(".tmp")] == []
    assert uuids(open_catalog(catalog_file)) == {typed_uuid("saved", "reference")}
    # The failed write is not visible in the store that made it either, and may be retried.
    assert uuids(store) == {typed_uuid("saved", "reference")}
    store.insert("reference", ref("lost"))
    assert open_catalog(catalog_file).count("reference", {}) == 2


def test_first_save_failing_leaves_nothing(
    catalog_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_catalog(catalog_file)

    def fail(*args: Any) -> None:
        raise OSError(13, "Permission denied")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", fail)
        with pytest.raises(StorageFailureError):
            store.insert("reference", ref("first"))
    assert not catalog_file.exists()
    assert store.count("reference", {}) == 0


def test_partial_bulk_write_is_saved_like_on_a_server(catalog_file: Path) -> None:
    store = open_catalog(catalog_file)
    store.insert("experiment", {"uuid": typed_uuid("e1", "experiment"), "experiment_id": "e1"})
    clash = typed_uuid("e1-twin", "experiment")
    fine = typed_uuid("e2", "experiment")
    ops = [
        Upsert({"uuid": clash}, {"$set": {"experiment_id": "e1"}, "$setOnInsert": {"uuid": clash}}),
        Upsert({"uuid": fine}, {"$set": {"experiment_id": "e2"}, "$setOnInsert": {"uuid": fine}}),
    ]
    with pytest.raises(ConflictError):
        store.bulk_upsert("experiment", ops)
    assert store.count("experiment", {}) == open_catalog(catalog_file).count("experiment", {})


def test_lock_timeout(catalog_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_catalog(catalog_file)
    store.insert("reference", ref("existing"))
    monkeypatch.setenv("DATACATALOG_LOCK_TIMEOUT", "0.2")
    waiting = open_catalog(catalog_file)
    holder = filelock.FileLock(str(catalog_file) + ".lock")
    with holder:
        with pytest.raises(UnavailableError) as info:
            waiting.insert("reference", ref("blocked"))
        with pytest.raises(UnavailableError):
            waiting.count("reference", {})
    message = str(info.value)
    assert "busy" in message
    assert str(catalog_file) in message
    assert "0.2 s" in message
    assert "nothing was written" in message
    assert open_catalog(catalog_file).count("reference", {}) == 1
    waiting.insert("reference", ref("after-release"))
    assert open_catalog(catalog_file).count("reference", {}) == 2


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_bad_lock_timeout_refused(
    catalog_file: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DATACATALOG_LOCK_TIMEOUT", value)
    with pytest.raises(InvalidRequestError, match="DATACATALOG_LOCK_TIMEOUT") as info:
        open_catalog(catalog_file)
    assert repr(value) in str(info.value)


def test_not_a_catalog_file(catalog_file: Path) -> None:
    catalog_file.write_text('{"something": "else"}', encoding="utf-8")
    with pytest.raises(DataCatalogError, match="is not an embedded catalog"):
        open_catalog(catalog_file).count("reference", {})
    catalog_file.write_text("{half a fi", encoding="utf-8")
    with pytest.raises(DataCatalogError, match="cannot read the embedded catalog"):
        open_catalog(catalog_file).count("reference", {})


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="needs a file path"):
        connect("embedded://")
    with pytest.raises(InvalidRequestError, match="is a directory"):
        connect("embedded://" + str(tmp_path))


def test_missing_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "catalog.json"
    open_catalog(path).insert("reference", ref("x"))
    assert path.is_file()


def test_database_name(catalog_file: Path) -> None:
    assert open_catalog(catalog_file).database_name == "catalog"
    assert connect("embedded://" + str(catalog_file), database="other").database_name == "other"
    assert str(catalog_file) in open_catalog(catalog_file).description


def test_a_catalog_that_cannot_be_created_is_a_storage_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir should be", encoding="utf-8")
    store = connect("embedded://" + str(blocker / "sub" / "catalog.json"))
    with pytest.raises(StorageFailureError, match="cannot open the embedded catalog"):
        store.count("job", {})
