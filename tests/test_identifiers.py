"""Tests for datacatalog.identifiers: golden values (SPEC §3) and properties."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacatalog.archive import archive_path
from datacatalog.errors import InvalidRequestError
from datacatalog.identifiers import (
    KIND_PREFIXES,
    canonical_json,
    child_of_literal,
    file_uuid,
    is_uuid,
    job_uuid,
    kind_of,
    namespace,
    normalize_path,
    pipeline_uuid,
    random_uuid,
    require_kind,
    typed_uuid,
    uuid_kind,
)

GOLDEN_PIPELINE = "106c46ff-8186-5756-a934-071f4497b58d"
GOLDEN_CHILD_OF = ["102e95e6-67a8-5a06-9484-3131c6907890"]
GOLDEN_JOB = "107a90b7-f083-5167-a63d-41a3bf278bf8"

# Written out from SPEC §3, independently of the module's table.
SPEC_PREFIXES = {
    "generic": "100",
    "challenge_problem": "101",
    "experiment": "102",
    "sample": "103",
    "measurement": "104",
    "file": "105",
    "pipeline": "106",
    "pipelinejob": "107",
    "pipelinejob_event": "108",
    "reference": "109",
    "product": "110",
    "upload": "111",
    "experiment_design": "114",
    "fixity": "116",
    "process": "117",
}

FAST = settings(max_examples=50, deadline=None)

# JSON values as users send them: finite numbers, string keys without '$' or '.'.
json_keys = st.text(alphabet=st.characters(blacklist_characters="$.\x00"), max_size=8)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(json_keys, json_values, max_size=6)
kinds = st.sampled_from(sorted(SPEC_PREFIXES))
typed_uuids = st.builds(typed_uuid, st.text(max_size=30), kinds)


def spec_typed_uuid(text: str, kind: str) -> str:
    """SPEC §3 written out directly with the standard library."""
    ns = uuid.uuid3(uuid.NAMESPACE_DNS, "sd2e.org")
    return SPEC_PREFIXES[kind] + str(uuid.uuid5(ns, text))[3:]


# -- golden values ----------------------------------------------------------------------


def test_measurement_uuid_golden() -> None:
    assert (
        typed_uuid("measurement.tacc.0x00000000", "measurement")
        == "10452d7e-7f0a-59df-a1a3-c5bb44e07f2f"
    )


def test_job_uuid_golden() -> None:
    assert job_uuid(GOLDEN_PIPELINE, GOLDEN_CHILD_OF, {}) == GOLDEN_JOB


def test_job_uuid_golden_spelled_out() -> None:
    # The three strings of SPEC §3, sorted, joined with ":".
    parts = sorted([GOLDEN_PIPELINE, "['102e95e6-67a8-5a06-9484-3131c6907890']", "{}"])
    assert spec_typed_uuid(":".join(parts), "pipelinejob") == GOLDEN_JOB


def test_job_uuid_with_no_data_is_the_empty_object() -> None:
    assert job_uuid(GOLDEN_PIPELINE, GOLDEN_CHILD_OF, None) == GOLDEN_JOB


def test_namespace_is_uuid3_of_sd2e_org() -> None:
    assert namespace() == uuid.uuid3(uuid.NAMESPACE_DNS, "sd2e.org")


def test_kind_prefixes_match_spec() -> None:
    assert KIND_PREFIXES == SPEC_PREFIXES


@pytest.mark.parametrize("kind", sorted(SPEC_PREFIXES))
def test_typed_uuid_matches_spec_formula(kind: str) -> None:
    value = typed_uuid("some.canonical.id", kind)
    assert value == spec_typed_uuid("some.canonical.id", kind)
    assert value.startswith(SPEC_PREFIXES[kind])
    assert uuid.UUID(value).version == 5


def test_other_domain_gives_other_uuids() -> None:
    default = typed_uuid("x", "sample")
    other = typed_uuid("x", "sample", domain="example.org")
    assert other != default
    ns = uuid.uuid3(uuid.NAMESPACE_DNS, "example.org")
    assert other == "103" + str(uuid.uuid5(ns, "x"))[3:]


def test_canonical_json_form() -> None:
    value = {"b": [1, {"z": None, "a": True}], "a": "é", "c": 1.5}
    assert canonical_json(value) == '{"a":"\\u00e9","b":[1,{"a":true,"z":null}],"c":1.5}'


@pytest.mark.parametrize(
    "bad",
    [
        {"when": datetime(2024, 1, 1, tzinfo=timezone.utc)},
        {"s": {1, 2}},
        {"n": float("nan")},
        {"i": float("inf")},
        {"b": b"bytes"},
    ],
    ids=["datetime", "set", "nan", "inf", "bytes"],
)
def test_canonical_json_refuses_non_json(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError, match="not JSON-serializable"):
        canonical_json(bad)


def test_pipeline_uuid_formula() -> None:
    components = [{"image": "sd2e/align:1.0", "opts": {"b": 2, "a": 1}}]
    expected = spec_typed_uuid(
        'align-pipeline:[{"image":"sd2e/align:1.0","opts":{"a":1,"b":2}}]', "pipeline"
    )
    assert pipeline_uuid("align-pipeline", components) == expected
    assert uuid_kind(expected) == "pipeline"


def test_pipeline_uuid_depends_on_id_and_components() -> None:
    base = pipeline_uuid("p", [{"a": 1}])
    assert pipeline_uuid("q", [{"a": 1}]) != base
    assert pipeline_uuid("p", [{"a": 2}]) != base
    assert pipeline_uuid("p", [{"a": 1}, {"b": 1}]) != base


def test_pipeline_uuid_requires_a_list() -> None:
    with pytest.raises(InvalidRequestError, match="must be a list, not dict"):
        pipeline_uuid("p", {"a": 1})  # type: ignore[arg-type]


def test_identity_inputs_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="pipeline id must be a string"):
        pipeline_uuid(5, [])  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="pipeline UUID must be a string"):
        job_uuid(None, GOLDEN_CHILD_OF, {})  # type: ignore[arg-type]
    # A single UUID string is not a list: its characters must not become the child_of.
    with pytest.raises(InvalidRequestError, match="not a single string"):
        job_uuid(GOLDEN_PIPELINE, GOLDEN_CHILD_OF[0], {})
    with pytest.raises(InvalidRequestError, match="not a single string"):
        archive_path(GOLDEN_PIPELINE, GOLDEN_CHILD_OF[0], {})
    with pytest.raises(InvalidRequestError, match="UUID strings"):
        child_of_literal([5])  # type: ignore[list-item]
    assert job_uuid(GOLDEN_PIPELINE, tuple(GOLDEN_CHILD_OF), {}) == GOLDEN_JOB


def test_child_of_literal_is_a_sorted_python_list() -> None:
    assert child_of_literal(["b", "a"]) == "['a', 'b']"
    assert child_of_literal([]) == "[]"


def test_typed_uuid_refuses_unknown_kind_and_non_string() -> None:
    with pytest.raises(InvalidRequestError, match="unknown identifier kind 'bogus'") as info:
        typed_uuid("x", "bogus")
    assert "measurement" in str(info.value)
    with pytest.raises(InvalidRequestError, match="must be a string, not int"):
        typed_uuid(12, "sample")  # type: ignore[arg-type]


# -- kinds and validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "107-not-a-uuid",
        "107a90b7-f083-5167-a63d-41a3bf278bf8x",
        " 107a90b7-f083-5167-a63d-41a3bf278bf8",
        "107A90B7-F083-5167-A63D-41A3BF278BF8",
        "{107a90b7-f083-5167-a63d-41a3bf278bf8}",
        "107a90b7f0835167a63d41a3bf278bf8",
        "107a90b7-f083-5167-a63d-41a3bf278bf",
        "107a90b7-f083-5167-a63d-41a3bf278bf8\n",
        "",
        "107",
    ],
)
def test_uuid_kind_rejects_lookalikes(value: str) -> None:
    with pytest.raises(InvalidRequestError, match="is not a typed UUID"):
        uuid_kind(value)
    assert kind_of(value) is None
    assert not is_uuid(value)


@pytest.mark.parametrize("value", [None, 107, uuid.UUID(GOLDEN_JOB), [GOLDEN_JOB]])
def test_uuid_kind_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidRequestError):
        uuid_kind(value)


def test_uuid_kind_rejects_unknown_prefix() -> None:
    value = "999" + GOLDEN_JOB[3:]
    assert is_uuid(value)
    with pytest.raises(InvalidRequestError, match="without a known kind prefix"):
        uuid_kind(value)


def test_require_kind_names_expected_and_actual() -> None:
    assert require_kind(GOLDEN_JOB, "pipelinejob") == GOLDEN_JOB
    with pytest.raises(InvalidRequestError) as info:
        require_kind(GOLDEN_JOB, "pipeline", what="pipeline")
    assert "is a pipelinejob UUID, expected a pipeline UUID" in str(info.value)
    assert info.value.details["actual"] == "pipelinejob"


def test_file_uuid_uses_normalized_path() -> None:
    assert file_uuid("/a//b/./c") == typed_uuid("/a/b/c", "file")
    assert uuid_kind(file_uuid("/a")) == "file"


@pytest.mark.parametrize("bad", ["relative/path", "/a/../b", "/a\x00b", ""])
def test_normalize_path_refuses_unsafe_paths(bad: str) -> None:
    with pytest.raises(InvalidRequestError):
        normalize_path(bad)


def test_random_uuid_is_typed_and_fresh() -> None:
    first, second = random_uuid("pipelinejob_event"), random_uuid("pipelinejob_event")
    assert first != second
    assert uuid_kind(first) == uuid_kind(second) == "pipelinejob_event"


# -- properties ---------------------------------------------------------------------------


@FAST
@given(text=st.text(max_size=40), kind=kinds)
def test_every_kind_round_trips(text: str, kind: str) -> None:
    value = typed_uuid(text, kind)
    assert uuid_kind(value) == kind
    assert is_uuid(value)
    assert value == spec_typed_uuid(text, kind)


@FAST
@given(text=st.text(max_size=40), kind=kinds)
def test_typed_uuid_is_deterministic(text: str, kind: str) -> None:
    assert typed_uuid(text, kind) == typed_uuid(text, kind)


@FAST
@given(value=typed_uuids, suffix=st.characters())
def test_trailing_character_is_rejected(value: str, suffix: str) -> None:
    with pytest.raises(InvalidRequestError):
        uuid_kind(value + suffix)
    with pytest.raises(InvalidRequestError):
        uuid_kind(suffix + value)


@FAST
@given(value=typed_uuids)
def test_uppercase_is_rejected(value: str) -> None:
    upper = value.upper()
    if upper != value:
        with pytest.raises(InvalidRequestError):
            uuid_kind(upper)


@FAST
@given(prefix=st.sampled_from(sorted(SPEC_PREFIXES.values())), rest=st.text(max_size=40))
def test_prefix_alone_does_not_make_a_uuid(prefix: str, rest: str) -> None:
    candidate = prefix + rest
    if is_uuid(candidate):  # rarely, the text happens to complete a real UUID
        assert uuid_kind(candidate) == {v: k for k, v in SPEC_PREFIXES.items()}[prefix]
    else:
        with pytest.raises(InvalidRequestError):
            uuid_kind(candidate)


@FAST
@given(value=json_values)
def test_canonical_json_is_the_spec_encoding(value: Any) -> None:
    encoded = canonical_json(value)
    assert encoded == json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert canonical_json(json.loads(encoded)) == encoded


@FAST
@given(
    pipeline=st.builds(typed_uuid, st.text(max_size=10), st.just("pipeline")),
    child_of=st.lists(st.builds(typed_uuid, st.text(max_size=10), st.just("sample")), max_size=5),
    data=json_objects,
    seed=st.randoms(use_true_random=False),
)
def test_job_uuid_ignores_child_of_order_and_key_order(
    pipeline: str, child_of: list[str], data: dict[str, Any], seed: Any
) -> None:
    shuffled = list(child_of)
    seed.shuffle(shuffled)
    reordered = dict(reversed(list(data.items())))
    first = job_uuid(pipeline, child_of, data)
    assert job_uuid(pipeline, shuffled, reordered) == first
    assert job_uuid(pipeline, tuple(child_of), data) == first
    assert uuid_kind(first) == "pipelinejob"


@FAST
@given(data=json_objects, extra=json_keys, value=json_values)
def test_job_uuid_changes_with_data(data: dict[str, Any], extra: str, value: Any) -> None:
    changed = {**data, extra: value}
    if canonical_json(changed) != canonical_json(data):
        assert job_uuid(GOLDEN_PIPELINE, GOLDEN_CHILD_OF, changed) != job_uuid(
            GOLDEN_PIPELINE, GOLDEN_CHILD_OF, data
        )
