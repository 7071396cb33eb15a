"""wait_until: the one loop that waits for a condition, driven here by a fake clock."""

from __future__ import annotations

import pytest

from datacatalog.waiting import wait_until


class FakeTime:
    """A clock that only moves when something sleeps; it records every sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_met_condition_returns_at_once_without_sleeping() -> None:
    fake = FakeTime()
    assert wait_until(lambda: True, timeout=5, clock=fake.clock, sleep=fake.sleep) is True
    assert fake.sleeps == []


def test_it_checks_every_interval_until_the_condition_is_met() -> None:
    fake = FakeTime()
    answers = iter([False, False, False, True])
    met = wait_until(
        lambda: next(answers), timeout=10, interval=0.5, clock=fake.clock, sleep=fake.sleep
    )
    assert met is True
    assert fake.sleeps == [0.5, 0.5, 0.5]


def test_it_gives_up_after_the_timeout_with_a_last_check_at_the_deadline() -> None:
    fake = FakeTime()
    seen: list[float] = []

    def never() -> bool:
        seen.append(fake.now)
        return False

    assert wait_until(never, timeout=1.0, interval=0.4, clock=fake.clock, sleep=fake.sleep) is False
    assert fake.sleeps == pytest.approx([0.4, 0.4, 0.2])  # the last sleep ends at the deadline
    assert seen == pytest.approx([100.0, 100.4, 100.8, 101.0])


def test_a_zero_timeout_checks_once() -> None:
    fake = FakeTime()
    calls: list[int] = []
    assert (
        wait_until(lambda: calls.append(1), timeout=0, clock=fake.clock, sleep=fake.sleep) is None
    )
    assert calls == [1] and fake.sleeps == []


def test_a_found_value_is_returned_even_when_falsy_but_not_none() -> None:
    fake = FakeTime()
    answers = iter([None, None, 0])  # index 0: a member found, not "not yet"
    found = wait_until(lambda: next(answers), timeout=5, clock=fake.clock, sleep=fake.sleep)
    assert found == 0
    assert len(fake.sleeps) == 2


def test_nothing_found_in_time_returns_none() -> None:
    fake = FakeTime()

    def nothing() -> int | None:
        return None

    assert (
        wait_until(nothing, timeout=0.3, interval=0.1, clock=fake.clock, sleep=fake.sleep) is None
    )
    assert fake.now == pytest.approx(100.3)
