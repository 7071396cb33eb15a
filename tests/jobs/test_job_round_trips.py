"""Creating a job costs one round trip once its pipeline and metadata are known.

A registry remembers the pipelines it read by UUID and the metadata it resolved (neither
is ever removed or renamed), so a second job on the same pipeline and metadata is one
insert. Only an explicit archive path adds a read (the overlap check; generated paths
cannot nest). What is not known yet is still read, so a new registration or load made
elsewhere is seen at once.
"""

from __future__ import annotations

from collections import Counter

import pytest

from datacatalog.errors import NotFoundError
from datacatalog.identifiers import typed_uuid
from datacatalog.metadata import MetadataRegistry
from datacatalog.pipelines import PipelineRegistry
from datacatalog.store import Store
from tests.support.jobs import M1, World, spy


def test_a_job_on_known_pipeline_and_metadata_costs_one_insert(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.new_job({"n": 0}, setup_archive_path=False)
    calls = spy(world.store, monkeypatch)
    job = world.new_job({"n": 1}, setup_archive_path=False)
    assert calls == Counter({"insert_if_absent": 1})
    assert job.child_of == [M1]
    assert job.pipeline_uuid == world.pipeline.uuid


def test_an_explicit_archive_path_adds_the_overlap_read(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.new_job({"n": 0}, setup_archive_path=False)
    calls = spy(world.store, monkeypatch)
    job = world.new_job({"n": 1}, archive_path="/uploads/run-1", setup_archive_path=False)
    assert calls == Counter({"find": 1, "insert_if_absent": 1})
    assert job.archive_path == "/uploads/run-1"


def test_attaching_to_an_existing_job_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = world.new_job({"n": 2}, setup_archive_path=False)
    before = world.store.get("job", {"uuid": first.uuid})
    calls = spy(world.store, monkeypatch)
    again, created = world.jobs.create(world.plan({"n": 2}), setup_archive_path=False)
    assert (again, created) == (first, False)
    assert calls == Counter({"insert_if_absent": 1})
    assert world.store.get("job", {"uuid": first.uuid}) == before
    assert world.job_count() == 1


def test_metadata_given_by_id_or_uuid_resolves_the_same_from_memory(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = MetadataRegistry(store)
    registry.load([{"experiment_design_id": "design.a"}, {"experiment_design_id": "design.b"}])
    a, b = typed_uuid("design.a", "experiment_design"), typed_uuid("design.b", "experiment_design")
    assert registry.resolve(experiment_design_id=["design.a", b]) == sorted([a, b])
    calls = spy(store, monkeypatch)
    assert registry.resolve(experiment_design_id=[a, "design.b"]) == sorted([a, b])
    assert registry.resolve(experiment_design_id="design.a") == [a]
    assert calls == Counter()


def test_an_unknown_id_is_still_refused_and_an_entity_loaded_elsewhere_is_seen(
    store: Store,
) -> None:
    registry = MetadataRegistry(store)
    registry.load([{"experiment_design_id": "design.a"}])
    assert registry.resolve(experiment_design_id="design.a")
    with pytest.raises(NotFoundError, match=r"unknown experiment_design: design\.late"):
        registry.resolve(experiment_design_id=["design.a", "design.late"])
    MetadataRegistry(store).load([{"experiment_design_id": "design.late"}])
    assert registry.resolve(experiment_design_id=["design.a", "design.late"]) == sorted(
        typed_uuid(i, "experiment_design") for i in ("design.a", "design.late")
    )


def test_a_pipeline_by_uuid_is_read_once_and_by_id_follows_new_registrations(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = PipelineRegistry(store)
    first, _ = PipelineRegistry(store).register({"id": "p", "components": [{"image": "p:1"}]})
    assert registry.get(first.uuid) == first
    calls = spy(store, monkeypatch)
    assert registry.get(first.uuid) == first
    assert calls == Counter()
    second, _ = PipelineRegistry(store).register({"id": "p", "components": [{"image": "p:2"}]})
    assert registry.get("p") == second
    missing = typed_uuid("never.registered", "pipeline")
    with pytest.raises(NotFoundError, match="is not registered"):
        registry.get(missing)
