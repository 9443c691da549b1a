"""Secrets never reach the state file, the log, a report or an exception text."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.agent.core.conftest import UUID
from vmprep.agent.logs import Log
from vmprep.agent.secrets import MASK, Redactor, Secret, SecretError, Vault

SECRET = "hunter2-Sup3r-s3cret"


def test_secret_repr_and_str_never_show_the_value() -> None:
    s = Secret("join_password", SECRET)
    assert SECRET not in repr(s)
    assert SECRET not in str(s)
    assert SECRET not in f"{s}"
    assert s.reveal() == SECRET


def test_redactor_masks_longest_first_and_everywhere() -> None:
    r = Redactor(["abc", "abcdef", ""])
    assert r("x abcdef y abc z") == f"x {MASK} y {MASK} z"
    assert r("nothing") == "nothing"


def test_vault_resolves_every_reference_form() -> None:
    v = Vault({"env:TOKEN": "t0k3n", "file:secrets/p.txt": "p4ss"})
    v.add({"join_password": "j0in"})
    assert v.resolve({"env": "TOKEN"}) == "t0k3n"
    assert v.resolve({"file": "secrets/p.txt"}) == "p4ss"
    assert v.resolve({"secret": "join_password"}) == "j0in"
    assert v.resolve("plain") == "plain"
    with pytest.raises(SecretError, match="'nope'"):
        v.resolve({"secret": "nope"})
    assert v.redact("t0k3n p4ss j0in") == " ".join([MASK] * 3)


def test_log_lines_are_redacted_and_rotated(tmp_path: Path) -> None:
    echo = io.StringIO()
    log = Log(tmp_path, redact=Redactor([SECRET]), max_bytes=200, backups=2, echo=echo)
    for i in range(20):
        log.info(f"line {i} with {SECRET}")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["agent.log", "agent.log.1", "agent.log.2"]
    text = "".join(p.read_text() for p in tmp_path.iterdir()) + echo.getvalue()
    assert SECRET not in text
    assert MASK in text


def test_secret_in_output_and_exception_text_is_redacted(agent, tmp_path: Path) -> None:
    a = agent(
        [
            {
                "id": "prints",
                "exec": {
                    "argv": ["/bin/sh", "-c", 'echo "token=$TOKEN"'],
                    "env": {"TOKEN": {"env": "T"}},
                },
            },
            # The OSError raised for a missing program names the path: the secret is in it.
            {"id": "raises", "exec": {"argv": [f"/nonexistent/{SECRET}"]}},
        ],
        secrets={"env:T": SECRET},
    )
    assert a.run() == 1
    state_text = (a.state_dir / "state" / f"{UUID}.json").read_text()
    assert SECRET not in state_text
    assert SECRET not in a.log()
    assert a.step("prints")["output_tail"] == f"token={MASK}\n"
    assert MASK in a.step("raises")["error"]
    assert MASK in a.state()["error"]["message"]
