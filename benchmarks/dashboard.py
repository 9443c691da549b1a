"""The fleet dashboard's data with 10,000 instances and 100,000 reports in the store.

    .venv/bin/python benchmarks/dashboard.py [--instances 10000] [--reports 100000]

Seeds a SQLite store, then times what one refresh of the dashboard costs (`store.fleet`: the
counts and one page of 50) for the first page, a filtered page, a page deep in the list (by
cursor) and the never-reported view, and one instance's timeline; beside them, in the same
run, the full listing `vmprep status` reads (`store.instances()`), which is the baseline the
dashboard must not scale like. Target: every dashboard query under 50 ms at this size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vmprep.server.fleet import Served, parse_cursor
from vmprep.server.store import NewReport, SqliteStore

STATES = ("done", "running", "failed", "halted")


def seed(store: SqliteStore, instances: int, reports: int) -> None:
    per = max(1, reports // instances)
    batch: list[NewReport] = []
    t0 = 1_800_000_000.0
    for i in range(instances):
        for k in range(per):
            state = STATES[i % 4] if k == per - 1 else "running"
            steps = [{"id": f"s{j}", "status": "done"} for j in range(8)]
            steps.append({"id": "last", "status": "failed" if state == "failed" else "done",
                          "output_tail": "x" * 200})  # fmt: skip
            body = {"apiVersion": "vmprep/v1", "kind": "StatusReport",
                    "report_id": str(uuid.uuid4()), "instance_id": f"i-{i:06d}",
                    "role": ("web", "sql", "app", "cache")[i % 4], "agent_version": "0.1.0",
                    "state": state, "boot": k + 1, "sent_at": "2027-01-15T08:00:00Z",
                    "steps": steps, "error": None}  # fmt: skip
            sent = t0 + i + k * 0.001
            batch.append(NewReport(body, json.dumps(body).encode(), sent, sent))
            if len(batch) >= 5000:
                store.add_reports(batch)
                batch = []
    if batch:
        store.add_reports(batch)
    store.add_served(
        [Served(f"n-{i:06d}", "web", 1, t0 + i) for i in range(instances // 20)]
        + [Served(f"i-{i:06d}", "web", 1, t0 + i) for i in range(instances)]
    )


def timed(fn: Callable[[], Any], runs: int = 15) -> float:
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--reports", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp))
        started = time.perf_counter()
        seed(store, args.instances, args.reports)
        print(f"seeded {args.instances} instances, {args.reports} reports "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        deep = None
        page = store.fleet(limit=500)
        for _ in range(5):
            deep = parse_cursor(page["next"])
            page = store.fleet(limit=500, after=deep)
        rows = [
            ("dashboard: first page + counts", lambda: store.fleet()),
            ("dashboard: role=sql state=failed", lambda: store.fleet(role="sql", state="failed")),
            ("dashboard: a page 2,500 rows deep", lambda: store.fleet(after=deep)),
            ("dashboard: never reported", lambda: store.fleet(state="never_reported")),
            ("dashboard: search by id prefix", lambda: store.fleet(prefix="i-0042")),
            ("dashboard: one instance's timeline", lambda: store.timeline("i-004242")),
            ("baseline: every instance (status)", store.instances),
        ]
        results = [(name, timed(fn)) for name, fn in rows]
        store.close()
    baseline = results[-1][1]
    for name, ms in results:
        note = "" if name.startswith("baseline") else f"  {ms / baseline:5.2f}x baseline"
        verdict = "" if name.startswith("baseline") else ("  ok" if ms < 50 else "  MISSES 50 ms")
        print(f"{name:<38} {ms:8.2f} ms{note}{verdict}")


if __name__ == "__main__":
    main()
