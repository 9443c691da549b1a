"""A re-image storm for benchmarks/serve.py: every instance of a fleet boots within a window
and does what a booting agent does — fetch its signed document, then send its final report —
each request retried on the agent's own schedule (vmprep/agent/retry.py, imported, not copied:
full-jitter exponential backoff, Retry-After honoured, the default policy of agent.json).

Each instance is a coroutine that starts at its boot time (uniform over `window`) and speaks raw
HTTP/1.1 on its own connection. The client holds at most `max_open` sockets at once (this
machine's descriptor budget); an instance waiting for one is still booting (its wait counts
towards "all documents by"), but not towards a request's latency. A failed attempt (refused or
reset connection, timeout, 5xx, 408, 429) counts as an error and is retried as the agent would.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from vmprep.agent.retry import Policy, wait_after

# The agent's defaults: phone_home.retry absent (Policy()) and phone_home.timeout 30s
# (vmprep/agent/fetch.py).
POLICY = Policy()
TIMEOUT = 30.0
TRANSIENT = {408, 429} | set(range(500, 600))

# (raw request, expected status); the request is built per instance
Request = tuple[bytes, int]


@dataclass
class Storm:
    name: str
    instances: int
    fetch_latencies: list[float] = field(default_factory=list)
    report_latencies: list[float] = field(default_factory=list)
    errors: int = 0  # failed attempts (each retried)
    gave_up: int = 0  # instances whose retry budget ran out
    retries: int = 0
    kinds: Counter[str] = field(default_factory=Counter)  # failed attempts by kind
    documents: int = 0  # instances that have their document (and its signature)
    docs_by: float = 0.0  # seconds from the storm's start until the last document arrived
    reports_by: float = 0.0  # ... until the last final report was accepted
    fetch_span: tuple[float, float] = (float("inf"), 0.0)  # first and last fetch answered

    def fetches_per_s(self) -> float:
        first, last = self.fetch_span
        return self.documents / (last - first) if last > first else float("nan")

    def row(self, baseline: float | None) -> str:
        lat = sorted(self.fetch_latencies)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p99 = lat[max(0, int(len(lat) * 0.99) - 1)] * 1000 if lat else float("nan")
        fps = self.fetches_per_s()
        ratio = f"{fps / baseline:>6.2f}" if baseline else f"{'-':>6}"
        reports = f"{self.reports_by:>8.1f}" if self.report_latencies else f"{'-':>8}"
        return (
            f"{self.name:<30} {fps:>9.0f} {p50:>8.1f} {p99:>8.1f} {self.errors:>7}"
            f" {self.gave_up:>6} {self.docs_by:>8.1f} {reports} {ratio}"
        )


HEADER = (
    f"{'storm target':<30} {'fetch/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    f" {'gaveup':>6} {'docs s':>8} {'reps s':>8} {'/nginx':>6}"
)


class _Failed(Exception):
    def __init__(self, kind: str, retry_after: str | None = None) -> None:
        self.kind = kind
        self.retry_after = retry_after


async def _attempt_or_failure(attempt: Awaitable[None]) -> _Failed | None:
    try:
        await attempt
    except _Failed as failed:
        return failed
    return None


async def _exchange(port: int, raw: bytes) -> tuple[int, str | None]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, retry_after = 0, None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"retry-after":
                retry_after = value.strip().decode("latin-1")
        if length:
            await reader.readexactly(length)
        return status, retry_after
    finally:
        writer.close()


async def run_storm(
    name: str,
    port: int,
    instances: int,
    plan: Callable[[int], tuple[list[Request], list[Request]]],
    *,
    window: float,
    max_open: int,
    seed: int = 17,
) -> Storm:
    """`plan(i)`: instance i's fetches (its document, and the sidecar from a static host) and
    then its reports (the last is the final one), each list in order."""
    storm = Storm(name, instances)
    rand = random.Random(seed)
    boots = sorted(rand.uniform(0.0, window) for _ in range(instances))
    sockets = asyncio.Semaphore(max_open)
    start = time.perf_counter()

    async def attempt(raw: bytes, expected: int, latencies: list[float]) -> None:
        async with sockets:
            t = time.perf_counter()
            try:
                status, retry_after = await asyncio.wait_for(_exchange(port, raw), TIMEOUT)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
                raise _Failed(type(e).__name__) from None
            if status in TRANSIENT:
                raise _Failed(f"HTTP {status}", retry_after)
            if status != expected:
                raise _Failed(f"HTTP {status}")  # counted and retried: should not happen
            latencies.append(time.perf_counter() - t)

    async def request(raw: bytes, expected: int, latencies: list[float]) -> bool:
        for n in range(POLICY.attempts):
            failed = await _attempt_or_failure(attempt(raw, expected, latencies))
            if failed is None:
                return True
            storm.errors += 1
            storm.kinds[failed.kind] += 1
            if n + 1 == POLICY.attempts:
                break
            storm.retries += 1
            wait = wait_after(n, POLICY, failed.retry_after, time.time(), rand.uniform)
            await asyncio.sleep(wait)
        return False

    async def instance(i: int, boot: float) -> None:
        await asyncio.sleep(max(0.0, start + boot - time.perf_counter()))
        fetches, reports = plan(i)
        for raw, expected in fetches:
            if not await request(raw, expected, storm.fetch_latencies):
                storm.gave_up += 1
                return
            now = time.perf_counter() - start
            first, last = storm.fetch_span
            storm.fetch_span = (min(first, now), max(last, now))
        storm.documents += 1
        storm.docs_by = max(storm.docs_by, time.perf_counter() - start)
        for raw, expected in reports:
            if not await request(raw, expected, storm.report_latencies):
                storm.gave_up += 1
                return
        if reports:
            storm.reports_by = max(storm.reports_by, time.perf_counter() - start)

    await asyncio.gather(*(instance(i, boot) for i, boot in enumerate(boots)))
    return storm
