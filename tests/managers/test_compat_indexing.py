"""Indexing through the compatibility API, end to end on a local temporary archive."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from datacatalog.catalog import Catalog
from datacatalog.errors import ForbiddenError, NotFoundError, UnauthorizedError
from datacatalog.identifiers import file_uuid, typed_uuid
from datacatalog.managers.pipelinejobs import (
    ManagedPipelineJob,
    ManagedPipelineJobError,
    ManagedPipelineJobInstance,
)
from datacatalog.managers.pipelinejobs.indexer import Indexer
from datacatalog.managers.pipelinejobs.indexrequest import (
    ArchiveIndexRequest,
    InvalidIndexingRequest,
    ProductIndexRequest,
)
from datacatalog.settings import Settings
from datacatalog.store import Store

# Test-run variables, and the zero-configuration engine the conftest chooses.
KEPT_VARIABLES = ("DATACATALOG_TEST_", "DATACATALOG_LOCAL_ENGINE")

OUTPUTS = {
    "out/counts.csv": b"gene,count\na,1\nb,2\n",
    "out/plot.png": b"\x89PNG fake image",
    "logs/run.txt": b"done\n",
}


@pytest.fixture
def catalog(store: Store, settings: Settings) -> Catalog:
    catalog = Catalog(store, settings=settings)
    catalog.metadata.load(
        [
            {"experiment_design_id": "design.idx"},
            {"experiment_id": "experiment.idx", "experiment_design_id": "design.idx"},
            {"sample_id": "sample.idx", "experiment_id": "experiment.idx"},
        ]
    )
    return catalog


@pytest.fixture
def pipeline_uuid(catalog: Catalog) -> str:
    pipeline, _ = catalog.pipelines.register(
        {"id": "compat-indexing", "components": [{"image": "counter:3"}]}
    )
    return pipeline.uuid


def finished_job(
    store: Store,
    settings: Settings,
    pipeline_uuid: str,
    *,
    derived_from: list[str] | None = None,
    data: dict[str, int] | None = None,
) -> ManagedPipelineJob:
    """A FINISHED job whose archive path holds :data:`OUTPUTS`."""
    job = ManagedPipelineJob(
        store,
        {"pipeline_uuid": pipeline_uuid},
        sample_id="sample.idx",
        data=data or {"k": 1},
        archive_patterns=[ArchiveIndexRequest(patterns=[r"\.csv$"], level="2")],
        product_patterns=[
            ProductIndexRequest(
                patterns=[r"\.png$"],
                derived_from=derived_from if derived_from is not None else ["./out/counts.csv"],
            )
        ],
        settings=settings,
    ).setup()
    root = settings.data_dir / "archive" / (job.archive_path or "").lstrip("/")
    for relative, content in OUTPUTS.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return job.run().finish()


def test_index_with_fixity_and_transition(
    store: Store, settings: Settings, catalog: Catalog, pipeline_uuid: str
) -> None:
    job = finished_job(store, settings, pipeline_uuid)
    instance = ManagedPipelineJobInstance(store, job.uuid, settings=settings)
    report = instance.index(token=job.token, fixity=True, transition=True)
    assert instance.state == "FINISHED" and instance.last_event == "indexed"
    assert report.written == 2 and report.seen == 3
    names = [e.name for e in catalog.jobs.history(job.uuid or "")]
    assert names == ["create", "run", "finish", "index", "indexed"]

    records = {r.name: r for r in catalog.indexing.files(job.uuid or "")}
    csv = records[f"{job.archive_path}/out/counts.csv"]
    png = records[f"{job.archive_path}/out/plot.png"]
    assert set(records) == {csv.name, png.name}
    assert csv.uuid == file_uuid(csv.name)
    assert csv.sha256 == hashlib.sha256(OUTPUTS["out/counts.csv"]).hexdigest()
    assert png.sha256 == hashlib.sha256(OUTPUTS["out/plot.png"]).hexdigest()
    assert (csv.level, csv.type, csv.size) == ("2", "CSV", len(OUTPUTS["out/counts.csv"]))
    assert csv.generated_by == [job.uuid] == png.generated_by
    assert csv.child_of == [typed_uuid("sample.idx", "sample")]
    assert png.derived_from == [csv.uuid]


def test_index_enforces_the_job_token(
    store: Store, settings: Settings, catalog: Catalog, pipeline_uuid: str
) -> None:
    job = finished_job(store, settings, pipeline_uuid)
    instance = ManagedPipelineJobInstance(store, job.uuid, settings=settings)
    with pytest.raises(UnauthorizedError):
        instance.index(fixity=True, transition=True)
    with pytest.raises(ForbiddenError) as caught:
        instance.index(token="0" * 64)
    assert isinstance(caught.value, ManagedPipelineJobError)
    with pytest.raises(UnauthorizedError):
        instance.indexed()
    assert catalog.jobs.get(job.uuid or "").state == "FINISHED"
    assert catalog.indexing.files(job.uuid or "") == []


def test_index_without_transition_then_indexed(
    store: Store, settings: Settings, catalog: Catalog, pipeline_uuid: str
) -> None:
    job = finished_job(store, settings, pipeline_uuid)
    instance = ManagedPipelineJobInstance(store, job.uuid, settings=settings, token=job.token)
    report = instance.index()  # the token given to the constructor is used
    assert report.state == "INDEXING" and instance.state == "INDEXING"
    assert all(r.sha256 is None or r.type == "CSV" for r in catalog.indexing.files(job.uuid or ""))
    assert instance.indexed() is instance
    assert instance.state == "FINISHED"


def test_reindexing_is_idempotent(
    store: Store, settings: Settings, catalog: Catalog, pipeline_uuid: str
) -> None:
    job = finished_job(store, settings, pipeline_uuid)
    instance = ManagedPipelineJobInstance(store, job.uuid, settings=settings)
    instance.index(token=job.token, fixity=True, transition=True)
    first = catalog.indexing.files(job.uuid or "")
    instance.index(token=job.token, fixity=True, transition=True)
    second = catalog.indexing.files(job.uuid or "")
    assert [r.uuid for r in first] == [r.uuid for r in second]
    assert [(r.generated_by, r.derived_from, r.sha256) for r in first] == [
        (r.generated_by, r.derived_from, r.sha256) for r in second
    ]
    assert store.count("file", {}) == 2


def test_filters_replace_the_job_requests(
    store: Store, settings: Settings, catalog: Catalog, pipeline_uuid: str
) -> None:
    job = finished_job(store, settings, pipeline_uuid)
    instance = ManagedPipelineJobInstance(store, job.uuid, settings=settings)
    report = instance.index(token=job.token, level="0", filters=[r"\.txt$"], transition=True)
    assert report.written == 1
    (record,) = catalog.indexing.files(job.uuid or "")
    assert record.name.endswith("/logs/run.txt") and record.level == "0"


def test_a_single_filter_string_is_one_pattern(
    store: Store, settings: Settings, catalog: Catalog, pipeline_uuid: str
) -> None:
    job = finished_job(store, settings, pipeline_uuid)
    instance = ManagedPipelineJobInstance(store, job.uuid, settings=settings)
    report = instance.index(token=job.token, filters="counts", transition=True)
    assert report.written == 1
    (record,) = catalog.indexing.files(job.uuid or "")
    assert record.name.endswith("/out/counts.csv")


def test_unresolved_derivation_fails_unless_permissive(
    store: Store, settings: Settings, catalog: Catalog, pipeline_uuid: str
) -> None:
    job = finished_job(store, settings, pipeline_uuid, derived_from=["./out/missing.csv"])
    instance = ManagedPipelineJobInstance(store, job.uuid, settings=settings)
    with pytest.raises(InvalidIndexingRequest, match=r"missing\.csv"):
        instance.index(token=job.token, transition=True)
    assert catalog.indexing.files(job.uuid or "") == []
    report = instance.index(token=job.token, transition=True, permissive=True)
    assert instance.state == "FINISHED"
    assert report.written == 2 and report.errors
    png = next(r for r in catalog.indexing.files(job.uuid or "") if r.type == "PNG")
    assert png.derived_from == []


def test_indexer_helpers_delegate_to_the_core(
    store: Store, settings: Settings, catalog: Catalog, pipeline_uuid: str
) -> None:
    job = finished_job(store, settings, pipeline_uuid)
    indexer = Indexer(store, settings=settings, uuid=job.uuid)
    csv_path = f"{job.archive_path}/out/counts.csv"
    assert indexer.file_job_relative_path("out/counts.csv") == file_uuid(csv_path)
    assert indexer.file_job_relative_path("./out/counts.csv") == file_uuid(csv_path)
    with pytest.raises(NotFoundError):
        indexer.file_job_relative_path("out/absent.csv")
    assert indexer.file_job_relative_path("out/absent.csv", check_exists=False) == file_uuid(
        f"{job.archive_path}/out/absent.csv"
    )
    with pytest.raises(InvalidIndexingRequest):
        indexer.file_job_relative_path("../../escape.csv", check_exists=False)

    record = indexer.index_if_exists(csv_path)
    assert record is not None
    assert record.uuid == file_uuid(csv_path) and record.generated_by == [job.uuid]
    assert indexer.index_if_exists(f"{job.archive_path}/out/absent.csv") is None

    assert indexer.file_or_ref_identifier(csv_path) == record.uuid
    assert indexer.file_or_ref_identifier("./out/plot.png") == file_uuid(
        f"{job.archive_path}/out/plot.png"
    )
    assert indexer.resolve_derived_references([csv_path, "./out/counts.csv"]) == [record.uuid]
    assert indexer.resolve_derived_references(["./out/nothing"], permissive=True) == []
    with pytest.raises(InvalidIndexingRequest):
        indexer.resolve_derived_references(["./out/nothing"])


def test_reset_after_indexing_unlinks_the_files(
    store: Store, settings: Settings, catalog: Catalog, pipeline_uuid: str
) -> None:
    job = finished_job(store, settings, pipeline_uuid)
    ManagedPipelineJobInstance(store, job.uuid, settings=settings).index(
        token=job.token, transition=True
    )
    assert len(catalog.indexing.files(job.uuid or "")) == 2
    job.reset(token=catalog.jobs.admin_token())
    assert job.state == "CREATED"
    assert catalog.indexing.files(job.uuid or "") == []


# -- the documentation ------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_python_api_document_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("DATACATALOG_") and not name.startswith(KEPT_VARIABLES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATACATALOG_DATA_DIR", str(tmp_path / "data"))
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    # Twice, unchanged, on the same catalog: the second time finds the job up to date.
    for attempt in (1, 2):
        namespace: dict[str, object] = {"__name__": "python_api_doc"}
        for number, block in enumerate(blocks, 1):
            code = compile(block, f"{DOC.name} (python block {number}, run {attempt})", "exec")
            exec(code, namespace)
        printed = capsys.readouterr().out
        assert "FINISHED" in printed and "invalid transition" in printed
        job: Any = namespace["job"]
        assert job.up_to_date is (attempt == 2)
    assert (tmp_path / "data" / "catalog.json").exists()
    with Catalog.open() as catalog:
        (execution, check) = catalog.jobs.executions(job.uuid)
    assert (execution.outcome, check.outcome) == ("finished", "up_to_date")
