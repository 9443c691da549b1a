"""Retries with full-jitter exponential backoff, as docs/protocol.md "Retries" says.

After failed attempt n (from 0) the agent waits `max(100 ms, uniform(0, min(max, initial * 2^n)))`.
A valid `Retry-After` (delay-seconds, or an HTTP date in the future) replaces that wait, clamped
to `max`; an invalid, negative or past one is ignored. The 100 ms floor applies to every wait.
The budget is `attempts` per request and, when set, `deadline` of elapsed time, counted over
every request of one `Retrier` (one fetch, sidecar included): a wait that would end past the
deadline is not started.

`sleep`, `now` (wall clock) and `random` are injected so tests never sleep for real.
"""

from __future__ import annotations

import email.utils
import random as _random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from vmprep.protocol.durations import parse_duration

FLOOR = 0.1
T = TypeVar("T")
_SECONDS = re.compile(r"[0-9]+")


class Transient(Exception):
    """A failure worth another attempt; `retry_after` is the server's header, if any."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetSpent(Exception):
    """Every attempt failed, or the deadline came; the message is the last failure."""

    def __init__(self, message: str, attempts: int, last: Transient | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last = last  # the last failure, for a caller that tells kinds of failure apart


@dataclass(frozen=True)
class Policy:
    attempts: int = 30
    initial: float = 2.0
    max: float = 300.0
    deadline: float | None = None

    @classmethod
    def from_config(cls, retry: Mapping[str, Any] | None) -> Policy:
        """From agent.json's `phone_home.retry` (durations as written in the spec)."""
        retry = retry or {}
        deadline = retry.get("deadline")
        return cls(
            attempts=max(1, int(retry.get("attempts", 30))),
            initial=parse_duration(retry.get("initial", "2s")),
            max=parse_duration(retry.get("max", "5m")),
            deadline=None if deadline is None else parse_duration(deadline),
        )


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value, or None when it is absent or unusable."""
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        # More digits than a float holds exactly is "very long": it is clamped to max anyway
        # (and int() refuses strings of thousands of digits).
        return float(int(text)) if len(text) <= 15 else float("inf")
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    try:
        delta = when.timestamp() - now  # a naive result ("-0000") is UTC in Python's parser
    except (OverflowError, OSError, ValueError):
        return None
    return delta if delta >= 0 else None


def backoff(attempt: int, policy: Policy, rand: Callable[[float, float], float]) -> float:
    ceiling = min(policy.max, policy.initial * 2 ** min(attempt, 64))
    return max(FLOOR, rand(0.0, ceiling))


def wait_after(
    attempt: int,
    policy: Policy,
    retry_after: str | None,
    now: float,
    rand: Callable[[float, float], float],
) -> float:
    """How long to wait after failed attempt `attempt` (from 0)."""
    told = parse_retry_after(retry_after, now)
    if told is not None:
        return max(FLOOR, min(told, policy.max))
    return backoff(attempt, policy, rand)


class Retrier:
    """Runs callables under one policy; the deadline counts every attempt and wait it ran.

    Time spent is the attempts' duration on the monotonic clock plus the waits asked of
    `sleep`: a first-boot clock step (NTP) neither ends the budget at once nor extends it, and
    an injected `sleep` that only advances a fake clock is counted as the time it stands for.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
        rand: Callable[[float, float], float] = _random.uniform,
        on_retry: Callable[[int, float, str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._sleep = sleep
        self._now = now
        self._rand = rand
        self._on_retry = on_retry
        self._monotonic = monotonic
        self.spent = 0.0

    def run(self, op: Callable[[], T]) -> T:
        """`op()`'s result; `Transient` from it is retried; `BudgetSpent` when out of budget."""
        attempt = 0
        while True:
            started, before = self._monotonic(), self.spent
            try:
                return op()
            except Transient as exc:
                last = exc
            finally:
                # `op` may run requests of its own through this Retrier (a URL list retried
                # as a whole): what they counted is part of this attempt, not extra to it.
                elapsed = max(0.0, self._monotonic() - started)
                self.spent = before + max(elapsed, self.spent - before)
            if attempt + 1 >= self.policy.attempts:
                break
            wait = wait_after(attempt, self.policy, last.retry_after, self._now(), self._rand)
            deadline = self.policy.deadline
            if deadline is not None and self.spent + wait > deadline:
                break
            if self._on_retry is not None:
                self._on_retry(attempt, wait, str(last))
            self._sleep(wait)
            self.spent += wait
            attempt += 1
        raise BudgetSpent(str(last), attempt + 1, last)
