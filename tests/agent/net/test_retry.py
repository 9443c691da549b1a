"""Backoff with full jitter, Retry-After, and the attempts/deadline budget."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.agent.net.conftest import NOW, Clock
from vmprep.agent.retry import (
    FLOOR,
    BudgetSpent,
    Policy,
    Retrier,
    Transient,
    backoff,
    parse_retry_after,
    wait_after,
)


def test_policy_from_config_parses_durations():
    policy = Policy.from_config({"attempts": 5, "initial": "500ms", "max": "1m", "deadline": "2h"})
    assert policy == Policy(5, 0.5, 60.0, 7200.0)
    assert Policy.from_config({}) == Policy(30, 2.0, 300.0, None)
    assert Policy.from_config(None) == Policy()


@given(attempt=st.integers(0, 200), u=st.floats(0, 1))
def test_backoff_is_full_jitter_with_a_floor(attempt: int, u: float):
    policy = Policy(initial=2.0, max=300.0)
    seen: list[tuple[float, float]] = []

    def rand(lo: float, hi: float) -> float:
        seen.append((lo, hi))
        return lo + (hi - lo) * u

    wait = backoff(attempt, policy, rand)
    assert seen == [(0.0, min(300.0, 2.0 * 2**attempt))]
    assert FLOOR <= wait <= 300.0
    assert wait == max(FLOOR, min(300.0, 2.0 * 2**attempt) * u)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("٣", None),  # a non-ASCII digit is not delay-seconds
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), None),  # in the past: ignored
        ("Sun, 06 Nov 1994 08:49:37 GMT", None),
        ("Sun, 99 Nov 1994 08:49:37 GMT", None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_replaces_backoff_clamped_and_floored():
    policy = Policy(initial=2.0, max=60.0)

    def rand(_lo: float, _hi: float) -> float:
        raise AssertionError("no jitter when the server says")

    assert wait_after(3, policy, "30", NOW, rand) == 30.0
    assert wait_after(3, policy, "3600", NOW, rand) == 60.0
    assert wait_after(3, policy, "0", NOW, rand) == FLOOR
    assert wait_after(0, policy, "bogus", NOW, lambda lo, hi: hi) == 2.0


def test_retrier_retries_transient_until_success(clock: Clock):
    calls: Iterator[Exception | str] = iter([Transient("a"), Transient("b", "4"), "ok"])

    def op() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    retrier = Retrier(Policy(attempts=5), sleep=clock.sleep, now=clock.now, rand=lambda lo, hi: hi)
    assert retrier.run(op) == "ok"
    assert clock.sleeps == [2.0, 4.0]


def test_retrier_attempts_budget(clock: Clock):
    count = 0

    def op() -> None:
        nonlocal count
        count += 1
        raise Transient(f"fail {count}")

    retrier = Retrier(Policy(attempts=4), sleep=clock.sleep, now=clock.now)
    with pytest.raises(BudgetSpent) as info:
        retrier.run(op)
    assert count == 4
    assert info.value.attempts == 4
    assert str(info.value) == "fail 4"
    assert len(clock.sleeps) == 3


def test_retrier_deadline_budget(clock: Clock):
    count = 0

    def op() -> None:
        nonlocal count
        count += 1
        raise Transient("down", "10")

    retrier = Retrier(Policy(attempts=1000, max=60, deadline=35), sleep=clock.sleep, now=clock.now)
    with pytest.raises(BudgetSpent):
        retrier.run(op)
    assert clock.sleeps == [10.0, 10.0, 10.0]  # a 4th wait would end past the deadline
    assert count == 4


def test_non_transient_errors_pass_through(clock: Clock):
    def op() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        Retrier(Policy(), sleep=clock.sleep, now=clock.now).run(op)
    assert clock.sleeps == []


def test_a_very_long_retry_after_is_clamped_not_a_crash():
    assert parse_retry_after("9" * 5000, NOW) == float("inf")
    assert wait_after(0, Policy(max=60), "9" * 5000, NOW, lambda lo, hi: hi) == 60.0


@given(st.text(max_size=80))
def test_parse_retry_after_never_raises(value: str):
    result = parse_retry_after(value, NOW)
    assert result is None or result >= 0


def test_a_clock_step_does_not_spend_or_extend_the_deadline():
    """NTP may move the wall clock by hours during first boot; the deadline ignores it."""
    wall = [NOW]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        wall[0] += 3600 if len(sleeps) == 1 else -7200  # jumps either way

    def op() -> None:
        raise Transient("down", "10")

    retrier = Retrier(Policy(attempts=100, max=60, deadline=35), sleep=sleep, now=lambda: wall[0])
    with pytest.raises(BudgetSpent):
        retrier.run(op)
    assert sleeps == [10.0, 10.0, 10.0]
    assert 30.0 <= retrier.spent < 31.0
