"""Tests for datacatalog.indexing: listing, matching, fixity, derivation, batching, failures.

Every test runs on both store engines (``store`` fixture) and, through ``catalog``, on
two storage systems: a local directory (``local``) and fsspec's memory filesystem
(``mem``). Tests about symbolic links run on the local system only.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from datacatalog.catalog import Catalog
from datacatalog.errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    StorageFailureError,
)
from datacatalog.identifiers import file_uuid, typed_uuid
from datacatalog.indexing import (
    FileRecord,
    IndexingService,
    IndexProgress,
    UnresolvedReference,
    infer_type,
)
from datacatalog.indexrequests import (
    ArchiveIndexRequest,
    InvalidIndexingRequest,
    ProductIndexRequest,
)
from datacatalog.jobs import Job
from datacatalog.storage import (
    SKIP_SYMLINK_OUTSIDE_ROOT,
    FileReader,
    StorageRegistry,
    StorageSystem,
)
from tests.support.indexing import (
    OUTPUTS,
    make_job,
    put,
    put_outputs,
)

# -- fixtures and helpers --------------------------------------------------------------


def record_of(catalog: Catalog, job: Job, relative: str) -> FileRecord:
    """The file record of ``relative`` under the job's archive path."""
    return catalog.indexing.file(f"{job.archive_path}/{relative}")


def file_count(catalog: Catalog) -> int:
    return catalog.store.count("file", {})


def events(catalog: Catalog, job: Job) -> list[str]:
    return [entry.name for entry in catalog.jobs.history(job.uuid)]


# -- indexing ----------------------------------------------------------------------------


def test_index_without_fixity_writes_one_record_per_file(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)

    report = catalog.indexing.index(job.uuid, transition=True)

    assert (report.seen, report.matched, report.written) == (5, 5, 5)
    assert report.state == "FINISHED"
    assert report.errors == [] and report.skipped == []
    assert report.batches == 1
    expected = sorted(f"{job.archive_path}/{r}" for r in OUTPUTS)
    assert sorted(report.files) == sorted(file_uuid(p) for p in expected)
    records = catalog.indexing.files(job.uuid)
    assert [r.name for r in records] == expected
    for record in records:
        relative = record.name[len(job.archive_path) + 1 :]
        assert record.uuid == file_uuid(record.name)
        assert record.storage_system == archive_system
        assert record.size == len(OUTPUTS[relative])
        assert record.sha256 is None and record.fixity_date is None
        assert record.level == "1"
        assert record.generated_by == [job.uuid]
        assert record.child_of == job.child_of
        assert record.derived_from == [] and record.derived_using == []
        assert record.modified_date is not None
    assert catalog.jobs.get(job.uuid).state == "FINISHED"
    assert events(catalog, job)[-2:] == ["index", "indexed"]


def test_index_with_fixity_records_sha256(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)

    catalog.indexing.index(job.uuid, fixity=True)

    for relative, data in OUTPUTS.items():
        record = record_of(catalog, job, relative)
        assert record.sha256 == hashlib.sha256(data).hexdigest()
        assert record.fixity_date is not None


def test_without_transition_the_job_stays_indexing(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)

    report = catalog.indexing.index(job.uuid)

    assert report.state == "INDEXING"
    assert catalog.indexing.indexed(job.uuid).state == "FINISHED"


def test_level_and_type_are_recorded(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job, {**OUTPUTS, "out/mystery.bin": b"\x00\x01"})

    catalog.indexing.index(job.uuid, level="2")

    types = {r.name.rsplit("/", 1)[1]: (r.type, r.level) for r in catalog.indexing.files(job.uuid)}
    assert types == {
        "a.png": ("PNG", "2"),
        "b.csv": ("CSV", "2"),
        "c.fastq.gz": ("FASTQ", "2"),
        "run.log": ("PLAIN", "2"),
        "result.json": ("JSON", "2"),
        "mystery.bin": ("UNKNOWN", "2"),
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.CSV", "CSV"),
        ("r.fq.gz", "FASTQ"),
        ("r.fastq", "FASTQ"),
        ("x.bam", "BAM"),
        ("x.sam", "SAM"),
        ("x.fcs", "FCS"),
        ("x.h5", "HDF5"),
        ("notes.txt", "PLAIN"),
        ("archive.gz", "GZIP"),
        ("noext", "UNKNOWN"),
    ],
)
def test_infer_type(name: str, expected: str) -> None:
    assert infer_type(f"/p/{name}") == expected


def test_filters_select_only_matching_files(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)

    report = catalog.indexing.index(job.uuid, filters=[r"\.png$"])

    assert (report.seen, report.matched, report.written) == (5, 1, 1)
    assert [r.name for r in catalog.indexing.files(job.uuid)] == [f"{job.archive_path}/out/a.png"]


def test_the_jobs_stored_requests_are_used(catalog: Catalog, archive_system: str) -> None:
    job = make_job(
        catalog,
        archive_system,
        archive_patterns=[ArchiveIndexRequest([r"\.png$", r"\.json$"], level="0")],
    )
    put_outputs(catalog, job)

    report = catalog.indexing.index(job.uuid)

    assert report.written == 2
    records = catalog.indexing.files(job.uuid)
    assert {r.name.rsplit("/", 1)[1] for r in records} == {"a.png", "result.json"}
    # Archive requests hash by default (their fixity field defaults to true).
    assert all(r.level == "0" and r.sha256 is not None for r in records)


def test_the_first_matching_request_decides(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    requests = [
        ArchiveIndexRequest([r"\.png$"], level="0", fixity=False),
        ProductIndexRequest([r"^out/"], derived_from=["./out/a.png"]),
        ArchiveIndexRequest([], level="3", fixity=False),
    ]

    catalog.indexing.index(job.uuid, requests=requests, level="2")

    png = record_of(catalog, job, "out/a.png")
    csv = record_of(catalog, job, "out/b.csv")
    log = record_of(catalog, job, "logs/run.log")
    assert (png.level, png.derived_from) == ("0", [])
    assert (csv.level, csv.derived_from) == ("2", [png.uuid])
    assert (log.level, log.derived_from) == ("3", [])


def test_no_requests_anywhere_indexes_everything(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)

    assert catalog.indexing.index(job.uuid, level="Reference").written == 5
    assert {r.level for r in catalog.indexing.files(job.uuid)} == {"Reference"}


def test_an_empty_archive_path_indexes_nothing(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    seen: list[IndexProgress] = []

    report = catalog.indexing.index(job.uuid, transition=True, progress=seen.append)

    assert (report.seen, report.written, report.batches) == (0, 0, 0)
    assert report.state == "FINISHED"
    assert seen == [IndexProgress(0, 0, 0, 0)]


# -- derivation --------------------------------------------------------------------------


def test_products_link_to_what_they_derive_from(catalog: Catalog, archive_system: str) -> None:
    upstream = make_job(catalog, archive_system)
    upstream_path = put(catalog, upstream, "reads.fastq", b"@r\nAC\n+\nII\n")
    catalog.indexing.index(upstream.uuid, transition=True)
    catalog.store.insert(
        "reference",
        {
            "uuid": typed_uuid("https://example.org/genome.fa", "reference"),
            "uri": "https://example.org/genome.fa",
            "name": "genome-v1",
        },
    )
    given_file = typed_uuid("/elsewhere/input.csv", "file")
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    product = ProductIndexRequest(
        [r"\.csv$"],
        derived_from=[
            "./out/a.png",  # job-relative path
            given_file,  # typed UUID, taken as it is
            upstream_path,  # a known file name
            "genome-v1",  # a stored reference, by name
            "agave://data-store/inputs/plate.fcs",  # a storage URI
        ],
        derived_using=["https://example.org/genome.fa"],  # a stored reference, by URI
    )

    report = catalog.indexing.index(job.uuid, requests=[product], transition=True)

    assert report.written == 1 and report.errors == []
    record = record_of(catalog, job, "out/b.csv")
    assert record.derived_from == [
        file_uuid(f"{job.archive_path}/out/a.png"),
        given_file,
        file_uuid(upstream_path),
        typed_uuid("https://example.org/genome.fa", "reference"),
        file_uuid("/inputs/plate.fcs"),
    ]
    assert record.derived_using == [typed_uuid("https://example.org/genome.fa", "reference")]


def test_products_from_the_jobs_stored_patterns(catalog: Catalog, archive_system: str) -> None:
    job = make_job(
        catalog,
        archive_system,
        archive_patterns=[{"patterns": [r"\.png$"], "level": "1", "fixity": False}],
        product_patterns=[{"patterns": [r"\.csv$"], "derived_from": ["./out/a.png"]}],
    )
    put_outputs(catalog, job)

    catalog.indexing.index(job.uuid)

    png = record_of(catalog, job, "out/a.png")
    assert record_of(catalog, job, "out/b.csv").derived_from == [png.uuid]
    assert len(catalog.indexing.files(job.uuid)) == 2


def test_unresolved_derived_from_fails_and_writes_nothing(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    product = ProductIndexRequest([r"\.csv$"], derived_from=["./out/a.png", "no-such-input"])

    with pytest.raises(UnresolvedReference, match="no-such-input") as caught:
        catalog.indexing.index(job.uuid, requests=[product], transition=True)

    assert isinstance(caught.value, InvalidIndexingRequest)
    # Refused before the index event: the job is still FINISHED, its history as it was.
    assert_untouched(catalog, job)
    assert events(catalog, job) == ["create", "run", "finish"]


def test_a_job_in_the_wrong_state_is_refused_before_references_are_resolved(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system, state="RUNNING")
    product = ProductIndexRequest([r"\.csv$"], derived_from=["no-such-input"])

    with pytest.raises(InvalidTransitionError, match="RUNNING"):
        catalog.indexing.index(job.uuid, requests=[product])
    assert_untouched(catalog, job)


def test_permissive_drops_and_reports_unresolved_references(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    missing_uri = "https://example.org/not-registered"
    product = ProductIndexRequest(
        [r"\.csv$"], derived_from=["./out/a.png", "./out/gone.csv", missing_uri]
    )

    report = catalog.indexing.index(job.uuid, requests=[product], permissive=True)

    assert report.written == 1
    assert [ref for ref, _ in report.errors] == ["./out/gone.csv", missing_uri]
    assert record_of(catalog, job, "out/b.csv").derived_from == [
        file_uuid(f"{job.archive_path}/out/a.png")
    ]


def test_resolve_derived_references(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put(catalog, job, "x.csv", b"1")
    product_uuid = typed_uuid("some product", "product")
    sample_uuid = typed_uuid("sample-idx", "sample")
    service = catalog.indexing

    resolved = service.resolve_derived_references(job, ["./x.csv", "x.csv", product_uuid])

    assert resolved == [file_uuid(f"{job.archive_path}/x.csv"), product_uuid]
    with pytest.raises(UnresolvedReference, match="sample UUID"):
        service.resolve_derived_references(job, [sample_uuid])
    assert service.resolve_derived_references(job, [sample_uuid], permissive=True) == []
    assert service.file_job_relative_path(job, "./x.csv") == file_uuid(f"{job.archive_path}/x.csv")
    with pytest.raises(NotFoundError, match=r"nope\.csv"):
        service.file_job_relative_path(job, "./nope.csv")
    assert service.file_job_relative_path(job, "./nope.csv", check_exists=False) == file_uuid(
        f"{job.archive_path}/nope.csv"
    )


def test_resolving_many_references_takes_two_queries(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    names = [f"in/{n}.csv" for n in range(20)]
    for name in names:
        put(catalog, job, name, b"1")
    catalog.indexing.index(job.uuid, filters=[r"in/1"])  # some are indexed, some are not
    catalog.store.insert(
        "reference", {"uuid": typed_uuid("genome", "reference"), "uri": "https://x/g", "name": "g"}
    )
    queries: list[str] = []
    for method in ("find", "count", "get"):
        original = getattr(catalog.store, method)

        def spy(kind: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            queries.append(kind)
            return _original(kind, *args, **kwargs)

        monkeypatch.setattr(catalog.store, method, spy)

    references = [f"./{name}" for name in names] + ["https://x/g", "g"]
    resolved = catalog.indexing.resolve_derived_references(job, references)

    genome = typed_uuid("genome", "reference")
    assert resolved == [file_uuid(f"{job.archive_path}/{name}") for name in names] + [genome]
    assert sorted(queries) == ["file", "reference"]


def test_stored_references_by_uri_then_by_a_unique_name(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system)
    stored = {
        "one": {"uri": "https://x/1", "name": "shared"},
        "two": {"uri": "https://x/2", "name": "shared"},
        "odd": {"uri": "https://x/3", "name": "up/../../x"},
        "uri-named": {"uri": "https://x/4", "name": "https://x/1"},
    }
    for key, fields in stored.items():
        catalog.store.insert("reference", {"uuid": typed_uuid(key, "reference"), **fields})
    resolve = catalog.indexing.resolve_derived_references

    assert resolve(job, ["https://x/1", "up/../../x"]) == [
        typed_uuid("one", "reference"),  # a URI match wins over a reference named the URI
        typed_uuid("odd", "reference"),  # a name that would leave the archive path
    ]
    with pytest.raises(UnresolvedReference, match="more than one stored reference"):
        resolve(job, ["shared"])
    assert resolve(job, ["shared"], permissive=True) == []
    with pytest.raises(InvalidIndexingRequest, match="leaves the archive path"):
        resolve(job, ["up/../../y"], permissive=True)


# -- batching, progress, idempotence -----------------------------------------------------


def test_progress_reports_each_batch(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    seen: list[IndexProgress] = []

    report = catalog.indexing.index(job.uuid, batch_size=2, progress=seen.append)

    assert report.batches == 3
    assert seen[0] == IndexProgress(0, 0, 0, 5)
    assert [(p.matched, p.written) for p in seen[1:]] == [(2, 2), (4, 4), (5, 5)]
    assert all(p.total == 5 for p in seen)
    assert seen[-1].seen == 5


def test_progress_reaches_the_end_when_trailing_files_do_not_match(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    seen: list[IndexProgress] = []

    catalog.indexing.index(job.uuid, filters=["^logs/"], progress=seen.append)

    assert seen[-1] == IndexProgress(5, 1, 1, 5)


def test_reindexing_is_idempotent(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    product = ProductIndexRequest([r"\.csv$"], derived_from=["./out/a.png"])
    archive = ArchiveIndexRequest([], level="1")

    first = catalog.indexing.index(job.uuid, requests=[product, archive], transition=True)
    records = {r.uuid: r for r in catalog.indexing.files(job.uuid)}
    second = catalog.indexing.index(job.uuid, requests=[product, archive], transition=True)

    assert (second.seen, second.matched, second.written) == (first.seen, first.matched, 5)
    assert second.files == first.files
    assert file_count(catalog) == 5
    again = {r.uuid: r for r in catalog.indexing.files(job.uuid)}
    assert again.keys() == records.keys()
    for key, record in again.items():
        assert record.generated_by == [job.uuid]
        assert record.child_of == records[key].child_of
        assert record.derived_from == records[key].derived_from
        assert record.sha256 == records[key].sha256


def test_indexing_without_fixity_keeps_an_earlier_checksum(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    catalog.indexing.index(job.uuid, fixity=True, transition=True)

    catalog.indexing.index(job.uuid, fixity=False, transition=True)

    assert record_of(catalog, job, "out/b.csv").sha256 == hashlib.sha256(b"x,y\n1,2\n").hexdigest()


def test_a_file_shared_by_two_jobs_links_both(catalog: Catalog, archive_system: str) -> None:
    first = make_job(catalog, archive_system)
    path = put(catalog, first, "shared.txt", b"shared")
    second = make_job(catalog, archive_system)
    catalog.indexing.index(first.uuid, transition=True)

    record = catalog.indexing.index_if_exists(path, job=second)

    assert record is not None
    assert sorted(record.generated_by) == sorted([first.uuid, second.uuid])
    assert [r.name for r in catalog.indexing.files(second.uuid)] == [path]


# -- failures ----------------------------------------------------------------------------


def test_a_failure_is_recorded_and_a_second_index_finishes(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    original = StorageSystem.list_files

    def down(self: StorageSystem, path: str) -> Any:
        raise StorageFailureError(f"storage system {self.name!r} is down")

    monkeypatch.setattr(StorageSystem, "list_files", down)
    with pytest.raises(StorageFailureError, match="is down"):
        catalog.indexing.index(job.uuid, transition=True)
    assert catalog.jobs.get(job.uuid).state == "INDEXING"
    assert file_count(catalog) == 0
    last = catalog.jobs.history(job.uuid)[-1]
    assert last.name == "update" and "is down" in last.data["indexing_error"]

    monkeypatch.setattr(StorageSystem, "list_files", original)
    report = catalog.indexing.index(job.uuid, transition=True)

    assert report.written == 5 and report.state == "FINISHED"
    assert events(catalog, job)[-4:] == ["index", "update", "index", "indexed"]


def test_a_failed_database_write_is_recorded(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise InvalidRequestError("refused by the test")

    monkeypatch.setattr(catalog.store, "bulk_upsert", refuse)
    with pytest.raises(InvalidRequestError, match="refused by the test"):
        catalog.indexing.index(job.uuid)
    monkeypatch.undo()

    assert catalog.jobs.get(job.uuid).state == "INDEXING"
    assert catalog.jobs.history(job.uuid)[-1].data == {"indexing_error": "refused by the test"}
    assert catalog.indexing.index(job.uuid, transition=True).written == 5


def test_an_unreadable_file_is_reported_and_the_rest_indexed(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    bad = f"{job.archive_path}/out/b.csv"
    original = FileReader.sha256  # what indexing hashes with

    def sha256(self: FileReader, path: str, **kwargs: Any) -> str:
        if path == bad:
            raise StorageFailureError(f"cannot read {path!r}: permission denied")
        return original(self, path, **kwargs)

    monkeypatch.setattr(FileReader, "sha256", sha256)

    report = catalog.indexing.index(job.uuid, fixity=True, transition=True)

    assert (report.matched, report.written) == (5, 4)
    assert report.errors == [(bad, f"cannot read {bad!r}: permission denied")]
    assert file_uuid(bad) not in report.files
    with pytest.raises(NotFoundError):
        catalog.indexing.file(bad)
    assert report.state == "FINISHED"
    assert catalog.jobs.get(job.uuid).state == "FINISHED"
    assert catalog.jobs.history(job.uuid)[-1].data == {"files": 4, "errors": 1, "skipped": 0}


def test_symlinks_out_of_the_root_are_not_followed(catalog: Catalog, tmp_path: Path) -> None:
    job = make_job(catalog, "local")
    put_outputs(catalog, job)
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(b"secret")
    (outside / "dir" / "inner.txt").write_bytes(b"inner")
    root = Path(catalog.storage.get("local").root) / job.archive_path.lstrip("/")
    os.symlink(outside / "secret.txt", root / "out" / "leak.txt")
    os.symlink(outside / "dir", root / "leakdir")

    report = catalog.indexing.index(job.uuid, fixity=True, transition=True)

    assert report.written == 5
    assert sorted(report.skipped) == [
        (f"{job.archive_path}/leakdir", SKIP_SYMLINK_OUTSIDE_ROOT),
        (f"{job.archive_path}/out/leak.txt", SKIP_SYMLINK_OUTSIDE_ROOT),
    ]
    names = {r.name for r in catalog.indexing.files(job.uuid)}
    assert not any("leak" in name for name in names)


def test_a_symlink_inside_the_root_is_indexed(catalog: Catalog) -> None:
    job = make_job(catalog, "local")
    put_outputs(catalog, job)
    root = Path(catalog.storage.get("local").root) / job.archive_path.lstrip("/")
    os.symlink(root / "out" / "b.csv", root / "alias.csv")

    report = catalog.indexing.index(job.uuid, fixity=True)

    assert report.written == 6 and report.skipped == []
    assert (
        record_of(catalog, job, "alias.csv").sha256
        == hashlib.sha256(OUTPUTS["out/b.csv"]).hexdigest()
    )


# -- bad input: refused, nothing written -------------------------------------------------


def assert_untouched(catalog: Catalog, job: Job) -> None:
    """Nothing was written: no file records, the job's state and history unchanged."""
    assert file_count(catalog) == 0
    after = catalog.jobs.get(job.uuid)
    assert after.state == job.state
    assert after.revision == job.revision


def test_an_invalid_pattern_is_refused(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)

    with pytest.raises(InvalidIndexingRequest, match=r"invalid regular expression '\('"):
        ArchiveIndexRequest(["("])
    with pytest.raises(InvalidIndexingRequest, match=r"'\[a-'"):
        catalog.indexing.index(job.uuid, filters=["ok", "[a-"])
    assert_untouched(catalog, job)


def test_a_relative_reference_escaping_the_archive_path_is_refused(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    escape = "./../../etc/passwd"
    product = ProductIndexRequest([], derived_from=[escape])

    for permissive in (False, True):
        with pytest.raises(InvalidRequestError, match="leaves the archive path"):
            catalog.indexing.index(job.uuid, requests=[product], permissive=permissive)
    assert_untouched(catalog, job)
    with pytest.raises(InvalidIndexingRequest, match="leaves the archive path"):
        catalog.indexing.resolve_derived_references(job, ["out/../../x"], permissive=True)
    with pytest.raises(InvalidIndexingRequest):
        catalog.indexing.file_job_relative_path(job, escape, check_exists=False)


def test_an_unknown_storage_system_is_refused(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    elsewhere = StorageRegistry(
        systems={"other": f"memory://dc-other-{uuid.uuid4().hex}"}, default="other"
    )
    service = IndexingService(catalog.store, jobs=catalog.jobs, storage=elsewhere)

    with pytest.raises(NotFoundError, match=f"unknown storage system '{archive_system}'"):
        service.index(job.uuid)
    assert_untouched(catalog, job)
    with pytest.raises(NotFoundError, match="'nope'"):
        catalog.indexing.index_if_exists(f"{job.archive_path}/out/a.png", storage_system="nope")
    assert file_count(catalog) == 0


def test_a_wrong_token_changes_nothing(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)

    with pytest.raises(ForbiddenError):
        catalog.indexing.index(job.uuid, token="0" * 64)
    assert_untouched(catalog, job)

    token = catalog.jobs.job_token(job.uuid)
    assert catalog.indexing.index(job.uuid, token=token, transition=True).written == 5


def test_a_job_that_has_not_finished_cannot_be_indexed(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system, state="RUNNING")
    put_outputs(catalog, job)

    with pytest.raises(InvalidTransitionError, match="RUNNING"):
        catalog.indexing.index(job.uuid)
    assert_untouched(catalog, job)


@pytest.mark.parametrize(
    "arguments",
    [
        {"batch_size": 0},
        {"batch_size": 10_001},
        {"batch_size": True},
        {"level": "9"},
        {"fixity": "yes"},
        {"requests": "not a list"},
        {"requests": [ArchiveIndexRequest([], generated_by=["not-a-uuid"])]},
    ],
)
def test_bad_arguments_are_refused(
    catalog: Catalog, archive_system: str, arguments: dict[str, Any]
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)

    with pytest.raises(InvalidRequestError):
        catalog.indexing.index(job.uuid, **arguments)
    assert_untouched(catalog, job)


def test_a_deleted_jobs_files_are_hidden(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    catalog.indexing.index(job.uuid, transition=True)
    admin = catalog.jobs.admin_token()
    catalog.jobs.delete(job.uuid, token=admin)

    for read in (
        lambda: catalog.indexing.files(job.uuid),
        lambda: catalog.indexing.verify(job.uuid),
        lambda: catalog.indexing.index(job.uuid),
    ):
        with pytest.raises(NotFoundError, match=job.uuid):
            read()

    catalog.jobs.undelete(job.uuid, token=admin)
    assert len(catalog.indexing.files(job.uuid)) == len(OUTPUTS)


def test_an_unknown_job_is_not_found(catalog: Catalog) -> None:
    missing = typed_uuid("no such job", "pipelinejob")
    with pytest.raises(NotFoundError, match=missing):
        catalog.indexing.index(missing)
    with pytest.raises(NotFoundError, match=missing):
        catalog.indexing.files(missing)


# -- single files and lookups ------------------------------------------------------------


def test_file_lookup_by_uuid_path_and_uri(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    catalog.indexing.index(job.uuid, transition=True)
    path = f"{job.archive_path}/out/a.png"

    record = catalog.indexing.file(path)

    assert catalog.indexing.file(record.uuid) == record
    assert catalog.indexing.file(f"agave://{archive_system}{path}") == record
    assert record.to_dict()["name"] == path
    missing = f"{job.archive_path}/out/none.png"
    with pytest.raises(NotFoundError, match=missing):
        catalog.indexing.file(missing)
    with pytest.raises(InvalidRequestError):
        catalog.indexing.file(typed_uuid("x", "sample"))


def test_index_if_exists(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    path = put(catalog, job, "single.csv", b"1,2,3")
    service = catalog.indexing

    assert service.index_if_exists(f"{job.archive_path}/absent.csv", job=job) is None
    record = service.index_if_exists(path, job=job, level="2")
    assert record is not None
    assert (record.size, record.level, record.type) == (5, "2", "CSV")
    assert record.generated_by == [job.uuid] and record.child_of == job.child_of
    unchecked = service.index_if_exists(
        "/somewhere/else.txt", storage_system=archive_system, check_exists=False
    )
    assert unchecked is not None
    assert (unchecked.size, unchecked.generated_by) == (None, [])
    with pytest.raises(InvalidRequestError):
        service.index_if_exists("relative/path.txt")
    assert file_count(catalog) == 2

    # With fixity the checksum is taken; indexing again without it keeps the checksum.
    raw = service.index_if_exists(path, storage_system=archive_system, level="0", fixity=True)
    assert raw is not None and raw.level == "0" and raw.fixity_date is not None
    assert raw.sha256 == hashlib.sha256(b"1,2,3").hexdigest()
    again = service.index_if_exists(path, storage_system=archive_system, level="0")
    assert again is not None and again.sha256 == raw.sha256
    gone = f"{job.archive_path}/gone.csv"
    assert service.index_if_exists(gone, check_exists=False, fixity=True, job=job) is None
    assert file_count(catalog) == 2


def test_the_default_level_is_the_one_the_pipeline_declares(catalog: Catalog) -> None:
    job = make_job(catalog, "local")
    put(catalog, job, "a.csv", b"1")
    catalog.indexing.index(job.uuid)  # PIPELINE names no levels: "1", the default
    assert [f.level for f in catalog.indexing.files(job.uuid)] == ["1"]
    for declared, expected in ((["2"], "2"), (["3", "1"], "3"), (["0"], "0")):
        pipeline, _ = catalog.pipelines.register(
            {"id": f"levels-{'-'.join(declared)}", "components": [],
             "processing_levels": declared}
        )  # fmt: skip
        plan = catalog.jobs.plan(
            pipeline=pipeline.uuid, metadata={"measurement_id": "measurement-idx"}
        )
        other, _ = catalog.jobs.create(plan)
        catalog.jobs.send(other.uuid, "run")
        catalog.jobs.send(other.uuid, "finish")
        put(catalog, other, "b.csv", b"2")
        assert catalog.indexing.declared_level(other) == expected
        catalog.indexing.index(other.uuid, transition=True)
        assert [f.level for f in catalog.indexing.files(other.uuid)] == [expected]
        assert catalog.jobs.history(other.uuid)[-2].data["level"] == expected
    # An explicit level still wins.
    catalog.jobs.send(other.uuid, "index")
    catalog.indexing.index(other.uuid, level="1", transition=True)
    assert [f.level for f in catalog.indexing.files(other.uuid)] == ["1"]


def test_reports_are_json_ready(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)

    report = catalog.indexing.index(job.uuid, transition=True, permissive=True)

    as_dict = report.to_dict()
    assert as_dict["written"] == 5 and as_dict["state"] == "FINISHED"
    assert as_dict["errors"] == [] and as_dict["skipped"] == []
    record = catalog.indexing.files(job.uuid)[0].to_dict()
    assert isinstance(record["modified_date"], str)


# -- admin actions on indexed jobs --------------------------------------------------------


def test_reset_unlinks_records_and_empties_the_archive(
    catalog: Catalog, archive_system: str
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    catalog.indexing.index(job.uuid, transition=True)

    catalog.jobs.reset(job.uuid, token=catalog.jobs.admin_token())

    assert catalog.jobs.get(job.uuid).state == "RESET"
    assert catalog.indexing.files(job.uuid) == []
    system = catalog.storage.get(archive_system)
    assert system.list_files(job.archive_path).files == ()
    for relative in OUTPUTS:
        assert job.uuid not in record_of(catalog, job, relative).generated_by


def test_purge_removes_the_records(catalog: Catalog, archive_system: str) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    catalog.indexing.index(job.uuid, transition=True)
    other = make_job(catalog, archive_system)
    put(catalog, other, "kept.txt", b"kept")
    catalog.indexing.index(other.uuid, transition=True)

    report = catalog.jobs.purge(job.uuid, token=catalog.jobs.admin_token())

    assert len(report.files) == 5
    assert file_count(catalog) == 1
    with pytest.raises(NotFoundError):
        catalog.indexing.files(job.uuid)
    assert [r.name for r in catalog.indexing.files(other.uuid)] == [
        f"{other.archive_path}/kept.txt"
    ]


# -- admin actions and other runs racing an indexing run ---------------------------------


def _after_batch(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, batch: int, action: Any
) -> None:
    """Run ``action`` right after the ``batch``-th bulk write of file records."""
    bulk_upsert = catalog.store.bulk_upsert
    calls = 0

    def racing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = bulk_upsert(*args, **kwargs)
        calls += 1
        if calls == batch:
            action()
        return result

    monkeypatch.setattr(catalog.store, "bulk_upsert", racing)


def _linked(catalog: Catalog, job: Job) -> int:
    return catalog.store.count("file", {"generated_by": job.uuid})


def test_a_reset_during_indexing_stops_it_and_leaves_nothing_linked(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    admin = catalog.jobs.admin_token()
    _after_batch(catalog, monkeypatch, 2, lambda: catalog.jobs.reset(job.uuid, token=admin))

    with pytest.raises(ConflictError, match="was reset while it was being indexed"):
        catalog.indexing.index(job.uuid, batch_size=1, transition=True)

    assert catalog.jobs.get(job.uuid).state == "RESET"
    assert _linked(catalog, job) == 0


def test_a_purge_during_indexing_stops_it_and_leaves_no_records(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    admin = catalog.jobs.admin_token()
    _after_batch(catalog, monkeypatch, 2, lambda: catalog.jobs.purge(job.uuid, token=admin))

    with pytest.raises(ConflictError, match="was purged while it was being indexed"):
        catalog.indexing.index(job.uuid, batch_size=1)

    assert catalog.store.count("job", {"uuid": job.uuid}) == 0
    assert _linked(catalog, job) == 0


def test_a_delete_during_indexing_stops_it(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    admin = catalog.jobs.admin_token()
    _after_batch(catalog, monkeypatch, 2, lambda: catalog.jobs.delete(job.uuid, token=admin))

    with pytest.raises(ConflictError, match="was deleted while it was being indexed"):
        catalog.indexing.index(job.uuid, batch_size=1, transition=True)

    assert _linked(catalog, job) == 2  # kept, as a deleted job keeps its records
    hidden = catalog.jobs.get(job.uuid, include_deleted=True)
    assert (hidden.visible, hidden.state) == (False, "INDEXING")


def test_another_run_finishing_the_job_stops_this_one(
    catalog: Catalog, archive_system: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(catalog, archive_system)
    put_outputs(catalog, job)
    _after_batch(catalog, monkeypatch, 1, lambda: catalog.indexing.indexed(job.uuid))

    with pytest.raises(ConflictError, match=r"left INDEXING .*it is FINISHED"):
        catalog.indexing.index(job.uuid, batch_size=2, transition=True)

    assert catalog.jobs.get(job.uuid).state == "FINISHED"
    assert events(catalog, job)[-2:] == ["index", "indexed"]
