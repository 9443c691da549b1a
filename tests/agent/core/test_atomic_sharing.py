"""Windows sharing violations on the atomic write and on readers, injected (#19 item 1)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from vmprep.agent.logs import Log
from vmprep.agent.platform.posix import PosixPlatform
from vmprep.agent.secrets import Vault
from vmprep.agent.state import StateStore, new_state
from vmprep.agent.status import status
from vmprep.agent.steps import StepContext, StepError, runner
from vmprep.protocol.atomic import (
    RETRY_DELAYS,
    FileBusyError,
    is_sharing_violation,
    read_retrying,
    write_atomic,
)


def sharing_violation(winerror: int = 32) -> PermissionError:
    exc = PermissionError(13, "The process cannot access the file")
    setattr(exc, "winerror", winerror)  # noqa: B010 - what Windows CPython sets
    return exc


class FlakyReplace:
    """os.replace that fails the first `failures` times as Windows does under a reader."""

    def __init__(self, failures: int, winerror: int = 32) -> None:
        self.failures = failures
        self.winerror = winerror
        self.calls = 0

    def __call__(self, src: Path, dst: Path) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise sharing_violation(self.winerror)
        os.replace(src, dst)


@pytest.mark.parametrize("winerror", [5, 32, 33])
def test_the_rename_is_retried_while_windows_says_the_target_is_open(
    tmp_path: Path, winerror: int
) -> None:
    target = tmp_path / "s.json"
    target.write_bytes(b"old")
    flaky, waits = FlakyReplace(3, winerror), list[float]()
    write_atomic(target, lambda f: f.write(b"new"), replace=flaky, sleep=waits.append)
    assert target.read_bytes() == b"new"
    assert flaky.calls == 4
    assert waits == list(RETRY_DELAYS[:3])
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_a_target_held_open_for_good_fails_clearly_and_leaves_the_old_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "s.json"
    target.write_bytes(b"old")
    waits: list[float] = []
    with pytest.raises(FileBusyError, match="stayed in use by another process") as info:
        write_atomic(
            target, lambda f: f.write(b"new"), replace=FlakyReplace(10**6), sleep=waits.append
        )
    assert len(waits) == len(RETRY_DELAYS)
    assert 5 <= sum(waits) <= 15, "bounded: seconds, not forever"
    assert str(target) in str(info.value)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    plain = PermissionError(13, "denied")  # POSIX: no winerror, a real permission problem
    assert not is_sharing_violation(plain)
    calls: list[object] = []

    def refuse(src: Path, dst: Path) -> None:
        calls.append(dst)
        raise plain

    with pytest.raises(PermissionError):
        write_atomic(tmp_path / "x", lambda f: f.write(b"x"), replace=refuse, sleep=calls.append)
    assert len(calls) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_reader_retries_a_transient_sharing_violation(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"data")
    fails = [sharing_violation(), sharing_violation(5)]

    def opener(p: Path) -> bytes:
        if fails:
            raise fails.pop()
        return p.read_bytes()

    waits: list[float] = []
    assert read_retrying(path, opener=opener, sleep=waits.append) == b"data"
    assert len(waits) == 2
    with pytest.raises(FileNotFoundError):
        read_retrying(tmp_path / "missing", sleep=waits.append)


def test_a_reader_never_removes_the_writers_temporary_file(tmp_path: Path) -> None:
    """`status` used to delete `.ID.json.tmp-PID` of the running agent: its rename then failed."""
    store = StateStore(tmp_path)
    store.save(new_state("abc"))
    store.set_current("abc")
    writing = tmp_path / "state" / ".abc.json.tmp-4242"
    writing.write_bytes(b"{half")
    code, _ = status(tmp_path)
    assert code == 2
    assert writing.exists()


def test_a_waiting_reader_rides_out_a_transient_unreadable_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path)
    state = new_state("abc")
    store.set_current("abc")
    path = tmp_path / "state" / "abc.json"
    path.write_text("{torn")
    polls = []

    import vmprep.agent.status as status_module

    real = status_module.read_status
    monkeypatch.setattr(status_module, "read_status", lambda d: read(d))

    def read(state_dir: Path) -> tuple[int, Any, str | None]:
        polls.append(1)
        if len(polls) == 2:
            state["state"] = "done"
            store.save(state)
        return real(state_dir)

    code, out = status(tmp_path, wait=True, timeout=10, poll=0.01)
    assert code == 0, out
    assert len(polls) == 2, "the torn read was polled again, not reported"


def test_a_file_step_whose_target_stays_open_fails_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vmprep.protocol import atomic

    target = tmp_path / "app.conf"
    target.write_text("old")
    monkeypatch.setattr(atomic, "RETRY_DELAYS", (0.0, 0.0))
    monkeypatch.setattr(atomic, "_replace", FlakyReplace(10**6))
    ctx = StepContext(
        platform=PosixPlatform(tmp_path, {}),
        vault=Vault({}),
        log=Log(None, echo=None),
        state_dir=tmp_path,
    )
    with pytest.raises(StepError, match=r"app\.conf stayed in use by another process"):
        runner("file")({"path": str(target), "content": "new"}, ctx)
    assert target.read_text() == "old"
