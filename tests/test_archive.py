"""Tests for datacatalog.archive: the golden path (SPEC §6), instanced directories, checks."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import shortuuid
from hypothesis import given, settings
from hypothesis import strategies as st

from datacatalog.archive import (
    PREFIX,
    archive_path,
    check_archive_path,
    check_session,
    compress,
    instanced_directory,
    new_session,
)
from datacatalog.errors import InvalidRequestError
from datacatalog.identifiers import canonical_json, typed_uuid

GOLDEN_PIPELINE = "106c46ff-8186-5756-a934-071f4497b58d"
GOLDEN_CHILD_OF = ["102e95e6-67a8-5a06-9484-3131c6907890"]
GOLDEN_PATH = "/products/v2/4vZZKuWQfMWUpLMKWq3KRX/4rcwc3k6B8Kiyfm7rqvSJ6/4rRDh4M5V4tXyLHim7HZJn"

FAST = settings(max_examples=50, deadline=None)
SESSIONS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ),
)
json_keys = st.text(alphabet=st.characters(blacklist_characters="$.\x00"), max_size=6)
json_objects = st.dictionaries(
    json_keys, st.none() | st.booleans() | st.integers() | st.text(max_size=8), max_size=6
)


def test_golden_path() -> None:
    assert archive_path(GOLDEN_PIPELINE, GOLDEN_CHILD_OF, {}) == GOLDEN_PATH
    assert archive_path(GOLDEN_PIPELINE, GOLDEN_CHILD_OF, None) == GOLDEN_PATH


def test_golden_path_spelled_out() -> None:
    # SPEC §6 written out with shortuuid directly.
    a = shortuuid.encode(uuid.UUID(GOLDEN_PIPELINE))
    b = shortuuid.encode(uuid.UUID(typed_uuid(":".join(sorted(GOLDEN_CHILD_OF)), "generic")))
    c = shortuuid.encode(uuid.UUID(typed_uuid(canonical_json({}), "generic")))
    assert f"/products/v2/{a}/{b}/{c}" == GOLDEN_PATH


def test_path_layout() -> None:
    path = archive_path(GOLDEN_PIPELINE, GOLDEN_CHILD_OF, {"x": 1})
    assert path.startswith(PREFIX + "/")
    segments = path[len(PREFIX) + 1 :].split("/")
    assert len(segments) == 3
    assert all(len(s) == 22 for s in segments)
    assert segments[0] == compress(GOLDEN_PIPELINE)
    assert path != GOLDEN_PATH


def test_compress_round_trips() -> None:
    encoded = compress(GOLDEN_PIPELINE)
    assert len(encoded) == 22
    assert str(shortuuid.decode(encoded)) == GOLDEN_PIPELINE


@pytest.mark.parametrize(
    ("pipeline", "child_of"),
    [
        ("not-a-uuid", GOLDEN_CHILD_OF),
        (None, GOLDEN_CHILD_OF),
        (5, GOLDEN_CHILD_OF),
        (GOLDEN_PIPELINE, [5]),
    ],
)
def test_malformed_identity_is_an_invalid_request(pipeline: Any, child_of: Any) -> None:
    with pytest.raises(InvalidRequestError):
        archive_path(pipeline, child_of, {})


@FAST
@given(
    child_of=st.lists(st.builds(typed_uuid, st.text(max_size=8), st.just("sample")), max_size=5),
    data=json_objects,
    seed=st.randoms(use_true_random=False),
)
def test_path_ignores_child_of_order_and_key_order(
    child_of: list[str], data: dict[str, Any], seed: Any
) -> None:
    shuffled = list(child_of)
    seed.shuffle(shuffled)
    reordered = dict(reversed(list(data.items())))
    first = archive_path(GOLDEN_PIPELINE, child_of, data)
    assert archive_path(GOLDEN_PIPELINE, shuffled, reordered) == first
    assert archive_path(GOLDEN_PIPELINE, child_of, data) == first
    assert check_archive_path(first) == first


# -- instanced directories ----------------------------------------------------------------


@FAST
@given(session=SESSIONS, moment=MOMENTS)
def test_instanced_directory_name(session: str, moment: datetime) -> None:
    name = instanced_directory(session, now=moment)
    assert re.fullmatch(re.escape(session) + r"-\d{8}T\d{6}Z", name)
    utc = moment.astimezone(timezone.utc)
    assert name.endswith("-" + utc.strftime("%Y%m%dT%H%M%SZ"))


def test_instanced_directory_is_in_utc() -> None:
    moment = datetime(2024, 3, 1, 1, 2, 3, tzinfo=timezone(timedelta(hours=2)))
    assert instanced_directory("run", now=moment) == "run-20240229T230203Z"


def test_instanced_directory_default_session_is_a_petname() -> None:
    name = instanced_directory()
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{8}T\d{6}Z", name), name


def test_new_sessions_are_adjective_animal() -> None:
    assert all(re.fullmatch(r"[a-z]+-[a-z]+", new_session()) for _ in range(20))


@pytest.mark.parametrize(
    "bad", ["", "../etc", "a/b", "-leading", ".hidden", "x" * 65, "sp ace", "tab\t"]
)
def test_unsafe_sessions_are_refused(bad: str) -> None:
    with pytest.raises(InvalidRequestError, match="session"):
        check_session(bad)
    with pytest.raises(InvalidRequestError):
        instanced_directory(bad)


@pytest.mark.parametrize("good", ["a", "run_1", "Run.2-x", "x" * 64])
def test_safe_sessions_are_kept(good: str) -> None:
    assert check_session(good) == good


# -- explicit archive paths -----------------------------------------------------------------


@pytest.mark.parametrize("good", ["/a", "/products/v2/x/y", "/data/run.1/out"])
def test_explicit_path_accepted(good: str) -> None:
    assert check_archive_path(good) == good


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "non-empty"),
        (None, "non-empty"),
        ("relative/path", "absolute"),
        ("/a/../b", r"'\.\.'"),
        ("/a\x00b", "NUL"),
        ("/", "root"),
        ("/a//b", "normalized"),
        ("/a/./b", "normalized"),
        ("/a/b/", "normalized"),
    ],
)
def test_explicit_path_refused(bad: object, reason: str) -> None:
    with pytest.raises(InvalidRequestError, match=reason):
        check_archive_path(bad)
