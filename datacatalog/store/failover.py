"""Riding through a replica set election: calls that are safe to resend are resent.

When a replica set's primary crashes, the other members elect a new one; until then
(about 10-12 s after a crash with MongoDB's default settings, under a second after a
step-down) every write fails, and the store reports it as
:class:`~datacatalog.errors.UnavailableError`. A call that is safe to send again (an event
with an idempotency key, an upsert of file records, a lease release conditional on its
holder) is sent again under a :class:`RetryPolicy`::

    attempt 1 ──unavailable──▶ wait 0.05 s ─▶ attempt 2 ──unavailable──▶ wait 0.1 s ─▶ ...
    │◀───────────────────────────── budget (DATACATALOG_MONGODB_FAILOVER) ─────────────▶│

Every attempt is bounded by what is left of the budget (and by the store's own timeout),
so a call that keeps failing still fails with ``unavailable``, once the budget is spent,
never later. Only ``unavailable`` is retried: any other error is an answer, returned at
once. The server side of a resent write is made safe by retryable writes (the driver's
own single retry, under the same transaction number); the application side by the
idempotency keys, which is why a call without one is never resent.

The waits and the clock are injected, so the policy is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pymongo

from datacatalog.errors import InvalidRequestError, UnavailableError

__all__ = ["DEFAULT_BUDGET", "RetryPolicy"]

T = TypeVar("T")

DEFAULT_BUDGET = 15.0
"""Seconds a resendable call keeps trying: longer than a crash failover on defaults."""

_FIRST_WAIT = 0.05
_LONGEST_WAIT = 1.0
_SHORTEST_ATTEMPT = 0.05  # an attempt shorter than this cannot even find a server


@dataclass(frozen=True)
class RetryPolicy:
    """How long a resendable call keeps trying through ``unavailable``.

    Args:
        budget: Seconds from the first attempt after which no new attempt starts; the
            call then fails with the last ``unavailable``. Zero sends once.
        attempt_timeout: Seconds one attempt may take at most (the store's timeout);
            None leaves it to the client.
        clock: Monotonic seconds (tests inject one).
        sleep: Waits between attempts (tests inject one).
    """

    budget: float = DEFAULT_BUDGET
    attempt_timeout: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    sleep: Callable[[float], object] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        budget = self.budget
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget >= 0:
            raise InvalidRequestError(
                f"a failover budget must be a number of seconds >= 0, not {budget!r}"
            )

    def call(self, attempt: Callable[[], T], *, what: str) -> T:
        """Run ``attempt()``; while it fails with ``unavailable`` and budget is left, again.

        Args:
            attempt: The call; it must be safe to send more than once.
            what: What the call does, for the final error ("event finish of job ...").

        Raises:
            UnavailableError: Every attempt failed so; the message says how many and for
                how long, and the last failure is its cause.
            DataCatalogError: Whatever else an attempt raised, at once.
        """
        if self.budget == 0:
            return attempt()
        start = self.clock()
        deadline = start + self.budget
        wait = _FIRST_WAIT
        attempts = 0
        while True:
            attempts += 1
            try:
                with pymongo.timeout(self._attempt_seconds(deadline)):
                    return attempt()
            except UnavailableError as exc:
                left = deadline - self.clock()
                if left <= 0:
                    if attempts == 1:
                        raise
                    raise UnavailableError(
                        f"{what}: still unavailable after {attempts} attempts in "
                        f"{self.clock() - start:.1f} s (DATACATALOG_MONGODB_FAILOVER="
                        f"{self.budget:g}); last: {exc}",
                        attempts=attempts,
                    ) from exc
                self.sleep(min(wait, left))
                wait = min(wait * 2, _LONGEST_WAIT)

    def _attempt_seconds(self, deadline: float) -> float:
        """What one attempt may take: the rest of the budget, within the store's timeout."""
        left = max(deadline - self.clock(), _SHORTEST_ATTEMPT)
        return left if self.attempt_timeout is None else min(left, self.attempt_timeout)
