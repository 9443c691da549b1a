"""Rename + join in one operation, through the engine with a recording Windows platform:
whichever step comes first and wherever the other comes from, one `Add-Computer -NewName`
call, one restart, both steps done; a rename alone keeps Rename-Computer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.agent.core.test_winplatform import Recorder, decode
from vmprep.agent.engine import COMPLETED, FAILED, REBOOT, Engine
from vmprep.agent.logs import Log
from vmprep.agent.secrets import Vault
from vmprep.agent.state import new_state
from vmprep.agent.steps import StepContext

CREDS = {"join_user": "CORP\\joiner", "join_password": "s3cret'pw"}
RENAME = {"id": "rename", "rename_computer": {"name": "{computer_name}"}}
JOIN = {"id": "join", "join_domain": {"domain": "corp.example.com", "credentials": "remote"}}
AFTER = {"id": "after-join", "reboot": {"reason": "policy"}}


def engine(tmp: Path, platform: Recorder, variables: dict[str, Any], **kw: Any) -> Engine:
    ctx = StepContext(
        platform=platform,
        vault=Vault(kw.pop("secrets", CREDS)),
        log=Log(None, echo=None),
        state_dir=tmp,
        variables=variables,
        names={"role": "app", "instance_id": "i-1"},
    )
    state = new_state("i-1")
    return Engine(
        state=state,
        save=lambda: None,
        notify=lambda: None,
        context=ctx,
        role="app",
        os_name="windows-server-2025",
        **kw,
    )


def scripts(p: Recorder) -> list[str]:
    return [decode(argv) if argv[0] == "powershell.exe" else " ".join(argv) for argv, _ in p.calls]


def test_rename_then_join_is_one_add_computer_call_and_one_restart(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[3010])
    e = engine(tmp_path, p, {"computer_name": "APP-01"})
    assert e.run([RENAME, JOIN, AFTER], "baked") == REBOOT
    calls = scripts(p)
    assert len(calls) == 2
    assert (
        "Add-Computer -DomainName 'corp.example.com' -NewName 'APP-01' "
        "-Options JoinWithNewName,AccountCreate -Credential $cred -Force"
    ) in calls[0]
    assert "Rename-Computer -NewName 'APP-01' -DomainCredential $cred" in calls[0]
    assert calls[1].startswith("shutdown.exe /r")
    steps = e.state["steps"]
    assert [steps[f"baked:{s}"]["status"] for s in ("rename", "join", "after-join")] == ["done"] * 3
    assert "one Add-Computer -NewName call" in steps["baked:join"]["output_tail"]
    assert e.state["reboot_pending"]["steps"] == ["baked:rename", "baked:after-join"]
    assert all(CREDS["join_password"] not in part for argv, _ in p.calls for part in argv)


def test_a_remote_join_takes_the_baked_rename_that_comes_after_it(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[3010])
    variables: dict[str, Any] = {}
    remote = [JOIN, {"id": "reboot-after-join", "reboot": {}}]

    def phone_home() -> str:
        variables["computer_name"] = "SQL-07"  # the document's variables
        return e.run(remote, "remote")

    e = engine(tmp_path, p, variables, phone_home=phone_home)
    baked = [{"id": "fetch", "phone_home": {}}, RENAME]
    assert e.run(baked, "baked") == REBOOT
    calls = scripts(p)
    assert "-NewName 'SQL-07' -Options JoinWithNewName,AccountCreate" in calls[0]
    assert len(calls) == 2
    assert calls[1].startswith("shutdown.exe")
    assert e.state["steps"]["baked:rename"]["status"] == "done"
    assert e.state["steps"]["remote:join"]["status"] == "done"


def test_a_join_without_the_credentials_yet_leaves_the_rename_alone(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[3010, 3010])
    e = engine(tmp_path, p, {"computer_name": "APP-01"}, secrets={})
    assert e.run([RENAME, JOIN], "baked") == FAILED
    calls = scripts(p)
    assert "Rename-Computer -NewName 'APP-01' -Force" in calls[0]
    assert e.state["pending_name"] == "APP-01"
    assert e.state["steps"]["baked:join"]["status"] == "failed"  # no credentials at all


def test_a_join_after_a_pending_rename_joins_with_the_new_name(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[3010, 3010])
    e = engine(tmp_path, p, {"computer_name": "APP-01"}, secrets={})
    e.run([RENAME], "baked")
    e.vault.add(CREDS)  # delivered later (e.g. by a phone_home after the rename)
    assert e.run([JOIN], "remote") == COMPLETED
    assert "-NewName 'APP-01' -Options JoinWithNewName,AccountCreate" in scripts(p)[1]
    assert e.state["restart_due"] == ["baked:rename", "remote:join"]


def test_a_rename_alone_keeps_rename_computer(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[3010])
    e = engine(tmp_path, p, {"computer_name": "WEB-1"})
    assert e.run([RENAME], "baked") == COMPLETED
    assert e.restart_at_end() == REBOOT
    calls = scripts(p)
    assert "Rename-Computer -NewName 'WEB-1' -Force" in calls[0]
    assert "Add-Computer" not in calls[0]
    assert calls[1].startswith("shutdown.exe")


def test_already_named_and_joined_is_a_no_op(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[0])  # the script's own check: named and joined, exit 0
    e = engine(tmp_path, p, {"computer_name": "APP-01"})
    assert e.run([RENAME, JOIN, AFTER], "baked") == REBOOT  # the reboot step still reboots
    script = scripts(p)[0]
    assert "if ($joined -and $named) { exit 0 }" in script
    assert e.state["steps"]["baked:join"]["status"] == "done"
    assert e.state["reboot_pending"]["steps"] == ["baked:after-join"]


def test_a_join_whose_when_fails_is_not_a_partner(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[3010])
    join = {**JOIN, "when": {"variables": {"env": "prod"}}}
    e = engine(tmp_path, p, {"computer_name": "APP-01", "env": "test"})
    e.run([RENAME, join], "baked")
    assert "Rename-Computer -NewName 'APP-01' -Force" in scripts(p)[0]
    assert e.state["steps"]["baked:join"]["status"] == "skipped"
