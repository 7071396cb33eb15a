"""Tests for datacatalog.metadata: loading the metadata chain and resolving ids (SPEC §4)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from datacatalog.errors import ConflictError, InvalidRequestError, NotFoundError
from datacatalog.identifiers import typed_uuid
from datacatalog.metadata import LEVELS, MetadataEntity, MetadataRegistry
from datacatalog.store import Store

DESIGN = {"experiment_design_id": "design.rnaseq", "title": "RNA-seq design"}
EXPERIMENT = {"experiment_id": "experiment.tacc.1", "experiment_design_id": "design.rnaseq"}
SAMPLES = [
    {"sample_id": "sample.tacc.1", "experiment_id": "experiment.tacc.1", "strain": "W303"},
    {
        "sample_id": "sample.tacc.2",
        "child_of": [typed_uuid("experiment.tacc.1", "experiment")],
        "temperature": 30,
    },
]
MEASUREMENTS = [
    {"measurement_id": "measurement.tacc.0x00000000", "sample_id": "sample.tacc.1"},
    {"measurement_id": "measurement.tacc.0x00000001", "child_of": "sample.tacc.2"},
    {
        "kind": "measurement",
        "measurement_id": "measurement.tacc.0x00000002",
        "child_of": ["sample.tacc.1", typed_uuid("sample.tacc.2", "sample")],
        "extra": {"instrument": "flow", "channels": [1, 2]},
    },
]
ALL = [DESIGN, EXPERIMENT, *SAMPLES, *MEASUREMENTS]

M0 = "10452d7e-7f0a-59df-a1a3-c5bb44e07f2f"  # SPEC §3 golden value
M1 = typed_uuid("measurement.tacc.0x00000001", "measurement")
M2 = typed_uuid("measurement.tacc.0x00000002", "measurement")
S1 = typed_uuid("sample.tacc.1", "sample")
S2 = typed_uuid("sample.tacc.2", "sample")


@pytest.fixture
def registry(store: Store) -> MetadataRegistry:
    return MetadataRegistry(store)


@pytest.fixture
def loaded(registry: MetadataRegistry) -> MetadataRegistry:
    registry.load(ALL)
    return registry


def counts(store: Store) -> dict[str, int]:
    return {kind: store.count(kind, {}) for kind in LEVELS}


def content(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every stored metadata document without its bookkeeping."""
    return {
        kind: [
            {k: v for k, v in doc.items() if k != "_properties"}
            for doc in store.find(kind, {}, sort=[("uuid", 1)])
        ]
        for kind in LEVELS
    }


# -- loading ----------------------------------------------------------------------------------


def test_bulk_load_chain(registry: MetadataRegistry, store: Store) -> None:
    result = registry.load(ALL)
    assert result.created == 7
    assert counts(store) == {"experiment_design": 1, "experiment": 1, "sample": 2, "measurement": 3}
    assert [e.kind for e in result.entities] == [
        "experiment_design",
        "experiment",
        "sample",
        "sample",
        "measurement",
        "measurement",
        "measurement",
    ]
    design = typed_uuid("design.rnaseq", "experiment_design")
    experiment = typed_uuid("experiment.tacc.1", "experiment")
    stored = {d["uuid"]: d for kind in LEVELS for d in store.find(kind, {})}
    assert stored[design]["child_of"] == []
    assert stored[design]["title"] == "RNA-seq design"
    assert stored[experiment]["child_of"] == [design]
    assert stored[S1]["child_of"] == [experiment]
    assert stored[S1]["strain"] == "W303"
    assert stored[S2]["child_of"] == [experiment]
    assert stored[M0]["child_of"] == [S1]
    assert stored[M0]["measurement_id"] == "measurement.tacc.0x00000000"
    assert stored[M1]["child_of"] == [S2]
    assert stored[M2]["child_of"] == sorted([S1, S2])
    assert stored[M2]["extra"] == {"instrument": "flow", "channels": [1, 2]}
    # Parent id fields become links; they are not kept as free-form fields.
    assert "experiment_id" not in stored[S1]
    assert "kind" not in stored[M2]


def test_children_before_parents_in_one_list(registry: MetadataRegistry, store: Store) -> None:
    registry.load(list(reversed(ALL)))
    assert sum(counts(store).values()) == 7


def test_load_in_several_calls(registry: MetadataRegistry, store: Store) -> None:
    registry.load([DESIGN])
    registry.load([EXPERIMENT])
    registry.load(SAMPLES)
    registry.load(MEASUREMENTS)
    assert sum(counts(store).values()) == 7


def test_reload_is_idempotent(registry: MetadataRegistry, store: Store) -> None:
    registry.load(ALL)
    before = content(store)
    again = registry.load(ALL)
    assert again.created == 0
    assert content(store) == before
    assert counts(store) == {"experiment_design": 1, "experiment": 1, "sample": 2, "measurement": 3}


def test_reload_updates_fields(registry: MetadataRegistry, store: Store) -> None:
    registry.load(ALL)
    result = registry.load([{**DESIGN, "title": "renamed"}])
    assert result.created == 0
    assert registry.get("experiment_design", "design.rnaseq").fields["title"] == "renamed"


def test_a_load_racing_another_never_merges_the_two(
    registry: MetadataRegistry, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.load([{**DESIGN, "notes": "first"}])
    other = MetadataRegistry(store)
    find = store.find
    raced: list[bool] = []

    def read_then_race(kind: str, query: Any, **options: Any) -> Any:
        found = find(kind, query, **options)
        if kind == "experiment_design" and not raced:
            raced.append(True)  # another load replaces the design between read and write
            other.load([{**DESIGN, "owner": "lab-b"}])
        return found

    monkeypatch.setattr(store, "find", read_then_race)
    with pytest.raises(ConflictError, match="changed by another load"):
        registry.load([{**DESIGN, "title": "mine", "notes": "second"}])
    monkeypatch.undo()

    design = registry.get("experiment_design", "design.rnaseq")
    assert design.fields == {"title": DESIGN["title"], "owner": "lab-b"}
    result = registry.load([{**DESIGN, "title": "mine", "notes": "second"}])
    assert result.updated == 1
    assert registry.get("experiment_design", "design.rnaseq").fields == {
        "title": "mine",
        "notes": "second",
    }


def test_entities(loaded: MetadataRegistry) -> None:
    sample = loaded.get("sample", "sample.tacc.1")
    assert isinstance(sample, MetadataEntity)
    assert sample.uuid == S1
    assert sample.id == "sample.tacc.1"
    assert sample.fields == {"strain": "W303"}
    assert loaded.get("sample", S1) == sample
    body = sample.to_dict()
    assert json.loads(json.dumps(body)) == body
    assert body["sample_id"] == "sample.tacc.1"
    ids = [m.id for m in loaded.find("measurement")]
    assert ids == sorted(ids) and len(ids) == 3
    assert [m.id for m in loaded.find("measurement", limit=1, skip=1)] == [ids[1]]
    with pytest.raises(InvalidRequestError, match="unknown metadata kind 'widget'"):
        loaded.find("widget")
    with pytest.raises(NotFoundError, match=r"sample\.tacc\.9"):
        loaded.get("sample", "sample.tacc.9")


# -- bad documents: nothing written ------------------------------------------------------------

BAD_DOCUMENTS: list[tuple[str, Any, type[Exception], str]] = [
    ("no kind", {"title": "x"}, InvalidRequestError, "has no kind"),
    ("unknown kind", {"kind": "widget", "widget_id": "w"}, InvalidRequestError, "has no kind"),
    ("empty id", {"sample_id": " "}, InvalidRequestError, "needs a non-empty 'sample_id'"),
    ("not an object", "sample.tacc.1", InvalidRequestError, "must be a JSON object"),
    (
        "datetime extra",
        {"sample_id": "s.x", "when": datetime(2024, 1, 1, tzinfo=timezone.utc)},
        InvalidRequestError,
        r"sample 's\.x'\.when is a datetime",
    ),
    (
        "dollar key",
        {"sample_id": "s.x", "extra": {"$gt": 1}},
        InvalidRequestError,
        r"has a key '\$gt'",
    ),
    ("dotted key", {"sample_id": "s.x", "a.b": 1}, InvalidRequestError, r"has a key 'a\.b'"),
    (
        "wrong uuid",
        {"sample_id": "s.x", "uuid": typed_uuid("s.y", "sample")},
        InvalidRequestError,
        "declares uuid",
    ),
    (
        "two ids",
        {"kind": "sample", "sample_id": "s.x", "measurement_id": "m.x"},
        InvalidRequestError,
        "also names measurement_id",
    ),
    (
        "parent of the wrong kind",
        {"sample_id": "s.x", "child_of": [typed_uuid("design.rnaseq", "experiment_design")]},
        InvalidRequestError,
        "is not a experiment UUID",
    ),
    (
        "design with a parent",
        {"experiment_design_id": "d.x", "child_of": ["anything"]},
        InvalidRequestError,
        "an experiment design has no parent",
    ),
    (
        "title not a string",
        {"sample_id": "s.x", "title": 5},
        InvalidRequestError,
        "sample document is invalid at title",
    ),
    (
        "missing parent",
        {"measurement_id": "m.x", "sample_id": "sample.tacc.404"},
        NotFoundError,
        typed_uuid("sample.tacc.404", "sample"),
    ),
]


def test_bad_document_anywhere_writes_nothing(registry: MetadataRegistry, store: Store) -> None:
    # One test walks every case: on a real server the first count of each collection
    # creates its indexes, which would dominate a test per case.
    for index, (name, bad, error, message) in enumerate(BAD_DOCUMENTS):
        position = (0, 3, len(ALL))[index % 3]  # first, in the middle, last
        documents: list[Any] = list(ALL)
        documents.insert(position, bad)
        try:
            with pytest.raises(error, match=message):
                registry.load(documents)
            assert sum(counts(store).values()) == 0, "something was written"
        except (AssertionError, pytest.fail.Exception) as exc:
            raise AssertionError(f"bad document case {name!r}: {exc}") from exc


def test_missing_parent_is_named(registry: MetadataRegistry, store: Store) -> None:
    with pytest.raises(NotFoundError) as info:
        registry.load([{"sample_id": "s.orphan", "experiment_id": "experiment.nowhere"}])
    missing = typed_uuid("experiment.nowhere", "experiment")
    assert missing in str(info.value)
    assert info.value.details["missing"] == [missing]
    assert sum(counts(store).values()) == 0


def test_load_needs_a_list(registry: MetadataRegistry) -> None:
    with pytest.raises(InvalidRequestError, match="must be a list"):
        registry.load(DESIGN)  # type: ignore[arg-type]


# -- resolution (SPEC §4) -----------------------------------------------------------------------


def test_resolve_ids_and_uuids(loaded: MetadataRegistry) -> None:
    assert loaded.resolve(measurement_id="measurement.tacc.0x00000000") == [M0]
    assert loaded.resolve(measurement_id=M1) == [M1]
    mixed = ["measurement.tacc.0x00000002", M0, "measurement.tacc.0x00000000"]
    assert loaded.resolve(measurement_id=mixed) == sorted([M0, M2])
    assert loaded.resolve(experiment_design_id="design.rnaseq") == [
        typed_uuid("design.rnaseq", "experiment_design")
    ]
    assert loaded.resolve(experiment_id=("experiment.tacc.1",)) == [
        typed_uuid("experiment.tacc.1", "experiment")
    ]
    assert loaded.resolve(sample_id=["sample.tacc.2", "sample.tacc.1"]) == sorted([S1, S2])


def test_resolve_unknown_ids_are_named(loaded: MetadataRegistry) -> None:
    unknown_uuid = typed_uuid("measurement.tacc.0xFFFFFFFF", "measurement")
    with pytest.raises(NotFoundError) as info:
        loaded.resolve(measurement_id=[M0, "measurement.tacc.missing", unknown_uuid])
    message = str(info.value)
    assert "measurement.tacc.missing" in message
    assert unknown_uuid in message
    assert M0 not in message
    assert sorted(info.value.details["missing"]) == sorted(
        ["measurement.tacc.missing", unknown_uuid]
    )
    with pytest.raises(NotFoundError, match=r"unknown sample: sample\.tacc\.404"):
        loaded.resolve(sample_id="sample.tacc.404")


RESOLVE_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    (
        "wrong kind uuid",
        {"measurement_id": [M0, S1]},
        "is a sample UUID, not a measurement UUID",
    ),
    ("untyped uuid", {"sample_id": "999e95e6-67a8-5a06-9484-3131c6907890"}, "untyped UUID"),
    (
        "two kinds",
        {"sample_id": "sample.tacc.1", "measurement_id": M0},
        "exactly one kind.*measurement_id, sample_id",
    ),
    ("none", {}, "none was given"),
    ("none: None", {"sample_id": None}, "none was given"),
    ("none: empty list", {"sample_id": []}, "none was given"),
    ("none: empty string", {"sample_id": ""}, "none was given"),
    ("unknown argument", {"sample_uuid": S1}, "unknown metadata argument.*sample_uuid"),
    ("integer", {"sample_id": 5}, "must be a string or a list of strings"),
    ("integer in list", {"sample_id": [S1, 5]}, "must be non-empty strings"),
    ("blank in list", {"sample_id": [" "]}, "must be non-empty strings"),
    ("mapping", {"sample_id": {"a": 1}}, "must be a string or a list of strings"),
]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(a, m) for _, a, m in RESOLVE_ERRORS],
    ids=[n for n, _, _ in RESOLVE_ERRORS],
)
def test_resolve_refuses(
    registry: MetadataRegistry, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        registry.resolve(**arguments)
