"""Loading metadata again: unchanged documents are left alone, changed ones replaced."""

from __future__ import annotations

from datacatalog.metadata import MetadataRegistry
from datacatalog.store import Store


def test_reloading_the_same_documents_changes_nothing(store: Store) -> None:
    registry = MetadataRegistry(store)
    docs = [
        {"experiment_design_id": "d1", "title": "Growth"},
        {"experiment_id": "e1", "experiment_design_id": "d1"},
    ]
    first = registry.load(docs)
    before = store.get("experiment_design", {"experiment_design_id": "d1"})

    again = registry.load(docs)

    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert store.get("experiment_design", {"experiment_design_id": "d1"}) == before


def test_a_field_left_out_on_reload_is_removed(store: Store) -> None:
    registry = MetadataRegistry(store)
    registry.load([{"experiment_design_id": "d1", "title": "Growth", "notes": {"a": 1}}])
    before = store.get("experiment_design", {"experiment_design_id": "d1"})
    assert before is not None

    result = registry.load([{"experiment_design_id": "d1", "title": "Growth v2"}])

    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    entity = registry.get("experiment_design", "d1")
    assert entity.fields == {"title": "Growth v2"}
    stored = store.get("experiment_design", {"experiment_design_id": "d1"})
    assert stored is not None
    assert stored["_properties"]["revision"] == before["_properties"]["revision"] + 1
