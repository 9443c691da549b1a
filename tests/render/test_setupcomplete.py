from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.render.conftest import (
    GOLDEN,
    assert_refused_at,
    base_doc,
    check_golden,
    environ_for,
    golden_specs,
    spec_from,
)
from vmprep.render import CHAINED_SETUPCOMPLETE, RenderError, render
from vmprep.render.setupcomplete import render_setupcomplete
from vmprep.spec import load_spec
from vmprep.spec.winrules import setupcomplete_path_problem

CMD = "Windows/Setup/Scripts/SetupComplete.cmd"
METACHARS = '%^&|<>!"'
NASTY = 'x%PATH%^&|<>!"\ny & calc.exe | "%COMSPEC%" !x! ^\n<in >out'
PY = "C:\\Python312\\python.exe"


def cmd_of(spec, **kwargs) -> bytes:
    return render(spec, environ=environ_for(spec), **kwargs).files[CMD]


@pytest.mark.parametrize("spec_path", golden_specs(), ids=lambda p: p.stem)
def test_setupcomplete_matches_golden(spec_path: Path) -> None:
    check_golden(cmd_of(load_spec(spec_path)), GOLDEN / f"{spec_path.stem}.SetupComplete.cmd")


def test_launcher_uses_crlf_launches_the_agent_isolated_and_always_exits_0() -> None:
    data = render_setupcomplete(PY, "C:\\ProgramData\\vmprep")
    assert data.count(b"\r\n") == data.count(b"\n")
    lines = data.decode("ascii").split("\r\n")
    assert lines[-2:] == ["exit /b 0", ""]
    launch = (
        '"C:\\Python312\\python.exe" -I -S "C:\\ProgramData\\vmprep\\agent.pyz" launch '
        '--config "C:\\ProgramData\\vmprep\\agent.json" '
        '>> "C:\\ProgramData\\vmprep\\setupcomplete.log" 2>&1'
    )
    assert launch in lines
    # the job runs in the startup task, never inside Setup: no `run`, no reboot from here
    assert not any(" run " in line or "shutdown" in line.lower() for line in lines)
    commands = [line for line in lines[:-2] if not line.startswith("rem ")]
    assert not any(re.search(r"\bexit\b", line) for line in commands)  # the only way out


def test_chained_script_runs_first_in_its_own_cmd() -> None:
    data = render_setupcomplete(PY, "C:\\vmprep", CHAINED_SETUPCOMPLETE).decode()
    call = f'"%SystemRoot%\\System32\\cmd.exe" /d /s /c ""{CHAINED_SETUPCOMPLETE}""'
    assert call in data
    assert data.index(call) < data.index("agent.pyz")


def test_spec_text_never_reaches_the_launcher(tmp_path: Path) -> None:
    plain = cmd_of(spec_from(tmp_path, base_doc(), "plain.yaml"))
    line = " ".join(NASTY.splitlines())  # one line: only scripts and descriptions take more
    doc = base_doc(
        organization=line,
        owner=line,
        accounts=[{"name": "u", "display_name": line, "description": NASTY}],
        first_logon_commands=[{"command": line, "description": NASTY}],
    )
    doc["agent"]["variables"] = {"v": line}
    doc["agent"]["steps"] = [
        {"id": "a", "cmd": NASTY},
        {"id": "b", "powershell": NASTY},
        {"id": "c", "exec": {"argv": ["tool.exe", line], "env": {"X": line}}},
        {"id": "d", "registry": {"key": "HKLM\\SOFTWARE\\X", "name": line, "value": line}},
    ]
    nasty = cmd_of(spec_from(tmp_path, doc, "nasty.yaml"))
    assert nasty == plain
    for piece in ("PATH", "calc", "COMSPEC", "!x!", "<in", ">out"):
        assert piece.encode() not in nasty


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(st.sampled_from(METACHARS + "\r\n ab"), max_size=30))
def test_any_metacharacter_text_leaves_the_launcher_unchanged(tmp_path: Path, text: str) -> None:
    line = text.replace("\r", " ").replace("\n", " ")
    doc = base_doc(organization=line, owner=line)
    doc["agent"]["steps"] = [{"id": "a", "cmd": text + "\r\n"}]
    doc["agent"]["variables"] = {"v": line}
    data = cmd_of(spec_from(tmp_path, doc))
    assert data == render_setupcomplete(PY, "C:\\ProgramData\\vmprep")


@pytest.mark.parametrize(
    "python",
    [
        "C:\\Py%PATH%\\python.exe",
        'C:\\Py"\\python.exe',
        "C:\\a&calc\\python.exe",
        "C:\\a|b\\python.exe",
        "C:\\a^b\\python.exe",
        "C:\\a!b!\\python.exe",
        "C:\\a<b\\python.exe",
        "C:\\a\nb\\python.exe",
        "C:\\Pythön\\python.exe",
        "python.exe",
        "\\\\server\\share\\python.exe",
        "C:\\..\\python.exe",
        "C:\\dir\\\\python.exe",
    ],
)
def test_unsafe_interpreter_paths_are_refused_at_their_line(tmp_path: Path, python: str) -> None:
    assert (
        setupcomplete_path_problem(python) is not None
    )  # render's own check, whatever validate says
    doc = base_doc()
    doc["agent"]["runtime"]["python"] = python
    assert_refused_at(tmp_path, doc, "python")
    with pytest.raises(RenderError, match="--python"):
        cmd_of(spec_from(tmp_path, base_doc()), python=python)  # not validated by validate


def test_install_dir_must_be_safe_and_on_the_system_drive(tmp_path: Path) -> None:
    for install_dir in ["D:\\vmprep", "C:\\vm%x%", "C:\\a&b"]:
        doc = base_doc()
        doc["agent"]["install_dir"] = install_dir
        assert_refused_at(tmp_path, doc, "install_dir")


def test_the_launcher_builder_refuses_unchecked_paths() -> None:
    with pytest.raises(ValueError, match="unchecked path"):
        render_setupcomplete('C:\\a"&calc', "C:\\vmprep")


def test_chain_path_is_checked(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, base_doc())
    for chain in ["C:\\a&b.cmd", "C:\\Windows\\Setup\\Scripts\\setupcomplete.cmd", "C:\\x.exe"]:
        with pytest.raises(RenderError, match="--chain-setupcomplete"):
            cmd_of(spec, chain_setupcomplete=chain)
    assert CHAINED_SETUPCOMPLETE.encode() in cmd_of(spec, chain_setupcomplete=CHAINED_SETUPCOMPLETE)


@given(st.text(max_size=40))
def test_an_accepted_path_holds_no_cmd_metacharacter(value: str) -> None:
    if setupcomplete_path_problem(value) is None:
        assert not set(value) & set(METACHARS + "\r\n\t")
        assert value.isascii()


def test_interpreter_comes_from_option_then_spec_then_windows_base_python(tmp_path: Path) -> None:
    doc = base_doc()
    spec = spec_from(tmp_path, doc, "with.yaml")
    assert b'"C:\\Other\\python.exe" -I' in cmd_of(spec, python="C:\\Other\\python.exe")
    del doc["agent"]["runtime"]
    spec = spec_from(tmp_path, doc, "without.yaml")
    base = "C:\\Program Files\\Python312\\python.exe"
    assert f'"{base}" -I'.encode() in cmd_of(spec, platform="win32", base_python=base)
    with pytest.raises(RenderError) as caught:
        cmd_of(spec, platform="linux")
    assert "agent.runtime.python" in (caught.value.hint or "")


def test_the_startup_task_command_is_checked_at_render_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent writes the startup task at first boot from the same three paths (#9)."""
    from vmprep.agent.platform import taskxml
    from vmprep.render.build import task_command_problem

    python = "C:\\Program Files\\Python312\\python.exe"
    assert task_command_problem(python, "C:\\ProgramData\\vmprep") is None
    monkeypatch.setattr(taskxml, "MAX_COMMAND", len(python) - 1)  # a Windows with less room
    with pytest.raises(RenderError, match=r"startup task cannot start the agent.*\(task-command\)"):
        cmd_of(spec_from(tmp_path, base_doc()), python=python)
