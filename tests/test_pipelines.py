"""Tests for datacatalog.pipelines: the pipeline registry, on every engine."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from datacatalog.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from datacatalog.identifiers import pipeline_uuid, typed_uuid, uuid_kind
from datacatalog.pipelines import MAX_PIPELINE_BYTES, Pipeline, PipelineRegistry
from datacatalog.store import Store

COMPONENTS = [
    {"id": "align", "image": "sd2e/align:1.0", "opts": {"threads": 4}},
    {"id": "count", "image": "sd2e/count:2.1"},
]


def spec(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "rnaseq",
        "name": "RNA-seq",
        "description": "aligns and counts reads",
        "components": COMPONENTS,
        "processing_levels": ["1", "2"],
        "accepts": ["FASTQ"],
        "produces": ["BAM", "CSV"],
        "pipeline_type": "primary-etl",
    }
    base.update(changes)
    return base


@pytest.fixture
def registry(store: Store) -> PipelineRegistry:
    return PipelineRegistry(store)


def test_register(registry: PipelineRegistry, store: Store) -> None:
    pipeline, created = registry.register(spec())
    assert created is True
    assert isinstance(pipeline, Pipeline)
    assert pipeline.uuid == pipeline_uuid("rnaseq", COMPONENTS)
    assert uuid_kind(pipeline.uuid) == "pipeline"
    assert pipeline.id == "rnaseq"
    assert pipeline.name == "RNA-seq"
    assert pipeline.components == COMPONENTS
    assert pipeline.processing_levels == ["1", "2"]
    assert pipeline.accepts == ["FASTQ"]
    assert pipeline.produces == ["BAM", "CSV"]
    assert pipeline.pipeline_type == "primary-etl"
    assert pipeline.created_date is not None
    assert pipeline.created_date.tzinfo is not None
    stored = store.get("pipeline", {"uuid": pipeline.uuid})
    assert stored is not None
    assert stored["_visible"] is True
    assert stored["_properties"]["revision"] == 0


def test_defaults(registry: PipelineRegistry) -> None:
    pipeline, _ = registry.register({"id": "tiny", "components": []})
    assert pipeline.name == "tiny"
    assert pipeline.processing_levels == ["1"]
    assert pipeline.description is None
    assert pipeline.accepts == [] and pipeline.produces == []


def test_register_same_document_again_changes_nothing(
    registry: PipelineRegistry, store: Store
) -> None:
    first, _ = registry.register(spec())
    before = store.get("pipeline", {"uuid": first.uuid})
    again, created = registry.register(spec())
    reordered, created_too = registry.register(dict(reversed(list(spec().items()))))
    assert (created, created_too) == (False, False)
    assert again == first == reordered
    assert store.get("pipeline", {"uuid": first.uuid}) == before
    assert before is not None and before["_properties"]["revision"] == 0
    assert store.count("pipeline", {}) == 1


def test_declared_uuid_must_match(registry: PipelineRegistry, store: Store) -> None:
    right = pipeline_uuid("rnaseq", COMPONENTS)
    pipeline, _ = registry.register(spec(uuid=right))
    assert pipeline.uuid == right
    with pytest.raises(InvalidRequestError, match="declares uuid"):
        registry.register(spec(uuid=typed_uuid("other", "pipeline"), id="p2"))
    assert store.count("pipeline", {}) == 1


def test_different_components_make_a_different_pipeline(
    registry: PipelineRegistry, store: Store
) -> None:
    first, _ = registry.register(spec())
    changed = [*COMPONENTS, {"id": "report", "image": "sd2e/report:1"}]
    second, created = registry.register(spec(components=changed))
    assert created is True
    assert second.uuid != first.uuid
    assert store.count("pipeline", {}) == 2
    # The older registration is kept as it was.
    assert registry.get(first.uuid) == first
    # By id, the newest registration wins.
    assert registry.get("rnaseq") == second


def test_component_order_matters(registry: PipelineRegistry) -> None:
    first, _ = registry.register(spec())
    swapped, created = registry.register(spec(components=list(reversed(COMPONENTS))))
    assert created is True
    assert swapped.uuid != first.uuid


def test_get_by_uuid_and_by_id(registry: PipelineRegistry) -> None:
    pipeline, _ = registry.register(spec())
    assert registry.get(pipeline.uuid) == pipeline
    assert registry.get("rnaseq") == pipeline


def test_get_unknown(registry: PipelineRegistry) -> None:
    with pytest.raises(NotFoundError, match="'nope' is not registered"):
        registry.get("nope")
    missing = typed_uuid("missing", "pipeline")
    with pytest.raises(NotFoundError) as info:
        registry.get(missing)
    assert missing in str(info.value)


def test_get_wrong_kind_uuid(registry: PipelineRegistry) -> None:
    registry.register(spec())
    job = typed_uuid("some job", "pipelinejob")
    with pytest.raises(InvalidRequestError, match="is a pipelinejob UUID, expected a pipeline"):
        registry.get(job)


def test_find_newest_first(registry: PipelineRegistry) -> None:
    registered = [registry.register(spec(id=f"p{i}"))[0] for i in range(4)]
    found = registry.find()
    assert [p.uuid for p in found] == [p.uuid for p in reversed(registered)]
    assert [p.id for p in registry.find(limit=2)] == ["p3", "p2"]
    assert [p.id for p in registry.find(skip=3)] == ["p0"]


def test_newest_by_id_when_registered_in_the_same_millisecond(store: Store) -> None:
    # Registrations this quick often share a created date.
    for round_ in range(15):
        registry = PipelineRegistry(store)
        pid = f"quick-{round_}"
        registry.register({"id": pid, "components": [{"v": 1}]})
        newest, _ = registry.register({"id": pid, "components": [{"v": 2}]})
        assert registry.get(pid).uuid == newest.uuid


def test_to_dict_is_json(registry: PipelineRegistry) -> None:
    pipeline, _ = registry.register(spec())
    body = pipeline.to_dict()
    assert json.loads(json.dumps(body)) == body
    assert body["uuid"] == pipeline.uuid
    assert body["components"] == COMPONENTS


# -- bad input: a clear error and nothing written -----------------------------------------------

BAD_SPECS: list[tuple[str, Any, str]] = [
    ("no components", {"id": "p"}, "has no 'components' list"),
    ("components a dict", {"id": "p", "components": {"a": 1}}, "must be a list, not dict"),
    ("components a string", {"id": "p", "components": "align"}, "must be a list, not str"),
    (
        "datetime in components",
        {"id": "p", "components": [{"built": datetime(2024, 1, 1, tzinfo=timezone.utc)}]},
        r"components\[0\]\.built is a datetime",
    ),
    (
        "set in components",
        {"id": "p", "components": [{"tags": {"a", "b"}}]},
        r"components\[0\]\.tags is a set",
    ),
    (
        "dollar key nested",
        {"id": "p", "components": [{"opts": {"deep": [{"$where": "1"}]}}]},
        r"components\[0\]\.opts\.deep\[0\] has a key '\$where'",
    ),
    (
        "dollar key at top of a component",
        {"id": "p", "components": [{"$set": 1}]},
        r"components\[0\] has a key '\$set'",
    ),
    (
        "dotted key",
        {"id": "p", "components": [{"opts": {"a.b": 1}}]},
        r"components\[0\]\.opts has a key 'a\.b' containing '\.'",
    ),
    (
        "nan in components",
        {"id": "p", "components": [{"x": float("nan")}]},
        r"components\[0\]\.x is nan",
    ),
    ("component not an object", {"id": "p", "components": ["align"]}, "components/0"),
    ("unknown field", {"id": "p", "components": [], "colour": "red"}, "unknown field.*colour"),
    ("dollar field", {"id": "p", "components": [], "$where": "1"}, r"unknown field.*\$where"),
    ("no id", {"components": []}, "'id' must be a non-empty string"),
    ("empty id", {"id": "  ", "components": []}, "'id' must be a non-empty string"),
    ("id not a string", {"id": 7, "components": []}, "'id' must be a non-empty string"),
    (
        "bad processing level",
        {"id": "p", "components": [], "processing_levels": ["4"]},
        "'processing_levels' must be a list of 0, 1, 2, 3",
    ),
    ("name not a string", {"id": "p", "components": [], "name": 5}, "'name' must be a string"),
    (
        "accepts not strings",
        {"id": "p", "components": [], "accepts": [1]},
        "'accepts' must be a list of strings",
    ),
    ("not an object", ["id", "p"], "must be a JSON object, not list"),
]


def test_bad_pipeline_refused_and_nothing_written(registry: PipelineRegistry, store: Store) -> None:
    # One test walks every case: on a real server each fresh database pays for its
    # index creation, which would dominate a test per case.
    registry.register(spec())
    for name, bad, message in BAD_SPECS:
        try:
            with pytest.raises(InvalidRequestError, match=message):
                registry.register(bad)
            assert store.count("pipeline", {}) == 1, "something was written"
        except (AssertionError, pytest.fail.Exception) as exc:
            raise AssertionError(f"bad pipeline case {name!r}: {exc}") from exc


def test_oversized_components_refused(registry: PipelineRegistry, store: Store) -> None:
    huge = [{"blob": "x" * (MAX_PIPELINE_BYTES + 1)}]
    with pytest.raises(PayloadTooLargeError):
        registry.register({"id": "big", "components": huge})
    assert store.count("pipeline", {}) == 0
