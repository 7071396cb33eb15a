"""Tests for datacatalog.indexrequests: construction, validation, matching, round trips."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacatalog.errors import DataCatalogError, InvalidRequestError
from datacatalog.indexrequests import (
    LEVELS,
    MAX_PATTERNS,
    ArchiveIndexRequest,
    IndexingError,
    IndexRequest,
    IndexType,
    InvalidIndexingRequest,
    ProductIndexRequest,
    index_request_from,
)

INPUT = "105aaaaa-0000-5000-8000-000000000000"

# -- kinds and errors ----------------------------------------------------------------


def test_index_type_members_and_fields() -> None:
    assert IndexType.MEMBERS == ["archive", "product"]
    assert IndexType("archive") == "archive"
    assert IndexType("Product") == "product"
    assert isinstance(IndexType("archive"), str)
    assert IndexType("archive").patterns_field == "archive_patterns"
    assert IndexType("product").patterns_field == "product_patterns"
    assert IndexType("archive").request_class is ArchiveIndexRequest
    assert IndexType("product").request_class is ProductIndexRequest


@pytest.mark.parametrize("bad", ["reference", "", None, 3])
def test_index_type_refuses_unknown_kinds(bad: Any) -> None:
    with pytest.raises(InvalidIndexingRequest, match="unknown index request kind"):
        IndexType(bad)


def test_error_classes() -> None:
    assert issubclass(IndexingError, DataCatalogError)
    assert issubclass(InvalidIndexingRequest, InvalidRequestError)
    assert issubclass(InvalidIndexingRequest, ValueError)
    error = InvalidIndexingRequest("bad", field="x")
    assert error.code == "invalid_request"
    assert error.details == {"field": "x"}
    assert str(error) == "bad"


# -- construction ----------------------------------------------------------------------


def test_archive_defaults() -> None:
    request = ArchiveIndexRequest(patterns=[r"\.png$"])
    assert request.kind == "archive"
    assert request.index_type == "archive"
    assert request.patterns == (r"\.png$",)
    assert request.level == "1"
    assert request.note is None
    assert request.fixity is True
    assert request.generated_by == ()
    assert request.to_dict() == {
        "kind": "archive",
        "patterns": [r"\.png$"],
        "level": "1",
        "note": None,
        "fixity": True,
        "generated_by": [],
    }


def test_product_defaults() -> None:
    request = ProductIndexRequest(patterns=[], derived_from=[INPUT])
    assert request.kind == "product"
    assert request.derived_from == (INPUT,)
    assert request.derived_using == ()
    assert request.fixity is False
    assert request.to_dict() == {
        "kind": "product",
        "patterns": [],
        "derived_from": [INPUT],
        "derived_using": [],
        "note": None,
        "fixity": False,
        "generated_by": [],
    }


def test_positional_main_fields() -> None:
    assert ArchiveIndexRequest(["a"], "2").level == "2"
    assert ProductIndexRequest(["a"], [INPUT]).derived_from == (INPUT,)


def test_aliases() -> None:
    assert ArchiveIndexRequest(filters=["a"]) == ArchiveIndexRequest(patterns=["a"])
    assert ArchiveIndexRequest(filters=["a"]).filters == ("a",)
    assert ArchiveIndexRequest(patterns=["a"], processing_level="0").level == "0"
    assert ProductIndexRequest(filters=["a"], derived_from=[INPUT]).patterns == ("a",)
    # Both names with the same value is not a conflict.
    assert ArchiveIndexRequest(patterns=["a"], filters=["a"]).patterns == ("a",)
    assert ArchiveIndexRequest(patterns=[], level="2", processing_level="2").level == "2"


def test_alias_conflicts_are_refused() -> None:
    with pytest.raises(InvalidIndexingRequest, match="'patterns' and its alias 'filters'"):
        ArchiveIndexRequest(patterns=["a"], filters=["b"])
    with pytest.raises(InvalidIndexingRequest, match="'level' and its alias 'processing_level'"):
        ArchiveIndexRequest(patterns=[], level="1", processing_level="2")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (0, "0"),
        (3, "3"),
        ("2", "2"),
        ("Reference", "Reference"),
        ("reference", "Reference"),
        ("USER", "User"),
        (None, "1"),
    ],
)
def test_levels(given: Any, stored: str) -> None:
    assert ArchiveIndexRequest(patterns=[], level=given).level == stored
    assert stored in LEVELS


@pytest.mark.parametrize("bad", [4, -1, "4", "raw", True, 1.0, ""])
def test_invalid_levels_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidIndexingRequest, match="invalid processing level") as caught:
        ArchiveIndexRequest(patterns=[], level=bad)
    assert repr(bad) in str(caught.value)
    assert "'Reference'" in str(caught.value)


def test_invalid_regular_expression_is_named() -> None:
    with pytest.raises(InvalidIndexingRequest) as caught:
        ArchiveIndexRequest(patterns=["ok", "(unclosed"])
    message = str(caught.value)
    assert "'(unclosed'" in message
    assert "missing )" in message
    assert caught.value.details["pattern"] == "(unclosed"
    assert isinstance(caught.value.__cause__, re.error)


def test_absurd_repetition_is_an_invalid_pattern() -> None:
    with pytest.raises(InvalidIndexingRequest, match="invalid regular expression"):
        ProductIndexRequest(patterns=["a{4294967296}"], derived_from=[])


def test_too_many_patterns() -> None:
    ArchiveIndexRequest(patterns=["a"] * MAX_PATTERNS)
    with pytest.raises(InvalidIndexingRequest, match="513 patterns given; at most 512"):
        ArchiveIndexRequest(patterns=["a"] * (MAX_PATTERNS + 1))


def test_pattern_must_be_a_string() -> None:
    with pytest.raises(
        InvalidIndexingRequest, match=r"'patterns' item #1 must be a string, not int"
    ):
        ArchiveIndexRequest(patterns=["a", 5])  # type: ignore[list-item]


def test_patterns_must_be_a_list() -> None:
    with pytest.raises(
        InvalidIndexingRequest, match="'patterns' must be a list of strings, not str"
    ):
        ArchiveIndexRequest(patterns=r"\.png$")
    with pytest.raises(InvalidIndexingRequest, match="not set"):
        ArchiveIndexRequest(patterns={"a"})  # type: ignore[arg-type]


def test_missing_mandatory_fields() -> None:
    with pytest.raises(InvalidIndexingRequest, match="missing mandatory field 'patterns'"):
        ArchiveIndexRequest(level="1")
    with pytest.raises(InvalidIndexingRequest, match="missing mandatory field 'derived_from'"):
        ProductIndexRequest(patterns=[])
    with pytest.raises(InvalidIndexingRequest, match=r"^ProductIndexRequest: "):
        ProductIndexRequest(patterns=[], derived_from=None)


def test_unknown_keyword_arguments() -> None:
    with pytest.raises(InvalidIndexingRequest, match=r"unknown field\(s\) 'colour'") as caught:
        ArchiveIndexRequest(patterns=[], colour="red")
    assert "'generated_by'" in str(caught.value)  # lists what is accepted
    with pytest.raises(InvalidIndexingRequest, match="'level'"):
        ProductIndexRequest(patterns=[], derived_from=[], level="1")
    with pytest.raises(InvalidIndexingRequest, match="kind is 'archive', not 'product'"):
        ArchiveIndexRequest(patterns=[], kind="product")
    assert ArchiveIndexRequest(patterns=[], kind="archive").kind == "archive"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"note": 5}, "'note' must be a string or None, not int"),
        ({"fixity": "yes"}, "'fixity' must be true or false, not str"),
        ({"fixity": None}, "'fixity' must be true or false, not None"),
        ({"fixity": 1}, "'fixity' must be true or false, not int"),
        ({"generated_by": "106abc"}, "'generated_by' must be a list of strings, not str"),
        ({"generated_by": [None]}, "'generated_by' item #0 must be a string, not None"),
        ({"generated_by": [""]}, "'generated_by' item #0 is an empty string"),
    ],
)
def test_wrong_types(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidIndexingRequest, match=re.escape(message)):
        ArchiveIndexRequest(patterns=[], **kwargs)
    with pytest.raises(InvalidIndexingRequest, match=re.escape(message)):
        ProductIndexRequest(patterns=[], derived_from=[INPUT], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"derived_from": INPUT}, "'derived_from' must be a list of strings, not str"),
        ({"derived_from": [1]}, "'derived_from' item #0 must be a string, not int"),
        ({"derived_from": [INPUT], "derived_using": [""]}, "'derived_using' item #0 is an empty"),
        ({"derived_from": [INPUT], "derived_using": {}}, "'derived_using' must be a list"),
    ],
)
def test_product_wrong_types(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidIndexingRequest, match=re.escape(message)):
        ProductIndexRequest(patterns=[], **kwargs)


def test_base_class_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        IndexRequest(patterns=[])


def test_requests_are_read_only() -> None:
    request = ArchiveIndexRequest(patterns=["a"])
    with pytest.raises(AttributeError):
        request.level = "2"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        request.extra = 1  # type: ignore[attr-defined]
    patterns = request.to_dict()["patterns"]
    patterns.append("b")
    assert request.patterns == ("a",)


def test_given_lists_are_copied() -> None:
    patterns = ["a"]
    request = ArchiveIndexRequest(patterns=patterns)
    patterns.append("b")
    assert request.patterns == ("a",)


# -- matching --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        ([r"\.png$"], "out/a.png", True),
        ([r"\.png$"], "out/a.png.txt", False),
        ([r"\.png$"], "a.png", True),
        (["^out/"], "out/a.png", True),
        (["^out/"], "logs/out/a.png", False),
        (["out"], "logs/out/a.png", True),  # search, not match
        ([r"\.png$", r"\.csv$"], "tables/t.csv", True),  # OR-ed
        ([r"\.png$", r"\.csv$"], "tables/t.tsv", False),
        ([], "anything/at/all", True),
        ([""], "anything", True),
        (["(?i)README"], "docs/readme.md", True),
    ],
)
def test_matches(patterns: list[str], path: str, expected: bool) -> None:
    assert ArchiveIndexRequest(patterns=patterns).matches(path) is expected
    assert ProductIndexRequest(patterns=patterns, derived_from=[]).matches(path) is expected


def test_patterns_are_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    request = ArchiveIndexRequest(patterns=[r"\.png$"])
    calls: list[str] = []
    real_compile = re.compile

    def counting_compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
        calls.append(pattern)
        return real_compile(pattern, flags)

    monkeypatch.setattr(re, "compile", counting_compile)
    for name in ("a.png", "b.txt", "c/d.png"):
        request.matches(name)
    assert calls == []


# -- conversion and round trips -----------------------------------------------------------


def test_to_json_is_canonical() -> None:
    request = ArchiveIndexRequest(patterns=["a"], note="raw images")
    assert request.to_json() == (
        '{"fixity":true,"generated_by":[],"kind":"archive","level":"1",'
        '"note":"raw images","patterns":["a"]}'
    )


def test_from_dict_and_from_json() -> None:
    request = ProductIndexRequest(
        patterns=[r"\.csv$"],
        derived_from=[INPUT],
        derived_using=["109bbbbb-0000-5000-8000-000000000000"],
        note="tables",
        fixity=True,
        generated_by=["117ccccc-0000-5000-8000-000000000000"],
    )
    assert ProductIndexRequest.from_dict(request.to_dict()) == request
    assert ProductIndexRequest.from_json(request.to_json()) == request
    assert IndexRequest.from_dict(request.to_dict()) == request
    assert IndexRequest.from_json(request.to_json().encode()) == request
    assert isinstance(IndexRequest.from_json(request.to_json()), ProductIndexRequest)


def test_from_dict_refuses_the_wrong_kind_and_bad_input() -> None:
    product = ProductIndexRequest(patterns=[], derived_from=[])
    with pytest.raises(InvalidIndexingRequest, match="kind is 'archive', not 'product'"):
        ArchiveIndexRequest.from_dict(product.to_dict())
    with pytest.raises(InvalidIndexingRequest, match="expected a dict, not list"):
        ArchiveIndexRequest.from_dict([])  # type: ignore[arg-type]
    with pytest.raises(InvalidIndexingRequest, match="field names must be strings"):
        ArchiveIndexRequest.from_dict({1: "a"})  # type: ignore[dict-item]
    with pytest.raises(InvalidIndexingRequest, match="not valid JSON"):
        ArchiveIndexRequest.from_json("{patterns")


def test_index_request_from() -> None:
    archive = ArchiveIndexRequest(patterns=["a"])
    assert index_request_from(archive) is archive
    assert index_request_from(archive.to_dict()) == archive
    assert index_request_from(archive.to_json()) == archive
    assert index_request_from({"patterns": ["a"]}) == archive
    assert index_request_from({"filters": ["a"]}, kind="archive") == archive

    inferred = index_request_from({"patterns": [], "derived_from": [INPUT]})
    assert isinstance(inferred, ProductIndexRequest)
    explicit = index_request_from({"patterns": [], "derived_from": []}, kind="product")
    assert isinstance(explicit, ProductIndexRequest)
    with pytest.raises(InvalidIndexingRequest, match="missing mandatory field 'derived_from'"):
        index_request_from({"patterns": []}, kind="product")


def test_index_request_from_errors() -> None:
    archive = ArchiveIndexRequest(patterns=["a"])
    with pytest.raises(InvalidIndexingRequest, match="expected a product index request"):
        index_request_from(archive, kind="product")
    with pytest.raises(InvalidIndexingRequest, match="expected a product index request"):
        index_request_from(archive.to_dict(), kind="product")
    with pytest.raises(InvalidIndexingRequest, match="not int"):
        index_request_from(5)
    with pytest.raises(InvalidIndexingRequest, match="not list"):
        index_request_from("[1, 2]")
    with pytest.raises(InvalidIndexingRequest, match="unknown index request kind 'other'"):
        index_request_from({"kind": "other", "patterns": []})
    with pytest.raises(InvalidIndexingRequest, match="unknown index request kind"):
        index_request_from({"patterns": []}, kind="files")


def test_equality_and_hash() -> None:
    a = ArchiveIndexRequest(patterns=["a"], level=2)
    b = ArchiveIndexRequest(filters=("a",), processing_level="2")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != ArchiveIndexRequest(patterns=["a"], level=3)
    assert a != ProductIndexRequest(patterns=["a"], derived_from=[])
    assert a != a.to_dict()
    assert repr(a).startswith("ArchiveIndexRequest(patterns=['a'], level='2'")


# -- property-based round trips -----------------------------------------------------------

_texts = st.text(min_size=1, max_size=20)
_patterns = st.lists(
    st.one_of(
        _texts.map(re.escape),
        st.sampled_from([r"\.png$", "^out/", "", "(?i)readme", r"[0-9]{2,4}", "a|b"]),
    ),
    max_size=8,
)
_refs = st.lists(_texts, max_size=4)
_notes = st.none() | st.text(max_size=30)
_levels: list[str | int] = [*LEVELS, 0, 1, 2, 3]


@st.composite
def archive_requests(draw: st.DrawFn) -> ArchiveIndexRequest:
    return ArchiveIndexRequest(
        patterns=draw(_patterns),
        level=draw(st.sampled_from(_levels)),
        note=draw(_notes),
        fixity=draw(st.booleans()),
        generated_by=draw(_refs),
    )


@st.composite
def product_requests(draw: st.DrawFn) -> ProductIndexRequest:
    return ProductIndexRequest(
        patterns=draw(_patterns),
        derived_from=draw(_refs),
        derived_using=draw(_refs),
        note=draw(_notes),
        fixity=draw(st.booleans()),
        generated_by=draw(_refs),
    )


@given(st.one_of(archive_requests(), product_requests()))
def test_round_trips_are_exact(request: IndexRequest) -> None:
    as_dict = request.to_dict()
    assert type(request).from_dict(as_dict).to_dict() == as_dict
    assert index_request_from(as_dict) == request
    assert index_request_from(request.to_json()) == request
    assert json.loads(request.to_json()) == as_dict
    assert index_request_from(as_dict).to_json() == request.to_json()


@given(st.lists(_texts, max_size=5), st.text(max_size=30))
def test_escaped_literals_match_where_they_occur(words: list[str], path: str) -> None:
    request = ArchiveIndexRequest(patterns=[re.escape(w) for w in words])
    assert request.matches(path) == (not words or any(w in path for w in words))


def test_seed_class_attributes_are_kept() -> None:
    assert IndexType.MEMBERS == ["archive", "product"]
    assert IndexType.kind is None
    assert [p[0] for p in ArchiveIndexRequest.PARAMS] == [
        "patterns",
        "note",
        "fixity",
        "generated_by",
        "level",
    ]
    assert dict((p[0], p[3]) for p in ArchiveIndexRequest.PARAMS)["fixity"] is True
    assert [p[0] for p in ProductIndexRequest.PARAMS if p[1]] == ["patterns", "derived_from"]
    assert dict((p[0], p[3]) for p in ProductIndexRequest.PARAMS)["fixity"] is False
