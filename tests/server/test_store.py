from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import pytest

from vmprep.errors import InputError
from vmprep.server.service import Tokens, hash_token, load_tokens
from vmprep.server.store import SqliteStore

DAY = 86400.0


def report(
    instance_id: str = "i-1", state: str = "done", report_id: str | None = None
) -> dict[str, Any]:
    return {
        "report_id": report_id or str(uuid.uuid4()),
        "instance_id": instance_id,
        "role": "web",
        "agent_version": "0.1.0",
        "config_serial": 7,
        "state": state,
        "sent_at": "x",
        "steps": [{"id": "a", "status": "done"}, {"id": "b", "status": "interrupted"}],
    }


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "data")
    yield s
    s.close()


def test_the_store_is_sqlite_in_wal_mode_in_a_private_directory(store, tmp_path):
    assert (tmp_path / "data").stat().st_mode & 0o077 == 0
    (mode,) = sqlite3.connect(tmp_path / "data" / "vmprep.sqlite3").execute("PRAGMA journal_mode")
    assert mode == ("wal",)


def test_a_repeated_report_id_is_stored_once_and_the_first_body_wins(store):
    first = report(state="running")
    assert store.add_report(first, b'{"first": 1}', 100.0, 100.0)
    assert not store.add_report({**first, "state": "failed"}, b'{"second": 2}', 101.0, 101.0)
    assert store.instances()[0]["state"] == "running"
    assert store.instance("i-1")["reports"] == [
        {"received_at": "1970-01-01T00:01:40Z", "report": {"first": 1}}
    ]


def test_a_spooled_older_report_does_not_hide_the_newer_state(store):
    store.add_report(report(state="done"), b"{}", 200.0, 200.0)
    store.add_report(report(state="running"), b"{}", 100.0, 300.0)  # sent earlier, came later
    (summary,) = store.instances()
    assert summary["state"] == "done"
    assert summary["steps"] == {"done": 1, "failed": 1, "total": 2}
    assert len(store.instance("i-1")["reports"]) == 2


def test_prune_drops_old_reports_but_keeps_ids_a_day_and_each_latest(tmp_path):
    store = SqliteStore(tmp_path / "d", retention=60)  # raised to the 24 h minimum
    old = report("i-1")
    store.add_report(old, b"{}", 0.0, 0.0)
    store.add_report(report("i-1"), b"{}", 10.0, 10.0)
    store.add_report(report("i-2"), b"{}", 5.0, 5.0)
    assert store.prune(DAY - 1) == 0
    assert store.prune(DAY + 20) == 1  # i-1's first report; i-2's only one is its latest
    i1, i2 = store.instance("i-1"), store.instance("i-2")
    assert i1 is not None
    assert i2 is not None
    assert len(i1["reports"]) == 1
    assert len(i2["reports"]) == 1
    store.close()


def test_issues_are_kept_per_target_under_one_counter(store):
    a = store.issue("web", "_role", "d1", 3600, 1000.0)
    assert store.issue("web", "_role", "d1", 3600, 2000.0) == a
    b = store.issue("web", "i-1", "d2", 3600, 2000.0)
    assert b.serial == a.serial + 1
    c = store.issue("web", "_role", "d1", 3600, 1000.0 + 1800)
    assert (c.serial, c.first_serial) == (b.serial + 1, a.serial)
    assert store.issued_for(b.serial) == ("web", "i-1", "d2")
    assert store.issued_for(999) is None


def test_tokens_file_holds_hashes_and_is_checked_line_by_line(tmp_path):
    f = tmp_path / "tokens"
    f.write_text(f"# fleet\nfleet {hash_token('a')}  # prod\n\nadmin {hash_token('b')}\n")
    tokens = load_tokens(f)
    assert tokens.is_fleet("a")
    assert not tokens.is_fleet("b")
    assert tokens.is_admin("b")
    assert not Tokens().is_fleet("a")
    f.write_text("fleet plaintext-token\n")
    with pytest.raises(InputError, match=r"tokens:1:1: expected `fleet <sha256 hex> \[roles="):
        load_tokens(f)


def test_an_unusable_data_dir_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot open the status store"):
        SqliteStore(tmp_path / "file" / "data")


def test_the_writer_batches_concurrent_reports_and_answers_each(store):
    import asyncio

    from vmprep.server.store import NewReport
    from vmprep.server.writer import ReportWriter

    calls = []
    real = store.add_reports

    def counting(batch):
        calls.append(len(batch))
        return real(batch)

    store.add_reports = counting
    writer = ReportWriter(store)
    same = report("i-0")

    async def burst() -> list[bool]:
        items = [NewReport(report(f"i-{n}"), b"{}", 1.0, 1.0) for n in range(50)]
        items += [NewReport(same, b"{}", 1.0, 1.0), NewReport(same, b"{}", 1.0, 1.0)]
        return await asyncio.gather(*(writer.add(item) for item in items))

    results = asyncio.run(burst())
    assert results == [True] * 51 + [False]
    assert sum(calls) == 52
    assert len(calls) < 52  # written in batches
    assert len(store.instances()) == 50  # the repeated one is i-0 again


def test_a_failing_store_fails_the_waiting_requests_not_the_writer(store):
    import asyncio
    import sqlite3 as sq

    from vmprep.server.store import NewReport
    from vmprep.server.writer import ReportWriter

    writer = ReportWriter(store)
    real = store.add_reports
    store.add_reports = lambda batch: (_ for _ in ()).throw(sq.OperationalError("disk I/O error"))
    with pytest.raises(sq.OperationalError):
        asyncio.run(writer.add(NewReport(report(), b"{}", 1.0, 1.0)))
    store.add_reports = real
    assert asyncio.run(writer.add(NewReport(report(), b"{}", 1.0, 1.0))) is True
