"""Answer files are deleted as soon as the agent starts, not only when a run completes (#9):
a failed or halted instance must not keep the administrator password."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.agent.core.conftest import make_agent
from vmprep.agent.answerfiles import delete_answer_files, expand
from vmprep.agent.config import ConfigError, load_config
from vmprep.agent.launch import launch_agent
from vmprep.agent.logs import Log
from vmprep.agent.platform.base import ProcResult
from vmprep.agent.platform.posix import PosixPlatform
from vmprep.agent.run import run_agent


def answer_files(tmp_path: Path) -> tuple[list[str], list[Path]]:
    panther = tmp_path / "Panther"
    sysprep = tmp_path / "Sysprep"
    panther.mkdir()
    sysprep.mkdir()
    files = [panther / "unattend.xml", panther / "unattend-original.xml", sysprep / "unattend.xml"]
    for f in files:
        f.write_text("<AdministratorPassword>c2VjcmV0</AdministratorPassword>")
    (panther / "setupact.log").write_text("kept")
    return [str(panther / "unattend*.xml"), str(sysprep / "unattend.xml")], files


class Unstartable(PosixPlatform):
    """The task cannot be registered: `launch` falls back to running here."""

    def install_startup_task(self, config_path: Path, *, replace: bool = True) -> ProcResult:
        return ProcResult(1, "no task scheduler")


def launch(tmp_path: Path, steps: list[dict[str, Any]], **extra: Any) -> int:
    agent = make_agent(tmp_path, steps, **extra)
    agent.write()
    return launch_agent(
        agent.config_path,
        platform=lambda *a, **k: Unstartable(tmp_path, agent.config["platform_options"]),
    )


def test_a_glob_names_windows_cached_copies_but_nothing_else(tmp_path: Path) -> None:
    patterns, files = answer_files(tmp_path)
    assert expand(patterns[0]) == [str(files[1]), str(files[0])]
    assert expand(str(tmp_path / "missing" / "unattend*.xml")) == []
    assert delete_answer_files(patterns, Log(None, echo=None)) == [
        str(f) for f in (files[1], files[0], files[2])
    ]
    assert (tmp_path / "Panther" / "setupact.log").exists()


def test_launch_deletes_them_before_a_run_that_fails(tmp_path: Path) -> None:
    patterns, files = answer_files(tmp_path)
    code = launch(
        tmp_path, [{"id": "bad", "exec": {"argv": ["/bin/false"]}}], answer_files=patterns
    )
    assert code == 1  # the run failed: before, the password stayed on such an instance
    assert not any(f.exists() for f in files)
    assert "deleted answer file" in (tmp_path / "logs" / "agent.log").read_text()


def test_run_deletes_them_at_start_too(tmp_path: Path) -> None:
    patterns, files = answer_files(tmp_path)
    agent = make_agent(
        tmp_path, [{"id": "bad", "exec": {"argv": ["/bin/false"]}}], answer_files=patterns
    )
    assert agent.run() == 1
    assert not any(f.exists() for f in files)


def test_with_auto_logon_they_stay_until_the_run_is_done(tmp_path: Path) -> None:
    patterns, files = answer_files(tmp_path)
    bad = [{"id": "bad", "exec": {"argv": ["/bin/false"]}}]
    assert launch(tmp_path, bad, answer_files=patterns, delete_answer_files="done") == 1
    assert all(f.exists() for f in files)  # the first logon still reads them
    agent = make_agent(tmp_path, [], answer_files=patterns, delete_answer_files="done")
    assert agent.run() == 0
    assert not any(f.exists() for f in files)


def test_keep_answer_files_keeps_them_at_start(tmp_path: Path) -> None:
    patterns, files = answer_files(tmp_path)
    assert launch(tmp_path, [], answer_files=patterns, keep_answer_files=True) == 0
    assert all(f.exists() for f in files)


def test_agent_json_keys_for_answer_files_and_the_platform(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"image": {"os": "windows-11"}}))
    cfg = load_config(path)
    assert (cfg.delete_answer_files, cfg.cloud) == ("launch", "generic")  # plat may not have landed
    path.write_text(json.dumps({"image": {"platform": "azure"}, "delete_answer_files": "done"}))
    cfg = load_config(path)
    assert (cfg.delete_answer_files, cfg.cloud) == ("done", "azure")
    path.write_text(json.dumps({"delete_answer_files": "later"}))
    with pytest.raises(ConfigError, match="delete_answer_files: expected launch or done"):
        load_config(path)


def test_not_while_setup_still_runs_a_task_may_fire_during_specialize(tmp_path: Path) -> None:
    patterns, files = answer_files(tmp_path)
    flag = tmp_path / "setup-done"
    options = {"ready_command": ["/bin/test", "-e", str(flag)], "setup_wait": "0s"}
    reboot = [{"id": "rb", "reboot": {}}]  # the fallback stops at it: the run is not done
    assert launch(tmp_path, reboot, answer_files=patterns, platform_options=options) == 2
    assert all(f.exists() for f in files)  # Setup still reads them
    assert (
        "`run` deletes the answer files once it has"
        in (tmp_path / "logs" / "agent.log").read_text()
    )
    flag.write_text("")
    (tmp_path / "boot_id").write_text("2")  # the startup task, at the next boot
    assert run_agent(tmp_path / "agent.json", None, lock_timeout=5) == 0
    assert not any(f.exists() for f in files)
