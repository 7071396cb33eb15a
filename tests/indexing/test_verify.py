"""Tests for IndexingService.verify: re-reading indexed files and comparing them with records.

Runs on both store engines and on a local and a memory storage system (fixtures shared
with ``test_indexing``).
"""

from __future__ import annotations

import posixpath
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from datacatalog.catalog import Catalog
from datacatalog.errors import NotFoundError, StorageFailureError
from datacatalog.identifiers import file_uuid, typed_uuid
from datacatalog.indexing import IndexProgress
from datacatalog.jobs import Job
from datacatalog.storage import FileReader
from tests.support.indexing import OUTPUTS, make_job, put, put_outputs


def uuid_of(job: Job, relative: str) -> str:
    return file_uuid(f"{job.archive_path}/{relative}")


def remove(catalog: Catalog, job: Job, relative: str) -> None:
    system = catalog.storage.get(job.archive_system)
    system.remove_tree(f"{job.archive_path}/{relative}")


def indexed_job(catalog: Catalog, system: str, *, fixity: bool, transition: bool = True) -> Job:
    job = make_job(catalog, system)
    put_outputs(catalog, job)
    catalog.indexing.index(job.uuid, fixity=fixity, transition=transition)
    return catalog.jobs.get(job.uuid)


def fixity_dates(catalog: Catalog, job: Job) -> dict[str, datetime | None]:
    return {r.uuid: r.fixity_date for r in catalog.indexing.files(job.uuid)}


def test_untouched_files_verify_unchanged(catalog: Catalog, archive_system: str) -> None:
    job = indexed_job(catalog, archive_system, fixity=True)

    report = catalog.indexing.verify(job.uuid)

    assert report.ok
    assert sorted(report.unchanged) == sorted(uuid_of(job, r) for r in OUTPUTS)
    assert report.changed == report.missing == report.unhashed == []
    assert report.to_dict()["ok"] is True


def test_changed_and_missing_files_are_found(catalog: Catalog, archive_system: str) -> None:
    job = indexed_job(catalog, archive_system, fixity=True)
    before = fixity_dates(catalog, job)
    put(catalog, job, "out/b.csv", b"x,y\n1,3\n")  # same size, other content
    put(catalog, job, "result.json", b'{"ok": false}')  # other size
    remove(catalog, job, "out/a.png")

    report = catalog.indexing.verify(job.uuid)

    assert not report.ok
    assert sorted(report.changed) == sorted(
        [uuid_of(job, "out/b.csv"), uuid_of(job, "result.json")]
    )
    assert report.missing == [uuid_of(job, "out/a.png")]
    assert sorted(report.unchanged) == sorted(
        [uuid_of(job, "out/nested/c.fastq.gz"), uuid_of(job, "logs/run.log")]
    )
    after = fixity_dates(catalog, job)
    for key in report.unchanged:
        stamped, earlier = after[key], before[key]
        assert stamped is not None and earlier is not None and stamped >= earlier
    for key in report.changed + report.missing:
        assert after[key] == before[key]


def test_files_without_a_hash_are_compared_by_size(catalog: Catalog, archive_system: str) -> None:
    job = indexed_job(catalog, archive_system, fixity=False)
    put(catalog, job, "out/b.csv", b"x,y\n1,2\n3,4\n")
    put(catalog, job, "logs/run.log", b"STARTED\nFINISHED\n")  # same size: not detectable

    report = catalog.indexing.verify(job.uuid)

    assert report.changed == [uuid_of(job, "out/b.csv")]
    assert uuid_of(job, "logs/run.log") in report.unhashed
    assert len(report.unhashed) == 4
    assert report.unchanged == report.missing == []
    assert all(date is None for date in fixity_dates(catalog, job).values())


def test_the_outcome_is_recorded_when_the_state_allows_it(
    catalog: Catalog, archive_system: str
) -> None:
    job = indexed_job(catalog, archive_system, fixity=True, transition=False)
    assert job.state == "INDEXING"
    remove(catalog, job, "out/a.png")

    catalog.indexing.verify(job.uuid)

    last = catalog.jobs.history(job.uuid)[-1]
    assert last.name == "update"
    assert last.data == {"verify": {"unchanged": 4, "changed": 0, "missing": 1, "unhashed": 0}}


def test_a_finished_job_is_verified_without_an_event(catalog: Catalog, archive_system: str) -> None:
    job = indexed_job(catalog, archive_system, fixity=True)
    history = catalog.jobs.history(job.uuid)

    report = catalog.indexing.verify(job.uuid)

    assert report.ok
    assert catalog.jobs.history(job.uuid) == history
    assert catalog.jobs.get(job.uuid).state == "FINISHED"


def test_an_unreadable_file_counts_as_missing(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = indexed_job(catalog, archive_system, fixity=True)
    bad = f"{job.archive_path}/out/b.csv"
    original = FileReader.sha256  # what verification hashes with

    def sha256(self: FileReader, path: str, **kwargs: Any) -> str:
        if path == bad:
            raise StorageFailureError(f"cannot read {path!r}")
        return original(self, path, **kwargs)

    monkeypatch.setattr(FileReader, "sha256", sha256)

    report = catalog.indexing.verify(job.uuid)

    assert report.missing == [file_uuid(bad)]
    assert len(report.unchanged) == 4


def test_progress_covers_every_record(catalog: Catalog, archive_system: str) -> None:
    job = indexed_job(catalog, archive_system, fixity=True)
    seen: list[IndexProgress] = []

    catalog.indexing.verify(job.uuid, progress=seen.append)

    assert seen[0] == IndexProgress(0, 0, 0, 5)
    assert seen[-1] == IndexProgress(5, 5, 5, 5)


def test_files_outside_the_archive_path_are_verified(catalog: Catalog, archive_system: str) -> None:
    job = indexed_job(catalog, archive_system, fixity=True)
    system = catalog.storage.get(archive_system)
    elsewhere = "/shared/inputs/extra.txt"
    system.makedirs(posixpath.dirname(elsewhere))
    with system.fs.open(system.resolve(elsewhere), "wb") as stream:
        stream.write(b"extra")
    assert catalog.indexing.index_if_exists(elsewhere, job=job) is not None

    assert file_uuid(elsewhere) in catalog.indexing.verify(job.uuid).unhashed
    system.remove_tree(elsewhere)
    assert catalog.indexing.verify(job.uuid).missing == [file_uuid(elsewhere)]


def test_a_reset_job_has_nothing_to_verify(catalog: Catalog, archive_system: str) -> None:
    job = indexed_job(catalog, archive_system, fixity=True)
    catalog.jobs.reset(job.uuid, token=catalog.jobs.admin_token())

    report = catalog.indexing.verify(job.uuid)

    assert report.counts() == {"unchanged": 0, "changed": 0, "missing": 0, "unhashed": 0}
    assert report.ok


def test_an_unknown_job_is_not_found(catalog: Catalog) -> None:
    missing = typed_uuid("no such job", "pipelinejob")
    with pytest.raises(NotFoundError, match=missing):
        catalog.indexing.verify(missing)


def test_a_file_swapped_for_a_link_leading_out_of_the_root_is_not_read(
    catalog: Catalog, archive_system: str, tmp_path: Path
) -> None:
    system = catalog.storage.get(archive_system)
    if not system.is_local:
        pytest.skip("only local storage has symbolic links")
    job = indexed_job(catalog, archive_system, fixity=True)
    swapped = f"{job.archive_path}/out/b.csv"
    local = Path(system.resolve(swapped))
    outside = tmp_path / "outside" / "b.csv"
    outside.parent.mkdir()
    outside.write_bytes(local.read_bytes())  # the same bytes: only where they are differs
    local.unlink()
    local.symlink_to(outside)

    report = catalog.indexing.verify(job.uuid)

    assert file_uuid(swapped) in report.missing
    assert len(report.unchanged) == 4
