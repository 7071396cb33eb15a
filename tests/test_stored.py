"""Value classes read from stored documents and written back (datacatalog.stored)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from datacatalog.stored import from_stored, to_stored


@dataclass(frozen=True)
class Record:
    id: str
    tags: list[str]
    size: float
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def test_fields_are_read_by_name_defaults_fill_the_absent_ones() -> None:
    doc = {"id": "r-1", "tags": ["a"], "size": 2.5, "unknown": "ignored"}
    assert from_stored(Record, doc) == Record(id="r-1", tags=["a"], size=2.5)


def test_given_values_take_the_place_of_the_documents() -> None:
    doc = {"uuid": "r-1", "tags": [], "size": 3, "note": "n"}
    record = from_stored(Record, doc, id=doc["uuid"], size=float(doc["size"]))
    assert record == Record(id="r-1", tags=[], size=3.0, note="n")
    assert isinstance(record.size, float)


def test_a_missing_field_without_a_default_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="size"):
        from_stored(Record, {"id": "r-1", "tags": []})


def test_lists_and_dicts_are_copied_both_ways() -> None:
    doc = {"id": "r-1", "tags": ["a"], "size": 1.0, "extra": {"k": 1}}
    record = from_stored(Record, doc)
    doc["tags"].append("b")
    doc["extra"]["k"] = 2
    assert record.tags == ["a"] and record.extra == {"k": 1}
    stored = to_stored(record)
    stored["tags"].append("c")
    assert record.tags == ["a"]


def test_to_stored_gives_the_fields_by_name_but_those_left_out() -> None:
    record = Record(id="r-1", tags=["a"], size=1.0, note="n")
    assert to_stored(record, without=("id", "extra")) == {"tags": ["a"], "size": 1.0, "note": "n"}
    assert list(to_stored(record)) == ["id", "tags", "size", "note", "extra"]
