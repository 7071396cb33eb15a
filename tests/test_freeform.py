"""Tests for datacatalog.freeform: what free-form user JSON may hold."""

from __future__ import annotations

import copy
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacatalog.errors import InvalidRequestError, PayloadTooLargeError
from datacatalog.freeform import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
    check_json,
    check_object,
    encoded_size,
)

json_keys = st.text(alphabet=st.characters(blacklist_characters="$.\x00"), max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=INT64_MIN, max_value=INT64_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=50, deadline=None)
@given(value=json_values)
def test_plain_json_is_accepted_unchanged(value: Any) -> None:
    before = copy.deepcopy(value)
    assert check_json(value) is value
    assert value == before


@pytest.mark.parametrize("number", [INT64_MIN - 1, INT64_MAX + 1, 2**64])
def test_integers_outside_64_bits_are_refused(number: int) -> None:
    with pytest.raises(InvalidRequestError, match=r"data\.n\[0\].*64-bit"):
        check_json({"n": [number]})


def test_tuples_are_json_arrays() -> None:
    assert check_json({"pair": (1, "a")}) == {"pair": (1, "a")}


@pytest.mark.parametrize(
    ("value", "path", "fragment"),
    [
        ({"when": datetime(2024, 1, 1, tzinfo=timezone.utc)}, "data.when", "datetime"),
        ({"day": date(2024, 1, 1)}, "data.day", "date"),
        ({"tags": {"a", "b"}}, "data.tags", "set"),
        ({"raw": b"\x00"}, "data.raw", "bytes"),
        ({"n": Decimal("1.5")}, "data.n", "Decimal"),
        ({"inputs": [1, 2, {"x": float("nan")}]}, "data.inputs[2].x", "nan"),
        ({"big": float("inf")}, "data.big", "inf"),
        ({"small": float("-inf")}, "data.small", "-inf"),
        ({"obj": object()}, "data.obj", "object"),
    ],
)
def test_non_json_values_are_refused_with_their_path(
    value: dict[str, Any], path: str, fragment: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_json(value)
    assert str(info.value).startswith(path + " ")
    assert fragment in str(info.value)
    assert info.value.details["where"] == path


@pytest.mark.parametrize(
    ("value", "path", "key"),
    [
        ({"$set": 1}, "data", "$set"),
        ({"a": {"b": [{"$where": "x"}]}}, "data.a.b[0]", "$where"),
        ({"a.b": 1}, "data", "a.b"),
        ({"outer": {"x.y": 1}}, "data.outer", "x.y"),
    ],
)
def test_reserved_keys_are_refused_with_their_path(
    value: dict[str, Any], path: str, key: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_json(value)
    assert str(info.value).startswith(path + " has a key " + repr(key))
    assert info.value.details == {"where": path, "key": key}


def test_dollar_inside_a_key_is_allowed() -> None:
    assert check_json({"price$": 1, "a$b": 2}) == {"price$": 1, "a$b": 2}


def test_nul_in_key_refused() -> None:
    with pytest.raises(InvalidRequestError, match="NUL"):
        check_json({"a\x00b": 1})


def test_non_string_key_refused() -> None:
    with pytest.raises(InvalidRequestError, match="key 1 of type int; keys must be strings"):
        check_json({1: "x"})


def test_where_names_the_value() -> None:
    with pytest.raises(InvalidRequestError, match=r"^event data\.x is a set"):
        check_json({"x": set()}, where="event data")


def test_depth_limit() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(InvalidRequestError, match="nested deeper"):
        check_json(deep)
    shallow: Any = 1
    for _ in range(MAX_DEPTH):
        shallow = [shallow]
    assert check_json(shallow) is shallow


def test_size_limit() -> None:
    value = {"a": "x" * 10}
    size = encoded_size(value)
    assert size == len('{"a":"xxxxxxxxxx"}')
    assert check_json(value, max_bytes=size) is value
    with pytest.raises(PayloadTooLargeError) as info:
        check_json(value, where="job data", max_bytes=size - 1)
    assert info.value.details["size"] == size
    assert info.value.details["limit"] == size - 1
    assert "job data" in str(info.value)
    assert isinstance(info.value, InvalidRequestError)


def test_size_counts_utf8_bytes() -> None:
    # canonical JSON escapes non-ASCII, so the size is of the escaped text.
    assert encoded_size("é") == len('"\\u00e9"')


def test_check_object() -> None:
    assert check_object(None) == {}
    assert check_object({"a": 1}) == {"a": 1}
    with pytest.raises(InvalidRequestError, match="data must be a JSON object, not list"):
        check_object([1])
    with pytest.raises(InvalidRequestError, match=r"data\.a\.b has a key"):
        check_object({"a": {"b": {"$x": 1}}})
