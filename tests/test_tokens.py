"""Tests for datacatalog.tokens: per-job and admin tokens (SPEC §8)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from datacatalog.errors import ForbiddenError, InvalidRequestError, UnauthorizedError
from datacatalog.tokens import (
    DEFAULT_ADMIN_LIFETIME,
    MIN_SECRET_LENGTH,
    admin_token,
    check_admin_token,
    check_job_token,
    job_token,
)

SECRET = "s3cr3t-for-tests-only-0123456789"
JOB = "107a90b7-f083-5167-a63d-41a3bf278bf8"
OTHER_JOB = "107b5e2f-1111-5222-8333-444455556666"
LIFETIME = 600
# A moment in the middle of a window, so "one lifetime later" is in the next window.
NOW = 1_700_000_000.0 - (1_700_000_000 % LIFETIME) + LIFETIME / 2


def test_job_token_is_hmac_sha256_of_the_uuid() -> None:
    expected = hmac.new(SECRET.encode(), JOB.encode(), hashlib.sha256).hexdigest()
    assert job_token(SECRET, JOB) == expected
    assert len(expected) == 64


def test_job_token_is_stable_and_specific() -> None:
    assert job_token(SECRET, JOB) == job_token(SECRET, JOB)
    assert job_token(SECRET, JOB) != job_token(SECRET, OTHER_JOB)
    assert job_token(SECRET, JOB) != job_token(SECRET + "x", JOB)


def test_valid_job_token_passes() -> None:
    check_job_token(SECRET, JOB, job_token(SECRET, JOB))


@pytest.mark.parametrize(
    "token",
    [
        job_token(SECRET, OTHER_JOB),
        job_token(SECRET + "-other", JOB),
        job_token(SECRET, JOB).upper(),
        job_token(SECRET, JOB)[:-1],
        "not-a-token",
        "é" * 64,
    ],
    ids=["other-job", "other-secret", "uppercase", "truncated", "garbage", "non-ascii"],
)
def test_wrong_job_token_is_forbidden(token: str) -> None:
    with pytest.raises(ForbiddenError, match=JOB) as info:
        check_job_token(SECRET, JOB, token)
    assert info.value.code == "forbidden"


@pytest.mark.parametrize("token", [None, ""])
def test_missing_job_token_is_unauthorized(token: str | None) -> None:
    with pytest.raises(UnauthorizedError) as info:
        check_job_token(SECRET, JOB, token)
    assert type(info.value) is UnauthorizedError
    assert info.value.code == "unauthorized"


def test_admin_token_is_hmac_of_the_window() -> None:
    window = int(NOW // LIFETIME)
    expected = hmac.new(SECRET.encode(), f"admin:{window}".encode(), hashlib.sha256).hexdigest()
    assert admin_token(SECRET, lifetime=LIFETIME, now=NOW) == expected


def test_admin_token_valid_in_current_and_previous_window() -> None:
    token = admin_token(SECRET, lifetime=LIFETIME, now=NOW)
    check_admin_token(SECRET, token, lifetime=LIFETIME, now=NOW)
    check_admin_token(SECRET, token, lifetime=LIFETIME, now=NOW + LIFETIME / 4)
    check_admin_token(SECRET, token, lifetime=LIFETIME, now=NOW + LIFETIME)


def test_admin_token_expires_after_two_windows() -> None:
    token = admin_token(SECRET, lifetime=LIFETIME, now=NOW)
    with pytest.raises(ForbiddenError, match="expired"):
        check_admin_token(SECRET, token, lifetime=LIFETIME, now=NOW + 2 * LIFETIME)


def test_admin_token_from_the_future_is_refused() -> None:
    token = admin_token(SECRET, lifetime=LIFETIME, now=NOW + LIFETIME)
    with pytest.raises(ForbiddenError):
        check_admin_token(SECRET, token, lifetime=LIFETIME, now=NOW)


def test_admin_token_default_lifetime_is_one_hour() -> None:
    assert DEFAULT_ADMIN_LIFETIME == 3600
    token = admin_token(SECRET, now=NOW)
    check_admin_token(SECRET, token, now=NOW + 3600)
    with pytest.raises(ForbiddenError):
        check_admin_token(SECRET, token, now=NOW + 2 * 3600)


def test_admin_token_current_time_by_default() -> None:
    check_admin_token(SECRET, admin_token(SECRET))


def test_wrong_or_missing_admin_token() -> None:
    with pytest.raises(UnauthorizedError, match="admin token is required for purge") as info:
        check_admin_token(SECRET, None, action="purge")
    assert type(info.value) is UnauthorizedError
    with pytest.raises(ForbiddenError, match="reset"):
        check_admin_token(SECRET, job_token(SECRET, JOB), action="reset")
    other = admin_token(SECRET + "-other", lifetime=LIFETIME, now=NOW)
    with pytest.raises(ForbiddenError):
        check_admin_token(SECRET, other, lifetime=LIFETIME, now=NOW)


@pytest.mark.parametrize("secret", ["", "short", "x" * (MIN_SECRET_LENGTH - 1)])
def test_short_secret_refused(secret: str) -> None:
    for call in (
        lambda: job_token(secret, JOB),
        lambda: admin_token(secret),
        lambda: check_job_token(secret, JOB, "0" * 64),
        lambda: check_admin_token(secret, "0" * 64),
    ):
        with pytest.raises(InvalidRequestError, match=f"at least {MIN_SECRET_LENGTH} characters"):
            call()


def test_minimum_length_secret_accepted() -> None:
    secret = "x" * MIN_SECRET_LENGTH
    check_job_token(secret, JOB, job_token(secret, JOB))


@pytest.mark.parametrize("lifetime", [0, -5, 1.5, True])
def test_a_lifetime_that_is_not_a_positive_integer_is_refused(lifetime: Any) -> None:
    with pytest.raises(InvalidRequestError, match="lifetime"):
        admin_token(SECRET, lifetime=lifetime, now=NOW)
    with pytest.raises(InvalidRequestError, match="lifetime"):
        check_admin_token(SECRET, "0" * 64, lifetime=lifetime, now=NOW)
