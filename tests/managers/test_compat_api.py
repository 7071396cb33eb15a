"""The compatibility API ``datacatalog.managers.pipelinejobs``, on both engines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from datacatalog import archive
from datacatalog.catalog import Catalog
from datacatalog.errors import (
    DataCatalogError,
    ForbiddenError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    UnauthorizedError,
)
from datacatalog.identifiers import job_uuid, typed_uuid
from datacatalog.managers import pipelinejobs
from datacatalog.managers.pipelinejobs import (
    JobManager,
    ManagedPipelineJob,
    ManagedPipelineJobError,
    ManagedPipelineJobInstance,
    ReactorManagedPipelineJob,
)
from datacatalog.managers.pipelinejobs.config import PipelineJobsConfig, PipelinesConfig
from datacatalog.settings import Settings
from datacatalog.store import Store
from tests.support.compat import SERVICE_URL


def make_job(store: Store, pipelines: Any, settings: Settings, **kwargs: Any) -> ManagedPipelineJob:
    kwargs.setdefault("sample_id", "sample.compat.1")
    return ManagedPipelineJob(store, pipelines, settings=settings, **kwargs)


def job_count(store: Store) -> int:
    return store.count("job", {})


# -- import paths and signatures ------------------------------------------------------------


def test_every_documented_import_path_resolves() -> None:
    from datacatalog.managers.pipelinejobs import (
        JobManager,
        ManagedPipelineJob,
        ManagedPipelineJobError,
        ManagedPipelineJobInstance,
        ReactorManagedPipelineJob,
    )
    from datacatalog.managers.pipelinejobs.config import (  # noqa: F401
        PipelineJobsConfig,
        PipelinesConfig,
    )
    from datacatalog.managers.pipelinejobs.exceptions import (
        ManagedPipelineJobError as FromExceptions,
    )
    from datacatalog.managers.pipelinejobs.indexer import Indexer  # noqa: F401
    from datacatalog.managers.pipelinejobs.indexrequest import (  # noqa: F401
        ArchiveIndexRequest,
        IndexingError,
        IndexType,
        InvalidIndexingRequest,
        ProductIndexRequest,
    )
    from datacatalog.managers.pipelinejobs.instanced import (
        ManagedPipelineJobInstance as FromInstanced,
    )
    from datacatalog.managers.pipelinejobs.jobmanager import (
        JobManager as FromJobManager,
    )
    from datacatalog.managers.pipelinejobs.reactor import (
        ReactorManagedPipelineJob as FromReactor,
    )
    from datacatalog.managers.pipelinejobs.store import (
        ManagedPipelineJob as FromStore,
    )

    assert FromStore is ManagedPipelineJob
    assert FromReactor is ReactorManagedPipelineJob
    assert FromInstanced is ManagedPipelineJobInstance
    assert FromJobManager is JobManager
    assert FromExceptions is ManagedPipelineJobError
    for name in (
        "config",
        "exceptions",
        "indexer",
        "indexrequest",
        "instanced",
        "jobmanager",
        "reactor",
        "store",
    ):
        module = importlib.import_module(f"datacatalog.managers.pipelinejobs.{name}")
        assert getattr(pipelinejobs, name) is module


def _parameters(obj: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.default) for p in inspect.signature(obj).parameters.values()]


E = inspect.Parameter.empty


def test_signatures_match_the_documented_api() -> None:
    assert _parameters(JobManager) == [
        ("mongodb", E),
        ("agave", None),
        ("args", E),
        ("kwargs", E),
    ]
    assert _parameters(ManagedPipelineJob) == [
        ("mongodb", E),
        ("pipelines", E),
        ("instanced", False),
        ("agave", None),
        ("args", E),
        ("kwargs", E),
    ]
    assert _parameters(ReactorManagedPipelineJob) == [
        ("reactor", E),
        ("data", None),
        ("args", E),
        ("kwargs", E),
    ]
    assert _parameters(ManagedPipelineJobInstance) == [
        ("mongodb", E),
        ("uuid", E),
        ("agave", None),
        ("kwargs", E),
    ]
    assert _parameters(ManagedPipelineJob.setup)[1:] == [("data", None)]
    assert _parameters(ManagedPipelineJob.get_archive_path)[1:2] == [("instanced", True)]
    assert _parameters(ManagedPipelineJob.instanced_directory)[1:] == [("session", None)]
    assert _parameters(ManagedPipelineJob.refs_from_data_dict)[1:] == [
        ("data", None),
        ("store", "files"),
    ]
    assert _parameters(ManagedPipelineJobInstance.handle)[1:] == [
        ("event_doc", E),
        ("token", None),
    ]
    assert _parameters(JobManager.load)[1:] == [("job_uuid", None), ("token", None)]
    assert _parameters(JobManager.attach)[1:] == [("token", None)]
    assert JobManager.ADMIN_EVENTS == ["reset", "ready", "delete", "purge"]
    assert ManagedPipelineJob.LINK_FIELDS == ["child_of", "acted_on", "acted_using", "generated_by"]
    assert ManagedPipelineJob.METADATA_ARG_NAMES == (
        "experiment_design_id",
        "experiment_id",
        "sample_id",
        "measurement_id",
    )
    assert ManagedPipelineJob.COLL_PARAMS[0] == ("measurement_id", "measurement")
    assert issubclass(ManagedPipelineJob, JobManager)
    assert issubclass(ReactorManagedPipelineJob, ManagedPipelineJob)
    assert issubclass(ManagedPipelineJobInstance, pipelinejobs.indexer.Indexer)


def _public_modules() -> Iterator[ModuleType]:
    yield pipelinejobs
    for info in pkgutil.iter_modules(pipelinejobs.__path__):
        yield importlib.import_module(f"{pipelinejobs.__name__}.{info.name}")


def _callables() -> Iterator[tuple[str, Any]]:
    seen: set[int] = set()
    for module in _public_modules():
        for name, value in vars(module).items():
            if name.startswith("_") or id(value) in seen:
                continue
            if getattr(value, "__module__", "").startswith(pipelinejobs.__name__):
                seen.add(id(value))
                if inspect.isclass(value):
                    yield f"{value.__qualname__}", value
                    for attr, member in vars(value).items():
                        if callable(member) and (not attr.startswith("_") or attr == "__init__"):
                            yield f"{value.__qualname__}.{attr}", member
                elif inspect.isfunction(value):
                    yield value.__qualname__, value


def test_no_mutable_default_arguments() -> None:
    checked = 0
    for name, func in _callables():
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            continue
        for param in signature.parameters.values():
            assert not isinstance(param.default, (list, dict, set, bytearray)), (
                f"{name}({param.name}=...) has a mutable default"
            )
        checked += 1
    assert checked > 30


# -- errors ---------------------------------------------------------------------------------


def test_managed_pipeline_job_error_is_the_root_of_every_category() -> None:
    assert ManagedPipelineJobError is DataCatalogError
    for category in (NotFoundError, InvalidRequestError, InvalidTransitionError, ForbiddenError):
        assert issubclass(category, ManagedPipelineJobError)


def test_load_of_a_missing_job_is_not_found(store: Store, settings: Settings) -> None:
    missing = typed_uuid("no such job", "pipelinejob")
    manager = JobManager(store, settings=settings)
    with pytest.raises(NotFoundError, match=missing) as caught:
        manager.load(missing)
    assert isinstance(caught.value, ManagedPipelineJobError)
    with pytest.raises(InvalidRequestError):
        manager.attach()
    with pytest.raises(InvalidRequestError, match="unknown keyword"):
        JobManager(store, settings=settings, colour="blue")


def test_an_instance_that_fails_to_load_closes_what_it_opened(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[Catalog] = []
    monkeypatch.setattr(Catalog, "close", lambda self: closed.append(self))
    missing = typed_uuid("no such job", "pipelinejob")
    with pytest.raises(NotFoundError):
        ManagedPipelineJobInstance("mongomock://", missing, settings=settings)
    assert len(closed) == 1
    with pytest.raises(InvalidRequestError):
        ManagedPipelineJobInstance("mongomock://", "not-a-uuid", settings=settings)
    assert len(closed) == 2


# -- config ---------------------------------------------------------------------------------


def test_pipeline_jobs_config_requires_a_pipeline_uuid(pipeline_uuid: str) -> None:
    with pytest.raises(InvalidRequestError, match="pipeline_uuid"):
        PipelineJobsConfig(job_manager_id="manager")
    with pytest.raises(InvalidRequestError, match="pipeline_uuid"):
        PipelineJobsConfig(pipeline_uuid=typed_uuid("x", "sample"))
    with pytest.raises(InvalidRequestError, match="colour"):
        PipelineJobsConfig(pipeline_uuid=pipeline_uuid, colour="blue")
    with pytest.raises(InvalidRequestError, match="service_url"):
        PipelineJobsConfig(pipeline_uuid=pipeline_uuid, service_url="ftp://x")
    cfg = PipelineJobsConfig(
        pipeline_uuid=pipeline_uuid, job_manager_id="m-1", service_url=SERVICE_URL + "/"
    )
    assert cfg["pipeline_uuid"] == cfg.pipeline_uuid == pipeline_uuid
    assert cfg.get("service_url") == cfg.service_url == SERVICE_URL
    assert cfg.get("job_indexer_id") is None and cfg.job_indexer_id is None
    assert dict(cfg) == {
        "pipeline_uuid": pipeline_uuid,
        "job_manager_id": "m-1",
        "service_url": SERVICE_URL,
    }
    with pytest.raises(KeyError):
        cfg["job_indexer_id"]
    with pytest.raises(AttributeError):
        cfg.pipeline_uuid = "other"  # type: ignore[misc]
    assert dict(PipelinesConfig()) == {}
    assert PipelinesConfig(pipeline_manager_id="p").pipeline_manager_id == "p"


# -- creating jobs --------------------------------------------------------------------------


def test_golden_job_uuid_from_the_specification(store: Store, settings: Settings) -> None:
    # The worked example of SPEC §3 and §6: a pipeline and an experiment with these UUIDs,
    # data {} -> this job UUID and archive path.
    pipeline = "106c46ff-8186-5756-a934-071f4497b58d"
    experiment = "102e95e6-67a8-5a06-9484-3131c6907890"
    store.insert(
        "pipeline",
        {
            "uuid": pipeline,
            "id": "golden",
            "name": "golden",
            "components": [],
            "processing_levels": ["1"],
            "_visible": True,
        },
    )
    store.insert("experiment", {"uuid": experiment, "experiment_id": "golden", "child_of": []})
    job = ManagedPipelineJob(
        store, {"pipeline_uuid": pipeline}, experiment_id=experiment, settings=settings
    ).setup()
    assert job.uuid == "107a90b7-f083-5167-a63d-41a3bf278bf8"
    assert job.archive_path == (
        "/products/v2/4vZZKuWQfMWUpLMKWq3KRX/4rcwc3k6B8Kiyfm7rqvSJ6/4rRDh4M5V4tXyLHim7HZJn"
    )


def test_constructor_and_setup_data_feed_uuid_and_path(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(
        store,
        pipelines,
        settings,
        sample_id=["sample.compat.2", metadata["sample1"]],
        data={"alpha": 1, "beta": "constructor"},
    )
    assert job.uuid is None  # assigned by setup()
    job.setup({"beta": "setup", "gamma": [1, 2]})
    final = {"alpha": 1, "beta": "setup", "gamma": [1, 2]}
    child_of = sorted([metadata["sample1"], metadata["sample2"]])
    assert job.child_of == child_of
    assert job.data == final
    assert job.uuid == job_uuid(pipelines["pipeline_uuid"], child_of, final)
    expected_path = archive.archive_path(pipelines["pipeline_uuid"], child_of, final)
    assert job.archive_path == expected_path == job.get_archive_path()
    stored = store.get("job", {"uuid": job.uuid})
    assert stored is not None
    assert stored["data"] == final
    assert stored["archive_path"] == expected_path
    assert stored["child_of"] == child_of
    assert job.generated_by == [pipelines["pipeline_uuid"]]
    assert job.state == "CREATED" and job.last_event == "create"
    assert job.created is True
    assert job.token == job.catalog.jobs.job_token(job.uuid)
    assert job.setup_archive_path is True
    assert (settings.data_dir / "archive" / expected_path.lstrip("/")).is_dir()
    # Where outputs go on this machine: the catalog path inside the storage root.
    assert job.archive_dir == settings.data_dir / "archive" / expected_path.lstrip("/")
    instance = ManagedPipelineJobInstance(store, job.uuid, settings=settings)
    assert instance.archive_dir == job.archive_dir


def test_setup_twice_writes_one_unchanged_document(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    first = make_job(store, pipelines, settings, data={"k": 1}).setup()
    before = store.get("job", {"uuid": first.uuid})
    first.setup()
    again = make_job(store, pipelines, settings, data={"k": 1}).setup()
    after = store.get("job", {"uuid": first.uuid})
    assert again.uuid == first.uuid
    assert again.created is False
    assert job_count(store) == 1
    assert before == after


def test_instanced_archive_path_shape(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(store, pipelines, settings, instanced=True, session="tidy-otter")
    # Computed at construction, as the replaced API did; setup() claims it.
    constructed = job.archive_path
    assert constructed is not None
    assert job.get_archive_path() == constructed
    job.setup({"n": 2})
    base = archive.archive_path(pipelines["pipeline_uuid"], [metadata["sample1"]], {"n": 2})
    assert re.fullmatch(re.escape(base) + r"/tidy-otter-\d{8}T\d{6}Z", job.archive_path or "")
    # The instance drawn at construction is kept (the setup data changed only the base).
    assert job.archive_path.rsplit("/", 1)[1] == constructed.rsplit("/", 1)[1]
    assert job.get_archive_path() == job.archive_path
    assert job.get_archive_path(instanced=False) == base
    assert re.fullmatch(r"tidy-otter-\d{8}T\d{6}Z", job.instanced_directory())
    assert re.fullmatch(r"run7-\d{8}T\d{6}Z", job.instanced_directory("run7"))
    anonymous = make_job(store, pipelines, settings, instanced=True, data={"n": 4})
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{8}T\d{6}Z", anonymous.instanced_directory())
    anonymous.setup()
    assert re.fullmatch(
        re.escape(anonymous.get_archive_path(instanced=False)) + r"/[a-z]+-[a-z]+-"
        r"\d{8}T\d{6}Z",
        anonymous.archive_path or "",
    )
    plain = make_job(store, pipelines, settings, data={"n": 3}).setup()
    assert plain.get_archive_path(instanced=True) == plain.archive_path
    assert re.fullmatch(r"/products/v2(/[0-9A-Za-z]{22}){3}", plain.archive_path or "")


def test_an_instanced_path_computed_at_construction_is_claimed_at_setup(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(store, pipelines, settings, instanced=True, session="keen-lynx", data={"n": 5})
    constructed = job.archive_path
    assert constructed is not None and job.uuid is None
    job.setup()
    assert job.archive_path == constructed
    assert store.get("job", {"uuid": job.uuid})["archive_path"] == constructed  # type: ignore[index]


def test_a_taken_instanced_path_draws_a_new_instance_at_setup(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(store, pipelines, settings, instanced=True, session="keen-lynx", data={"n": 6})
    constructed = job.archive_path
    assert constructed is not None
    # Another job holds that exact path before this one is set up (a job recorded before
    # explicit paths were kept out of the generated tree: no new one can get there).
    squatter = make_job(store, pipelines, settings, data={"n": 7}, archive_path="/uploads/n7")
    squatter.setup()
    store.update("job", {"uuid": squatter.uuid}, {"$set": {"archive_path": constructed}})
    job.setup()
    assert job.archive_path != constructed
    assert job.archive_path is not None
    assert job.archive_path.rsplit("/", 1)[0] == constructed.rsplit("/", 1)[0]
    assert store.get("job", {"uuid": job.uuid})["archive_path"] == job.archive_path  # type: ignore[index]


def test_explicit_archive_path_is_kept(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(store, pipelines, settings, archive_path="/uploads/run-7", instanced=True)
    assert job.get_archive_path() == "/uploads/run-7"
    job.setup()
    assert job.archive_path == "/uploads/run-7"


@pytest.mark.parametrize(
    "ids",
    [
        {},
        {"sample_id": "sample.compat.1", "experiment_id": "experiment.compat.1"},
        {"measurement_id": "measurement.compat.1", "sample_id": []},
    ],
    ids=["none", "two-kinds", "empty-second"],
)
def test_metadata_ids_must_be_exactly_one_kind(
    store: Store,
    settings: Settings,
    pipelines: dict[str, str],
    metadata: dict[str, str],
    ids: dict[str, Any],
) -> None:
    if ids.get("measurement_id"):
        job = ManagedPipelineJob(store, pipelines, settings=settings, **ids).setup()
        assert job.child_of == [metadata["measurement"]]
        return
    with pytest.raises(InvalidRequestError, match="exactly one kind") as caught:
        ManagedPipelineJob(store, pipelines, settings=settings, **ids)
    assert isinstance(caught.value, ManagedPipelineJobError)
    assert job_count(store) == 0


def test_bad_arguments_fail_at_construction_with_nothing_written(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    with pytest.raises(NotFoundError, match=r"sample\.unknown"):
        make_job(store, pipelines, settings, sample_id=["sample.compat.1", "sample.unknown"])
    with pytest.raises(InvalidRequestError, match="not a sample UUID"):
        make_job(store, pipelines, settings, sample_id=metadata["experiment"])
    with pytest.raises(InvalidRequestError, match="colour"):
        make_job(store, pipelines, settings, colour="blue")
    with pytest.raises(InvalidRequestError, match="pipeline_uuid"):
        make_job(store, {}, settings)
    with pytest.raises(NotFoundError, match="not registered"):
        make_job(store, {"pipeline_uuid": typed_uuid("unregistered", "pipeline")}, settings)
    with pytest.raises(InvalidRequestError, match="data"):
        make_job(store, pipelines, settings, data=["not", "a", "dict"])
    with pytest.raises(InvalidRequestError, match="inputs"):
        make_job(store, pipelines, settings, inputs="/uploads/not-a-list.fastq")
    with pytest.raises(InvalidRequestError, match="session"):
        make_job(store, pipelines, settings, session="../escape")
    assert job_count(store) == 0


def test_pipeline_uuid_keyword_overrides_the_configuration(
    store: Store, settings: Settings, catalog: Catalog, metadata: dict[str, str]
) -> None:
    other, _ = catalog.pipelines.register(
        {"id": "compat-other", "components": [{"image": "aligner:2.0"}]}
    )
    job = make_job(store, {}, settings, pipeline_uuid=other.uuid).setup()
    assert job.pipeline_uuid == other.uuid
    assert job.pipelines["pipeline_uuid"] == other.uuid


def test_linkages_and_options_are_stored(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    data = {
        "inputs": ["/uploads/run1/reads.fastq"],
        "parameters": {"genome": "https://example.org/genome.fa", "k": 31},
    }
    job = make_job(
        store,
        pipelines,
        settings,
        data=data,
        inputs=["s3://bucket/extra.csv"],
        agent="agent-7",
        task="task-9",
        session="calm-heron",
        archive_patterns=[{"kind": "archive", "patterns": [r"\.csv$"], "level": "2"}],
        archive_collection_level="sample",
        setup_archive_path=False,
    ).setup()
    assert job.refs_from_data_dict() == ["/uploads/run1/reads.fastq"]
    assert job.refs_from_data_dict(data, store="references") == ["https://example.org/genome.fa"]
    assert job.refs_from_data_dict({}) == []
    assert len(job.acted_on) == 2 and len(job.acted_using) == 1
    stored = store.get("job", {"uuid": job.uuid})
    assert stored is not None
    assert (stored["agent"], stored["task"], stored["session"]) == (
        "agent-7",
        "task-9",
        "calm-heron",
    )
    assert stored["archive_collection_level"] == "sample"
    assert stored["archive_patterns"][0]["patterns"] == [r"\.csv$"]
    assert job.archive_patterns[0]["level"] == "2"
    assert not (settings.data_dir / "archive" / job.archive_path.lstrip("/")).exists()
    with pytest.raises(InvalidRequestError, match="store"):
        job.refs_from_data_dict(data, store="nowhere")
    with pytest.raises(InvalidRequestError, match="data must be a dict, not list"):
        job.refs_from_data_dict(["/uploads/run1/reads.fastq"])  # type: ignore[arg-type]


# -- webhook --------------------------------------------------------------------------------


def test_build_webhook(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(store, pipelines, settings)
    with pytest.raises(InvalidRequestError, match="setup"):
        job.build_webhook()
    job.setup()
    token = job.catalog.jobs.job_token(job.uuid or "")
    assert job.build_webhook() == f"{SERVICE_URL}/jobs/{job.uuid}/events?token={token}"
    assert job.token == token and len(token) == 64
    fallback = make_job(
        store,
        {"pipeline_uuid": pipelines["pipeline_uuid"]},
        settings.with_overrides(service_url="http://127.0.0.1:9999/"),
    ).setup()
    assert fallback.build_webhook() == (
        f"http://127.0.0.1:9999/jobs/{fallback.uuid}/events?token={token}"
    )


# -- events ---------------------------------------------------------------------------------


def test_job_manager_drives_the_state_machine(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    created = make_job(store, pipelines, settings).setup()
    manager = JobManager(store, settings=settings).load(created.uuid)
    assert (manager.state, manager.last_event) == ("CREATED", "create")
    assert manager.archive_path == created.archive_path
    assert manager.pipeline_uuid == pipelines["pipeline_uuid"]
    steps = [
        ("run", "RUNNING"),
        ("update", "RUNNING"),
        ("resource", "RUNNING"),
        ("finish", "FINISHED"),
        ("index", "INDEXING"),
        ("indexed", "FINISHED"),
        ("validate", "VALIDATING"),
        ("validated", "VALIDATED"),
        ("finalize", "FINALIZED"),
        ("retire", "RETIRED"),
    ]
    for event, state in steps:
        returned = getattr(manager, event)({"step": event})
        assert returned is manager
        assert (manager.state, manager.last_event) == (state, event)
    with pytest.raises(InvalidTransitionError, match="RETIRED") as caught:
        manager.fail()
    assert isinstance(caught.value, ManagedPipelineJobError)
    history = manager.catalog.jobs.history(created.uuid or "")
    assert [e.name for e in history] == ["create"] + [e for e, _ in steps]
    assert history[1].data == {"step": "run"}


def test_fail_and_reject_paths(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(store, pipelines, settings, data={"path": "fail"}).setup()
    assert job.run().fail({"error": "exit 1"}).state == "FAILED"
    other = make_job(store, pipelines, settings, data={"path": "reject"}).setup()
    assert other.run().finish().validate().reject().state == "REJECTED"
    assert other.retire().state == "RETIRED"


def test_handle_by_name_and_document_is_idempotent(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(store, pipelines, settings).setup()
    job.handle("run", {"pid": 1})
    doc = {"name": "update", "data": {"progress": 0.5}, "event_id": "beat-1"}
    job.handle(doc)
    job.handle(doc)
    job.handle({"name": "update", "data": {}, "uuid": "beat-1"})  # the older key name
    names = [e.name for e in job.catalog.jobs.history(job.uuid or "")]
    assert names == ["create", "run", "update"]
    with pytest.raises(InvalidRequestError, match="unknown event"):
        job.handle("explode")


def test_owner_needs_no_token_but_a_given_token_is_checked(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(store, pipelines, settings).setup()
    job.run()
    with pytest.raises(ForbiddenError):
        job.update({"x": 1}, token="0" * 64)
    job.update({"x": 2}, token=job.token)
    with pytest.raises(ForbiddenError):
        JobManager(store, settings=settings).load(job.uuid, token="bad")
    loaded = JobManager(store, settings=settings, uuid=job.uuid).attach(token=job.token)
    assert loaded.state == "RUNNING"


def test_reset_does_reset_and_ready_with_an_admin_token(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(store, pipelines, settings).setup().run()
    output = settings.data_dir / "archive" / (job.archive_path or "").lstrip("/") / "out.txt"
    output.write_text("result")
    with pytest.raises(UnauthorizedError):
        job.reset()
    with pytest.raises(ForbiddenError):
        job.reset(token="f" * 64)
    with pytest.raises(UnauthorizedError):
        job.ready()
    assert job.refresh().state == "RUNNING"
    admin = job.catalog.jobs.admin_token()
    assert job.reset(token=admin) is job
    assert (job.state, job.last_event) == ("CREATED", "ready")
    assert not output.exists()
    names = [e.name for e in job.catalog.jobs.history(job.uuid or "")]
    assert names[-2:] == ["reset", "ready"]
    job.reset(token=admin, ready=False)
    assert job.state == "RESET"
    job.handle("ready", token=admin)
    assert job.state == "CREATED"


def test_delete_and_purge_need_an_admin_token(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    job = make_job(store, pipelines, settings).setup()
    admin = job.catalog.jobs.admin_token()
    with pytest.raises(UnauthorizedError):
        job.delete()
    with pytest.raises(UnauthorizedError):
        job.purge()
    job.delete(token=admin)
    with pytest.raises(NotFoundError):
        JobManager(store, settings=settings).load(job.uuid)
    job.undelete(token=admin)
    report = job.purge(token=admin, dry_run=True)
    assert report.dry_run and report.job_uuid == job.uuid
    assert job_count(store) == 1
    job.purge(token=admin)
    assert job_count(store) == 0


# -- ManagedPipelineJobInstance -------------------------------------------------------------


def test_instance_enforces_the_job_token(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    owner = make_job(store, pipelines, settings).setup()
    instance = ManagedPipelineJobInstance(store, owner.uuid, settings=settings)
    assert instance.token is None  # an outside caller is not handed the token
    for name in (p[0] for p in ManagedPipelineJobInstance.PARAMS):
        assert getattr(instance, name) == getattr(owner, name), name
    event = {"name": "run", "data": {"host": "node-1"}, "event_id": "run-1"}
    with pytest.raises(UnauthorizedError):
        instance.handle(event)
    with pytest.raises(ForbiddenError):
        instance.handle(event, token="0" * 64)
    with pytest.raises(UnauthorizedError):
        instance.run()
    assert owner.refresh().state == "CREATED"
    assert instance.handle(event, token=owner.token) is instance
    assert instance.state == "RUNNING"
    instance.handle(event, token=owner.token)  # a retry changes nothing
    instance.handle({**event, "name": "finish", "event_id": "f", "token": owner.token})
    assert instance.state == "FINISHED"
    names = [e.name for e in owner.catalog.jobs.history(owner.uuid or "")]
    assert names == ["create", "run", "finish"]


def test_instance_token_from_the_constructor(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    owner = make_job(store, pipelines, settings).setup()
    with pytest.raises(ForbiddenError):
        ManagedPipelineJobInstance(store, owner.uuid, settings=settings, token="bad")
    with pytest.raises(NotFoundError):
        ManagedPipelineJobInstance(store, typed_uuid("nothing", "pipelinejob"), settings=settings)
    instance = ManagedPipelineJobInstance(store, owner.uuid, settings=settings, token=owner.token)
    instance.handle({"name": "run", "data": {}})
    assert instance.state == "RUNNING"
    with pytest.raises(UnauthorizedError):
        instance.handle("reset")  # admin events need an admin token, not the job's
    instance.handle("reset", token=owner.catalog.jobs.admin_token())
    assert instance.state == "CREATED"


# -- ReactorManagedPipelineJob --------------------------------------------------------------


@pytest.mark.parametrize("settings_shape", ["attributes", "dict"])
def test_reactor_managed_job_from_a_host_object(
    store: Store,
    settings: Settings,
    pipelines: dict[str, str],
    metadata: dict[str, str],
    settings_shape: str,
) -> None:
    host_settings: Any = {"mongodb": store, "pipelines": pipelines}
    if settings_shape == "attributes":
        host_settings = SimpleNamespace(mongodb=store, pipelines=SimpleNamespace(**pipelines))
    client = object()
    host = SimpleNamespace(
        settings=host_settings,
        uid="actor-42",
        execid="exec-7",
        nickname="brave-otter",
        client=client,
    )
    job = ReactorManagedPipelineJob(
        host, {"k": 1}, sample_id="sample.compat.1", settings=settings
    ).setup({"j": 2})
    assert job.agave is client
    stored = store.get("job", {"uuid": job.uuid})
    assert stored is not None
    assert (stored["agent"], stored["task"], stored["session"]) == (
        "actor-42",
        "exec-7",
        "brave-otter",
    )
    assert stored["data"] == {"k": 1, "j": 2}
    assert job.build_webhook().startswith(f"{SERVICE_URL}/jobs/{job.uuid}/events?token=")
    history = job.catalog.jobs.history(job.uuid or "")
    assert history[0].agent == "actor-42"


def test_reactor_keywords_win_and_missing_settings_fail(
    store: Store, settings: Settings, pipelines: dict[str, str], metadata: dict[str, str]
) -> None:
    host = SimpleNamespace(
        settings={"mongodb": store, "pipelines": pipelines}, uid="actor-1", execid="e"
    )
    job = ReactorManagedPipelineJob(
        host, sample_id="sample.compat.2", task="override", instanced=True, settings=settings
    ).setup()
    assert job.task == "override" and job.instanced
    assert job.agave is None
    with pytest.raises(InvalidRequestError, match="pipelines"):
        ReactorManagedPipelineJob(
            SimpleNamespace(settings={"mongodb": store}, uid="a"),
            sample_id="sample.compat.1",
            settings=settings,
        )
    with pytest.raises(InvalidRequestError, match="uid"):
        ReactorManagedPipelineJob(
            SimpleNamespace(settings={"mongodb": store, "pipelines": pipelines}),
            sample_id="sample.compat.1",
            settings=settings,
        )


# -- connection arguments -------------------------------------------------------------------


def test_mongodb_argument_forms(tmp_path: Path, settings: Settings) -> None:
    from datacatalog.managers.pipelinejobs.jobmanager import open_catalog

    by_uri, owns = open_catalog("mongomock://", settings=settings)
    assert owns and by_uri.store.database_name == settings.mongodb_database
    by_dict, owns = open_catalog({"uri": "mongomock://", "database": "other"}, settings=settings)
    assert owns and by_dict.store.database_name == "other"
    reused, owns = open_catalog(by_dict.store, settings=settings)
    assert reused.store is by_dict.store and not owns
    embedded, owns = open_catalog(None, settings=settings)
    assert owns and embedded.store.description.startswith("embedded")
    for opened in (by_uri, by_dict, embedded):
        opened.close()
