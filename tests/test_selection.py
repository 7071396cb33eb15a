"""Metadata selections: the entities of one level under some given ones, on both engines."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from datacatalog.errors import InvalidRequestError, NotFoundError
from datacatalog.identifiers import typed_uuid
from datacatalog.metadata import MetadataRegistry
from datacatalog.selection import select
from datacatalog.store import Store
from tests.support.jobs import spy

METADATA: list[dict[str, Any]] = [
    {"experiment_design_id": "D"},
    {"experiment_design_id": "D2"},
    {"experiment_id": "E1", "experiment_design_id": "D"},
    {"experiment_id": "E2", "experiment_design_id": "D"},
    {"sample_id": "s2", "experiment_id": "E1"},
    {"sample_id": "s1", "experiment_id": "E1"},
    {"sample_id": "s3", "experiment_id": "E2"},
    {"measurement_id": "m1", "sample_id": "s1"},
    {"measurement_id": "m2", "sample_id": "s2"},
    {"measurement_id": "m3", "sample_id": "s3"},
]


@pytest.fixture
def loaded(store: Store) -> Store:
    MetadataRegistry(store).load(METADATA)
    return store


def ids(store: Store, **arguments: Any) -> list[str]:
    return [e.id for e in select(store, **arguments).entities]


def test_levels_under_a_design_an_experiment_and_a_list(loaded: Store) -> None:
    assert ids(loaded, experiment_design_id="D", level="measurement") == ["m1", "m2", "m3"]
    assert ids(loaded, experiment_design_id="D", level="sample") == ["s1", "s2", "s3"]
    assert ids(loaded, experiment_id="E1", level="sample") == ["s1", "s2"]
    assert ids(loaded, sample_id=["s3", "s1"]) == ["s1", "s3"]  # ordered by id
    by_uuid = select(loaded, sample_id=typed_uuid("s2", "sample"), level="measurement")
    assert [e.uuid for e in by_uuid.entities] == [typed_uuid("m2", "measurement")]
    chosen = select(loaded, experiment_id=["E1", "E2"], level="measurement")
    assert chosen.kind == "measurement" and chosen.given_kind == "experiment"
    assert chosen.describe() == "measurements under experiment E1, E2"


def test_one_query_per_level_walked(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = spy(loaded, monkeypatch)
    select(loaded, experiment_design_id="D", level="measurement")
    # the design resolved, experiments, samples, then the measurements with their ids
    assert calls == Counter({"find": 4})


@pytest.mark.parametrize(
    ("arguments", "error", "named"),
    [
        ({"experiment_id": "E1", "level": "plate"}, InvalidRequestError, "unknown level 'plate'"),
        ({"sample_id": "s1", "level": "experiment"}, InvalidRequestError, "above the samples"),
        ({"experiment_design_id": "D2", "level": "sample"}, InvalidRequestError, "holds no"),
        ({"experiment_id": ["E1", "nope"]}, NotFoundError, "nope"),
        ({}, InvalidRequestError, "exactly one"),
        ({"experiment_id": "E1", "sample_id": "s1"}, InvalidRequestError, "one kind"),
    ],
)
def test_bad_selections_are_one_clear_error(
    loaded: Store, arguments: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        select(loaded, **arguments)
