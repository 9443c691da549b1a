"""Atomic state writes, the run lock and durations/config errors."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.agent.core.conftest import lock_held_by_another_process
from vmprep.agent.config import ConfigError, load_config
from vmprep.agent.state import (
    AgentLock,
    LockTimeout,
    StateError,
    StateStore,
    new_state,
)
from vmprep.protocol.atomic import atomic_write, write_atomic
from vmprep.protocol.durations import parse_duration


def test_atomic_write_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    atomic_write(target, b"one")

    def half(f: Any) -> None:
        f.write(b"tw")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half)
    assert target.read_bytes() == b"one"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_store_round_trip_and_refusals(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.load("abc") is None
    state = new_state("abc")
    store.save(state)
    assert store.load("abc") == state
    store.set_current("abc")
    assert store.current() == "abc"
    with pytest.raises(StateError, match="not a valid instance id"):
        store.path("../etc/passwd")
    (tmp_path / "state" / "abc.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(StateError, match="not a vmprep agent state file"):
        store.load("abc")
    (tmp_path / "state" / "abc.json").write_bytes(b"\xff\xfe")
    with pytest.raises(StateError, match="not valid JSON"):
        store.load("abc")


def test_lock_excludes_another_process(tmp_path: Path) -> None:
    lock = AgentLock(tmp_path)
    with lock_held_by_another_process(tmp_path):
        started = time.monotonic()
        with pytest.raises(LockTimeout, match="another agent is running"):
            lock.acquire(0.3)
        assert time.monotonic() - started >= 0.3
    lock.acquire(2)  # released by the OS when the holder died
    assert (tmp_path / "agent.lock").read_text().strip() == str(os.getpid())
    lock.release()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1d", 86400),
        (2.5, 2.5),
        (0, 0),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 m", "-1s", "1w", "", True, -1, None, "s"])
def test_parse_duration_refuses(bad) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ("[]", "expected a JSON object"),
        ('{"format": 2}', "format: expected 1"),
        ('{"identity": ["dns"]}', "identity: expected"),
        ('{"phone_home": {"url": "x", "role": "web"}}', "trusted_keys"),
        ('{"phone_home": {"url": [], "role": "web", "trusted_keys": ["k"]}}', "phone_home.url"),
        (
            '{"phone_home": {"url": "u", "role": "r", "trusted_keys": ["k"], "timeout": "1 min"}}',
            "timeout",
        ),
    ],
)
def test_config_errors_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "agent.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_config_defaults(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    path.write_text(
        json.dumps(
            {"phone_home": {"url": "https://x/{role}", "role": "web", "trusted_keys": ["k"]}}
        )
    )
    cfg = load_config(path)
    assert cfg.phone_home is not None
    assert cfg.phone_home["url"] == ["https://x/{role}"]
    assert cfg.phone_home["retry"] == {
        "attempts": 30,
        "initial": "2s",
        "max": "5m",
        "jitter": "full",
    }
    assert (cfg.role, cfg.identity[0], cfg.steps, cfg.install_dir) == (
        "web",
        "azure-imds",
        [],
        str(tmp_path),
    )


def test_temp_files_of_killed_writes_are_removed(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save(new_state("abc"))
    stale = tmp_path / "state" / ".abc.json.tmp-999999"
    stale.write_text("{half")
    assert store.load("abc") is not None
    assert stale.exists(), "a reader (status) never removes another process's temporary file"
    assert store.load("abc", clean=True) is not None
    assert not stale.exists()
