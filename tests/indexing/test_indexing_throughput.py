"""Tests for the shape that makes indexing fast: validations, writes and parallel hashing.

No test here measures time. They check what the speed rests on: one compiled
validation per written file record, one bulk write per batch (and no other write but
the job's two events), and that hashing on a thread pool gives exactly the records,
errors and verify reports that hashing in one thread gives, including files that
cannot be read and files that change or vanish under the indexer.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Any

import pytest

from datacatalog.catalog import Catalog
from datacatalog.errors import InvalidRequestError, StorageFailureError
from datacatalog.identifiers import typed_uuid
from datacatalog.indexing import IndexReport
from datacatalog.jobs import Job
from datacatalog.schemas import compiled
from datacatalog.storage import FileReader
from datacatalog.store import Store, Upsert
from tests.support.indexing import make_job, put

FILES = 23
BATCH = 5

_WRITES = ("insert", "insert_if_absent", "update", "update_many", "bulk_upsert", "delete_many")


def put_many(catalog: Catalog, job: Job, count: int = FILES) -> list[str]:
    """Write ``count`` small distinct files under the job's archive path."""
    return [
        put(catalog, job, f"part{i % 3}/file{i:03d}.txt", f"content {i}\n".encode() * (i + 1))
        for i in range(count)
    ]


def spy_writes(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the store's write calls by method name (from any thread)."""
    calls: Counter[str] = Counter()
    lock = threading.Lock()
    for name in _WRITES:
        method = getattr(catalog.store, name)

        def counted(*args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            with lock:
                calls[_name] += 1
            return _method(*args, **kwargs)

        monkeypatch.setattr(catalog.store, name, counted)
    return calls


# -- validations and round trips ---------------------------------------------------------


def test_one_compiled_validation_per_indexed_file(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    put_many(catalog, job)
    checks: list[str] = []
    in_bulk = threading.local()
    original_check = compiled.check
    bulk_upsert = catalog.store.bulk_upsert

    def check(validator: Any, instance: Any) -> bool:
        if getattr(in_bulk, "active", False):
            checks.append("file")
        return original_check(validator, instance)

    def bulk(*args: Any, **kwargs: Any) -> Any:
        in_bulk.active = True
        try:
            return bulk_upsert(*args, **kwargs)
        finally:
            in_bulk.active = False

    monkeypatch.setattr(compiled, "check", check)
    monkeypatch.setattr(catalog.store, "bulk_upsert", bulk)

    report = catalog.indexing.index(job.uuid, fixity=True, transition=True, batch_size=BATCH)

    assert report.written == FILES
    assert len(checks) == FILES


def test_each_batch_is_one_bulk_write_and_nothing_else_is_written(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    put_many(catalog, job)
    writes = spy_writes(catalog, monkeypatch)

    report = catalog.indexing.index(job.uuid, fixity=True, transition=True, batch_size=BATCH)

    batches = math.ceil(FILES / BATCH)
    assert report.batches == batches  # round trips the bulk writes took
    # The two other writes are the job's events: index, then indexed.
    assert writes == Counter({"bulk_upsert": batches, "update": 2})


def test_an_update_is_validated_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from datacatalog import schemas

    calls: list[Any] = []
    original_check = compiled.check

    def check(validator: Any, instance: Any) -> bool:
        calls.append(instance)
        return original_check(validator, instance)

    monkeypatch.setattr(compiled, "check", check)
    schemas.validate_update(
        "file",
        {
            "$set": {"name": "/a/b.txt", "level": "1", "size": 3},
            "$setOnInsert": {"sha256": None, "note": None},
            "$addToSet": {"generated_by": {"$each": ["107a90b7-f083-5167-a63d-41a3bf278bf8"]}},
        },
    )
    assert len(calls) == 1


# -- parallel hashing gives the serial records -------------------------------------------


def _outcome(catalog: Catalog, job: Job, report: IndexReport) -> dict[str, Any]:
    """What a run produced, without the dates that differ between runs."""
    records = {
        r.name: (r.size, r.sha256, r.level, r.type, sorted(r.generated_by))
        for r in catalog.indexing.files(job.uuid)
    }
    return {
        "files": report.files,
        "errors": report.errors,
        "counts": (report.seen, report.matched, report.written, report.batches),
        "records": records,
    }


def test_thread_pool_hashing_gives_the_serial_records(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    paths = put_many(catalog, job)
    unreadable, vanishing, changing = paths[2], paths[8], paths[17]
    original = FileReader.sha256  # what indexing hashes with
    system = catalog.storage.get(job.archive_system)

    def sha256(self: FileReader, path: str, **kwargs: Any) -> str:
        if path == unreadable:
            raise StorageFailureError(f"cannot read {path!r}: permission denied")
        if path == vanishing:
            system.fs.rm(system.resolve(path))  # gone between the listing and the read
        if path == changing:
            with system.fs.open(system.resolve(path), "wb") as stream:
                stream.write(b"rewritten while being indexed")
        return original(self, path, **kwargs)

    monkeypatch.setattr(FileReader, "sha256", sha256)

    outcomes = []
    for workers in (1, 4):
        # Both runs start from the same files, and with no records.
        put_many(catalog, job)
        catalog.store.delete_many("file", {"generated_by": job.uuid})
        report = catalog.indexing.index(
            job.uuid, fixity=True, transition=True, batch_size=BATCH, hash_workers=workers
        )
        outcomes.append(_outcome(catalog, job, report))

    serial, parallel = outcomes
    assert parallel == serial
    assert [path for path, _message in serial["errors"]] == [unreadable, vanishing]
    assert serial["counts"] == (FILES, FILES, FILES - 2, math.ceil(FILES / BATCH))
    size, digest, *_rest = serial["records"][changing]
    # The size is the listing's; the checksum is of what was read.
    assert size != len(b"rewritten while being indexed")
    assert digest is not None


def test_thread_pool_verify_gives_the_serial_report(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    paths = put_many(catalog, job)
    catalog.indexing.index(job.uuid, fixity=True, transition=True)
    system = catalog.storage.get(archive_system)
    system.fs.rm(system.resolve(paths[3]))
    with system.fs.open(system.resolve(paths[5]), "wb") as stream:
        stream.write(b"changed")
    with system.fs.open(system.resolve(paths[9]), "wb") as stream:
        stream.write(b"same size, other bytes".ljust(len(b"content 9\n") * 10, b"."))

    serial = catalog.indexing.verify(job.uuid, hash_workers=1)
    parallel = catalog.indexing.verify(job.uuid, hash_workers=4)

    assert parallel == serial
    assert serial.counts() == {"unchanged": FILES - 3, "changed": 2, "missing": 1, "unhashed": 0}


@pytest.mark.parametrize("workers", [0, -1, 65, 2.5, True, "4"])
def test_a_bad_number_of_hash_workers_is_refused_before_anything_happens(
    catalog: Catalog, archive_system: str, workers: Any
) -> None:
    job = make_job(catalog, archive_system)
    put_many(catalog, job, 3)

    with pytest.raises(InvalidRequestError, match="hash_workers must be an integer from 1 to 64"):
        catalog.indexing.index(job.uuid, fixity=True, hash_workers=workers)
    with pytest.raises(InvalidRequestError, match="hash_workers"):
        catalog.indexing.verify(job.uuid, hash_workers=workers)

    assert catalog.jobs.get(job.uuid).state == "FINISHED"
    assert catalog.store.count("file", {}) == 0
    assert [e.name for e in catalog.jobs.history(job.uuid)] == ["create", "run", "finish"]


# -- first runs insert, later runs upsert ------------------------------------------------


def _without_dates(doc: dict[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in doc["_properties"].items() if not k.endswith("_date")}
    return {
        **{k: v for k, v in doc.items() if k not in ("fixity_date", "modified_date")},
        "_properties": props,
    }


def test_inserting_new_records_stores_what_upserting_them_would(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system)
    put_many(catalog, job)
    first = catalog.indexing.index(job.uuid, fixity=True, transition=True, batch_size=BATCH)
    inserted = {d["uuid"]: _without_dates(d) for d in catalog.store.find("file", {})}

    catalog.store.delete_many("file", {"generated_by": job.uuid})
    assert catalog.store.count("file", {}) == 0
    # The same records written as plain upserts, one round trip per batch.
    index = catalog.indexing
    original = catalog.store.bulk_upsert

    def upserts_only(*args: Any, **kwargs: Any) -> Any:
        kwargs["expect_new"] = False
        return original(*args, **kwargs)

    catalog.store.bulk_upsert = upserts_only  # type: ignore[method-assign]
    try:
        index.index(job.uuid, fixity=True, transition=True, batch_size=BATCH)
    finally:
        del catalog.store.bulk_upsert
    upserted = {d["uuid"]: _without_dates(d) for d in catalog.store.find("file", {})}

    assert first.batches == math.ceil(FILES / BATCH)
    assert inserted == upserted
    assert all(d["_properties"]["revision"] == 1 for d in inserted.values())


def test_a_second_run_pays_one_more_round_trip_for_its_first_batch_only(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system)
    put_many(catalog, job)
    batches = math.ceil(FILES / BATCH)
    first = catalog.indexing.index(job.uuid, fixity=True, transition=True, batch_size=BATCH)
    records = {d["uuid"]: _without_dates(d) for d in catalog.store.find("file", {})}

    second = catalog.indexing.index(job.uuid, fixity=True, transition=True, batch_size=BATCH)
    again = {d["uuid"]: _without_dates(d) for d in catalog.store.find("file", {})}

    assert (first.batches, second.batches) == (batches, batches + 1)
    assert set(again) == set(records)
    assert all(doc["_properties"]["revision"] == 2 for doc in again.values())
    assert {k: {**v, "_properties": {}} for k, v in again.items()} == {
        k: {**v, "_properties": {}} for k, v in records.items()
    }


def test_a_bulk_of_new_and_stored_documents_inserts_some_and_upserts_the_rest(
    store: Store,
) -> None:
    def upsert(n: int) -> Upsert:
        name = f"ref-{n}"
        return Upsert(
            {"uuid": typed_uuid(name, "reference")},
            {
                "$set": {"name": name, "uri": f"https://example.org/{n}"},
                "$setOnInsert": {"uuid": typed_uuid(name, "reference")},
            },
        )

    store.bulk_upsert("reference", [upsert(n) for n in range(3)])
    before = {d["uuid"]: d for d in store.find("reference", {})}

    result = store.bulk_upsert("reference", [upsert(n) for n in range(5)], expect_new=True)

    assert (result.upserted, result.matched, result.batches) == (2, 3, 2)
    after = {d["uuid"]: d for d in store.find("reference", {})}
    assert len(after) == 5
    for uuid, doc in before.items():
        assert after[uuid]["_properties"]["revision"] == doc["_properties"]["revision"] + 1
    new = [d for uuid, d in after.items() if uuid not in before]
    assert all(d["_properties"]["revision"] == 1 for d in new)
    assert all({"name", "uri", "uuid", "_properties"} == set(d) for d in after.values()), after
