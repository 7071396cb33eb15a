"""Tests for datacatalog.jobs: creating and attaching jobs, refusing bad input, queries.

Every test runs on both engines through the ``store`` fixture. :func:`make_world` (also
used by the other job test modules) builds a catalog on a store with two pipelines and a
small metadata chain, archiving under a temporary data dir.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from datacatalog import archive
from datacatalog.catalog import Catalog
from datacatalog.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)
from datacatalog.identifiers import file_uuid, job_uuid, typed_uuid
from datacatalog.jobs import MAX_JOB_DATA_BYTES, Job
from datacatalog.settings import Settings
from datacatalog.store import Store
from tests.support.jobs import M1, M2, SECRET, World, make_world, nothing_written

INSTANCE_NAME = re.compile(r"^[a-z]+(-[a-z]+)+-\d{8}T\d{6}Z$")


# -- creation --------------------------------------------------------------------------


def test_job_identity_matches_the_pure_functions(world: World) -> None:
    data = {"threshold": 0.5, "mode": "strict"}
    job = world.new_job(data)
    assert job.child_of == [M1]
    assert job.uuid == job_uuid(world.pipeline.uuid, [M1], data)
    assert job.archive_path == archive.archive_path(world.pipeline.uuid, [M1], data)
    assert job.pipeline_uuid == world.pipeline.uuid
    assert job.generated_by == [world.pipeline.uuid]
    assert (job.state, job.last_event, job.revision) == ("CREATED", "create", 0)
    assert [e.name for e in world.jobs.history(job.uuid)] == ["create"]
    # The pure functions themselves are the golden ones of SPEC §3 and §6.
    golden = ("106c46ff-8186-5756-a934-071f4497b58d", ["102e95e6-67a8-5a06-9484-3131c6907890"])
    assert job_uuid(*golden, {}) == "107a90b7-f083-5167-a63d-41a3bf278bf8"
    assert archive.archive_path(*golden, {}) == (
        "/products/v2/4vZZKuWQfMWUpLMKWq3KRX/4rcwc3k6B8Kiyfm7rqvSJ6/4rRDh4M5V4tXyLHim7HZJn"
    )


def test_metadata_given_by_uuid_or_list_resolves_to_the_same_child_of(world: World) -> None:
    by_id = world.plan({"k": 1})
    by_uuid = world.plan({"k": 1}, metadata={"measurement_id": [M1]})
    assert by_id.uuid == by_uuid.uuid
    both = world.plan(metadata={"measurement_id": ["measurement.jobs.2", M1]})
    assert both.child_of == sorted([M1, M2])
    assert both.uuid == job_uuid(world.pipeline.uuid, [M2, M1], {})


def test_creating_twice_attaches_without_changing(world: World) -> None:
    job = world.new_job({"n": 1})
    world.jobs.send(job.uuid, "run")
    before = world.jobs.get(job.uuid)
    history = world.jobs.history(job.uuid)

    again, created = world.jobs.create(world.plan({"n": 1}))

    assert created is False
    assert again == before
    assert again.state == "RUNNING"
    assert world.jobs.history(job.uuid) == history
    assert world.job_count() == 1


def test_instanced_jobs_get_a_session_directory(world: World) -> None:
    job = world.new_job({"n": 1}, instanced=True)
    base = archive.archive_path(world.pipeline.uuid, [M1], {"n": 1})
    parent, name = job.archive_path.rsplit("/", 1)
    assert parent == base
    assert INSTANCE_NAME.match(name), name
    assert job.instanced is True

    named = world.new_job({"n": 2}, instanced=True, session="nightly")
    assert re.fullmatch(r"nightly-\d{8}T\d{6}Z", named.archive_path.rsplit("/", 1)[1])
    assert named.session == "nightly"


def test_two_different_instanced_jobs_never_share_a_path(world: World) -> None:
    paths = {world.new_job({"n": n}, instanced=True, session="same").archive_path for n in range(4)}
    assert len(paths) == 4


def test_instanced_collision_draws_a_new_directory(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = archive.archive_path(world.pipeline.uuid, [M1], {"run": "b"})
    taken = "cosy-otter-20240102T030405Z"
    # Another job holds <base>/<taken> (recorded before explicit paths were kept out of
    # the generated tree), so the instanced job collides with it.
    holder = world.new_job({"run": "a"}, archive_path="/uploads/run-a")
    world.store.update("job", {"uuid": holder.uuid}, {"$set": {"archive_path": f"{base}/{taken}"}})
    names = iter([taken, taken, "brave-heron-20240102T030405Z"])
    monkeypatch.setattr(archive, "instanced_directory", lambda *a, **k: next(names))

    job = world.new_job({"run": "b"}, instanced=True)

    assert job.archive_path == f"{base}/brave-heron-20240102T030405Z"
    assert world.jobs.get(holder.uuid).archive_path == f"{base}/{taken}"
    assert world.job_count() == 2
    assert world.archive_dir(job).is_dir()


def test_collision_with_a_non_instanced_path_is_a_conflict(world: World) -> None:
    world.new_job({"n": 1}, archive_path="/shared/place")
    with nothing_written(world), pytest.raises(ConflictError, match="/shared/place"):
        world.new_job({"n": 2}, archive_path="/shared/place")


def test_explicit_archive_path_is_stored_as_given(world: World) -> None:
    job = world.new_job({"n": 1}, archive_path="/custom/runs/run-1", instanced=True)
    assert job.archive_path == "/custom/runs/run-1"
    assert job.instanced is False
    assert world.jobs.get(job.uuid).archive_path == "/custom/runs/run-1"
    assert job.uuid == job_uuid(world.pipeline.uuid, [M1], {"n": 1})


def test_setup_archive_path_creates_the_directory_under_the_data_dir(world: World) -> None:
    job = world.new_job({"n": 1})
    where = world.archive_dir(job)
    assert where.is_dir()
    assert where.is_relative_to(world.data_dir / "archive")
    assert str(where).endswith(job.archive_path)

    skipped = world.new_job({"n": 2}, setup_archive_path=False)
    assert not world.archive_dir(skipped).exists()


def test_a_job_names_its_local_output_directory(store: Store, tmp_path: Path) -> None:
    settings = Settings.load(
        env={},
        data_dir=tmp_path,
        secret=SECRET,
        storage_systems={"scratch": f"memory://jobs-test-{uuid.uuid4().hex}"},
    )
    catalog = Catalog(store, settings=settings)
    base = make_world(store, tmp_path)
    world = World(catalog, store, tmp_path, base.pipeline, base.other_pipeline)
    job = world.new_job({"n": 1})
    # The catalog path is inside the storage root, not the machine's root directory.
    expected = tmp_path / "archive" / job.archive_path.lstrip("/")
    assert job.archive_dir(catalog.storage) == expected
    assert catalog.jobs.archive_dir(job) == expected == catalog.jobs.archive_dir(job.uuid)
    assert expected.is_dir()
    remote = world.new_job({"n": 2}, archive_system="scratch", setup_archive_path=False)
    assert remote.archive_dir(catalog.storage) is None
    assert catalog.jobs.archive_dir(remote.uuid) is None


def test_stored_path_is_not_recomputed(world: World) -> None:
    job = world.new_job({"n": 1}, instanced=True)
    world.jobs.send(job.uuid, "run")
    assert world.jobs.get(job.uuid).archive_path == job.archive_path
    again, created = world.jobs.create(world.plan({"n": 1}, instanced=True))
    assert created is False
    assert again.archive_path == job.archive_path


def test_inputs_become_acted_on_and_acted_using(world: World) -> None:
    data = {
        "inputs": ["/data/reads/r1.fastq", 3, None, {"nested": "/data/reads/r2.fastq"}],
        "parameters": {
            "reference": "https://example.org/genome.fa",
            "doi": "doi:10.1000/xyz",
            "depth": 12,
            "ratio": 0.25,
            "missing": None,
            "deep": {"more": ["agave://storage/data/extra.csv", True]},
        },
        "note": "/not/an/input/outside/inputs/or/parameters",
    }
    job = world.new_job(data, inputs=["/data/reads/r1.fastq", "https://example.org/other"])
    expected_files = {
        file_uuid("/data/reads/r1.fastq"),
        file_uuid("/data/reads/r2.fastq"),
        file_uuid("/data/extra.csv"),
    }
    expected_refs = {
        typed_uuid(r, "reference")
        for r in (
            "https://example.org/genome.fa",
            "doi:10.1000/xyz",
            "https://example.org/other",
        )
    }
    assert job.acted_on == sorted(expected_files)
    assert job.acted_using == sorted(expected_refs)
    assert job.data == data
    # Inputs given outside ``data`` do not change the job's identity.
    assert job.uuid == job_uuid(world.pipeline.uuid, [M1], data)


def test_typed_uuids_in_inputs_pass_through(world: World) -> None:
    given_file = file_uuid("/elsewhere/in.txt")
    given_ref = typed_uuid("https://example.org/x", "reference")
    job = world.new_job({"n": 1}, inputs=[given_file, given_ref])
    assert job.acted_on == [given_file]
    assert job.acted_using == [given_ref]


def test_agent_task_and_index_requests_are_stored(world: World) -> None:
    job = world.new_job(
        {"n": 1},
        agent="https://agents.example.org/aligner",
        task="task-17",
        archive_patterns=[{"patterns": [r"\.bam$"], "level": "1"}],
        archive_collection_level="1",
    )
    stored = world.jobs.get(job.uuid)
    assert stored.agent == "https://agents.example.org/aligner"
    assert stored.task == "task-17"
    assert [list(r.patterns) for r in stored.index_requests()] == [[r"\.bam$"]]
    assert stored.archive_collection_level == "1"


def test_webhook_url_carries_the_job_token(world: World) -> None:
    job = world.new_job({"n": 1})
    url = world.jobs.webhook_url(job.uuid, base_url="https://hooks.example.org/")
    token = world.jobs.job_token(job.uuid)
    assert url == f"https://hooks.example.org/jobs/{job.uuid}/events?token={token}"
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert world.jobs.job_token(job.uuid) == token


# -- bad input ---------------------------------------------------------------------------


BAD_PLANS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("dotdot path", {"archive_path": "/products/../etc"}, InvalidRequestError, r"\.\."),
    ("relative path", {"archive_path": "products/v2/x"}, InvalidRequestError, "absolute"),
    (
        "two metadata kinds",
        {"metadata": {"measurement_id": "measurement.jobs.1", "sample_id": "sample.jobs.1"}},
        InvalidRequestError,
        "exactly one kind",
    ),
    ("no metadata", {"metadata": {}}, InvalidRequestError, "none was given"),
    (
        "unresolvable metadata",
        {"metadata": {"measurement_id": "measurement.nowhere"}},
        NotFoundError,
        "measurement.nowhere",
    ),
    (
        "oversized data",
        {"data": {"blob": "x" * MAX_JOB_DATA_BYTES}},
        PayloadTooLargeError,
        "over the limit",
    ),
    ("dollar key", {"data": {"$where": 1}}, InvalidRequestError, r"\$where"),
    ("nested dollar key", {"data": {"a": [{"$set": 1}]}}, InvalidRequestError, r"data\.a\[0\]"),
    ("dotted key", {"data": {"a.b": 1}}, InvalidRequestError, "a.b"),
    (
        "datetime",
        {"data": {"when": datetime(2024, 1, 1, tzinfo=timezone.utc)}},
        InvalidRequestError,
        "datetime",
    ),
    ("set", {"data": {"ids": {1, 2}}}, InvalidRequestError, "set"),
    ("integer wider than 64 bits", {"data": {"n": 2**64}}, InvalidRequestError, "64-bit"),
    ("unknown pipeline", {"pipeline": "tests.nowhere"}, NotFoundError, "tests.nowhere"),
    (
        "unregistered pipeline uuid",
        {"pipeline": "106c46ff-8186-5756-a934-071f4497b58d"},
        NotFoundError,
        "106c46ff",
    ),
    ("bad session", {"session": "../up", "instanced": True}, InvalidRequestError, "session"),
    ("unknown storage", {"archive_system": "tape"}, NotFoundError, "tape"),
    ("inputs not a list", {"inputs": "/data/x"}, InvalidRequestError, "inputs"),
]


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [case[1:] for case in BAD_PLANS],
    ids=[case[0] for case in BAD_PLANS],
)
def test_bad_job_input_is_refused_and_nothing_is_written(
    world: World, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    world.new_job({"existing": True})
    options = dict(options)
    data = options.pop("data", {"n": 1})
    with nothing_written(world), pytest.raises(error, match=match):
        world.jobs.create(world.plan(data, **options))


def test_plan_refuses_an_option_it_does_not_declare(world: World) -> None:
    with nothing_written(world), pytest.raises(TypeError, match="archive_paht"):
        world.plan({"n": 1}, archive_paht="/products/x")
    with pytest.raises(TypeError, match="metadata"):
        world.jobs.plan(pipeline=world.pipeline.uuid)  # type: ignore[call-arg]


# -- find ------------------------------------------------------------------------------


def uuids(found: Sequence[Job]) -> set[str]:
    return {j.uuid for j in found}


def test_a_plan_naming_an_unconfigured_storage_system_creates_nothing(world: World) -> None:
    plan = replace(world.plan({"system": "gone"}), archive_system="gone")
    with nothing_written(world), pytest.raises(NotFoundError, match="'gone'"):
        world.jobs.create(plan)
    assert world.store.get("job", {"uuid": plan.uuid}) is None


def test_find_filters(world: World) -> None:
    a = world.new_job({"n": 1}, agent="alice")
    b = world.new_job({"n": 2}, agent="bob", metadata={"measurement_id": "measurement.jobs.2"})
    c = world.new_job({"n": 3}, agent="alice", pipeline=world.other_pipeline.uuid)
    world.jobs.send(b.uuid, "run")

    assert uuids(world.jobs.find()) == {a.uuid, b.uuid, c.uuid}
    assert uuids(world.jobs.find(state="RUNNING")) == {b.uuid}
    assert uuids(world.jobs.find(state="CREATED")) == {a.uuid, c.uuid}
    assert uuids(world.jobs.find(state="FAILED")) == set()
    assert uuids(world.jobs.find(pipeline=world.pipeline.uuid)) == {a.uuid, b.uuid}
    assert uuids(world.jobs.find(pipeline="tests.align")) == {a.uuid, b.uuid}
    assert uuids(world.jobs.find(pipeline="tests.count")) == {c.uuid}
    assert uuids(world.jobs.find(metadata=M1)) == {a.uuid, c.uuid}
    assert uuids(world.jobs.find(metadata=M2)) == {b.uuid}
    assert uuids(world.jobs.find(agent="alice")) == {a.uuid, c.uuid}
    assert uuids(world.jobs.find(agent="alice", pipeline="tests.align")) == {a.uuid}
    assert uuids(world.jobs.find(agent="carol")) == set()


def test_find_refuses_bad_filters(world: World) -> None:
    with pytest.raises(InvalidRequestError, match="unknown state 'SLEEPING'"):
        world.jobs.find(state="SLEEPING")
    with pytest.raises(NotFoundError, match=r"tests\.nowhere"):
        world.jobs.find(pipeline="tests.nowhere")
    with pytest.raises(InvalidRequestError, match="not a metadata UUID"):
        world.jobs.find(metadata=world.pipeline.uuid)
    with pytest.raises(InvalidRequestError, match="limit"):
        world.jobs.find(limit=5000)
    with pytest.raises(InvalidRequestError, match="skip"):
        world.jobs.find(skip=-1)


def test_find_refuses_a_filter_it_does_not_declare(world: World) -> None:
    with pytest.raises(TypeError, match="states"):
        world.jobs.find(states="RUNNING")  # type: ignore[call-arg]


def test_find_pages_are_stable_and_complete(world: World) -> None:
    made = {world.new_job({"n": n}).uuid for n in range(7)}
    everything = [j.uuid for j in world.jobs.find()]
    assert set(everything) == made

    pages = [[j.uuid for j in world.jobs.find(limit=3, skip=s)] for s in (0, 3, 6)]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [u for page in pages for u in page] == everything
    assert [j.uuid for j in world.jobs.find(limit=3, skip=3)] == pages[1]
    assert world.jobs.find(limit=3, skip=7) == []


def test_find_excludes_deleted_jobs(world: World) -> None:
    kept = world.new_job({"n": 1})
    gone = world.new_job({"n": 2})
    world.jobs.delete(gone.uuid, token=world.admin())
    assert uuids(world.jobs.find()) == {kept.uuid}
    assert uuids(world.jobs.find(state="CREATED", metadata=M1)) == {kept.uuid}
    assert uuids(world.jobs.find(include_deleted=True)) == {kept.uuid, gone.uuid}


def test_find_returns_the_same_jobs_as_get(world: World) -> None:
    job = world.new_job({"n": 1}, agent="alice")
    world.jobs.send(job.uuid, "run")
    (found,) = world.jobs.find(agent="alice")
    assert found == world.jobs.get(job.uuid)
    assert (found.state, found.revision) == ("RUNNING", 1)


@pytest.mark.parametrize(
    "path", ["/products", "/products/v2", "/products/v2/abc", "/products/v2/a/b/c/run-1"]
)
def test_an_explicit_archive_path_stays_out_of_the_generated_tree(world: World, path: str) -> None:
    with nothing_written(world), pytest.raises(InvalidRequestError, match="generated archive"):
        world.jobs.create(world.plan({"explicit": path}, archive_path=path))


def test_an_explicit_archive_path_may_not_nest_with_another_jobs(world: World) -> None:
    outer = world.new_job({"outer": True}, archive_path="/projects/shared")
    for path, data in (("/projects/shared/inner", {"inner": 1}), ("/projects", {"inner": 2})):
        plan = world.plan(data, archive_path=path)
        with (
            nothing_written(world),
            pytest.raises(ConflictError, match=f"overlaps job {outer.uuid}"),
        ):
            world.jobs.create(plan)
    world.new_job({"sibling": True}, archive_path="/projects/shared-other")
    again, created = world.jobs.create(world.plan({"outer": True}, archive_path="/projects/shared"))
    assert (again.uuid, created) == (outer.uuid, False)
