"""Tokens that authorize writes from outside the process.

* **Job token**: ``HMAC-SHA256(secret, job UUID)`` in hex. It is stable for the
  life of the job, so a remote run can be handed it once (inside its webhook URL)
  and use it for every event it reports.
* **Admin token**: ``HMAC-SHA256(secret, "admin:<window>")`` where ``window`` is
  the current time divided by the token lifetime. The current and the previous
  window are accepted, so a token is valid for between one and two lifetimes.

Tokens are compared in constant time. The secret never has a default value: it
comes from configuration (see :mod:`datacatalog.settings`).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from datacatalog.errors import ForbiddenError, InvalidRequestError, UnauthorizedError

DEFAULT_ADMIN_LIFETIME = 3600
MIN_SECRET_LENGTH = 16


def _mac(secret: str, message: str) -> str:
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise InvalidRequestError(
            f"the deployment secret must be a string of at least {MIN_SECRET_LENGTH} characters"
        )
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def job_token(secret: str, job_uuid: str) -> str:
    """The per-job token of ``job_uuid``."""
    return _mac(secret, job_uuid)


def admin_token(
    secret: str, *, lifetime: int = DEFAULT_ADMIN_LIFETIME, now: float | None = None
) -> str:
    """An admin token for the current time window."""
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime < 1:
        raise InvalidRequestError(
            f"the admin token lifetime must be a positive number of seconds, not {lifetime!r}"
        )
    window = int((time.time() if now is None else now) // lifetime)
    return _mac(secret, f"admin:{window}")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def check_job_token(secret: str, job_uuid: str, token: str | None) -> None:
    """Raise unless ``token`` is the job token of ``job_uuid``."""
    if token is None or token == "":
        raise UnauthorizedError(f"a job token is required to change job {job_uuid}", job=job_uuid)
    if not isinstance(token, str) or not _same(token, job_token(secret, job_uuid)):
        raise ForbiddenError(f"the token is not valid for job {job_uuid}", job=job_uuid)


def check_admin_token(
    secret: str,
    token: str | None,
    *,
    lifetime: int = DEFAULT_ADMIN_LIFETIME,
    now: float | None = None,
    action: str = "this action",
) -> None:
    """Raise unless ``token`` is an admin token of the current or previous window."""
    if token is None or token == "":
        raise UnauthorizedError(f"an admin token is required for {action}", action=action)
    moment = time.time() if now is None else now
    valid = (
        admin_token(secret, lifetime=lifetime, now=moment),
        admin_token(secret, lifetime=lifetime, now=moment - lifetime),
    )
    if not isinstance(token, str) or not any(_same(token, v) for v in valid):
        raise ForbiddenError(
            f"the admin token is not valid (or has expired) for {action}", action=action
        )
