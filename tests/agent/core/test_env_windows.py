"""`env` steps on Windows semantics: list modes, self-reference, the rebuilt block (#19)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmprep.agent.envvars import build_block, edit_list, expand, references_itself
from vmprep.agent.logs import Log
from vmprep.agent.platform import winplatform as w
from vmprep.agent.platform.posix import PosixPlatform
from vmprep.agent.platform.winenv import MACHINE_KEY, USER_KEY
from vmprep.agent.secrets import Vault
from vmprep.agent.steps import StepContext, StepError, runner

SYSTEM_PATH = r"%SystemRoot%\system32;%SystemRoot%;%SystemRoot%\System32\Wbem"


class Registry:
    """winreg over a dict: {(hive, key): {name (any case): (value, type)}}."""

    HKEY_LOCAL_MACHINE, HKEY_CURRENT_USER = "HKLM", "HKCU"
    KEY_READ, KEY_WRITE, KEY_WOW64_64KEY = 0x20019, 0x20006, 0x100
    REG_SZ, REG_EXPAND_SZ, REG_DWORD = 1, 2, 4

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], dict[str, tuple[Any, int]]] = {}
        self.writes: list[tuple[str, Any, int | None]] = []

    class _Key:
        def __init__(self, values: dict[str, tuple[Any, int]]) -> None:
            self.values = values

        def __enter__(self) -> Registry._Key:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    def _find(self, key: _Key, name: str) -> str:
        for existing in key.values:
            if existing.casefold() == name.casefold():
                return existing
        raise FileNotFoundError(name)

    def OpenKeyEx(self, hive: str, sub: str, reserved: int, access: int) -> _Key:
        if (hive, sub) not in self.keys:
            raise FileNotFoundError(sub)
        return self._Key(self.keys[(hive, sub)])

    def CreateKeyEx(self, hive: str, sub: str, reserved: int, access: int) -> _Key:
        return self._Key(self.keys.setdefault((hive, sub), {}))

    def QueryValueEx(self, key: _Key, name: str) -> tuple[Any, int]:
        return key.values[self._find(key, name)]

    def SetValueEx(self, key: _Key, name: str, reserved: int, kind: int, value: Any) -> None:
        self.writes.append((name, value, kind))
        found = [n for n in key.values if n.casefold() == name.casefold()]
        key.values[found[0] if found else name] = (value, kind)

    def DeleteValue(self, key: _Key, name: str) -> None:
        self.writes.append((name, None, None))
        del key.values[self._find(key, name)]

    def EnumValue(self, key: _Key, index: int) -> tuple[str, Any, int]:
        items = list(key.values.items())
        if index >= len(items):
            raise OSError(259, "No more data is available")
        name, (value, kind) = items[index]
        return name, value, kind


class Win(w.WindowsPlatform):
    def __init__(self, tmp: Path, reg: Registry) -> None:
        super().__init__(tmp, {}, "windows-server-2022", winreg=reg)
        self.broadcasts = 0

    def broadcast(self) -> bool:
        self.broadcasts += 1
        return True


@pytest.fixture
def reg() -> Registry:
    r = Registry()
    r.keys[("HKLM", MACHINE_KEY)] = {
        "Path": (SYSTEM_PATH, r.REG_EXPAND_SZ),
        "windir": ("%SystemRoot%", r.REG_EXPAND_SZ),
    }
    r.keys[("HKCU", USER_KEY)] = {
        "Path": (r"%USERPROFILE%\AppData\Local\Microsoft\WindowsApps", r.REG_EXPAND_SZ)
    }
    return r


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's own environment, as a SYSTEM process gets it (restored afterwards)."""
    for name in list(os.environ):
        monkeypatch.delenv(name)
    monkeypatch.setenv("SystemRoot", r"C:\Windows")
    monkeypatch.setenv("USERPROFILE", r"C:\Windows\system32\config\systemprofile")
    monkeypatch.setenv("PATH", r"C:\Windows\system32;C:\Windows")


def ctx(platform: Any, tmp: Path) -> StepContext:
    return StepContext(platform=platform, vault=Vault({}), log=Log(None, echo=None), state_dir=tmp)


def env_step(platform: Any, tmp: Path, **body: Any) -> str:
    return runner("env")(body, ctx(platform, tmp)).output


# -- list editing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "entries", "mode", "expected"),
    [
        (r"C:\a;C:\b", r"C:\t", "append", r"C:\a;C:\b;C:\t"),
        (r"C:\a;C:\b", r"C:\t", "prepend", r"C:\t;C:\a;C:\b"),
        (r"C:\a;C:\Tools\;C:\b", r"c:\tools", "append", r"C:\a;C:\Tools\;C:\b"),
        (r"C:\a;C:\Tools\;C:\b", r"c:\TOOLS", "prepend", r"C:\a;C:\Tools\;C:\b"),
        (r"C:\a;C:\Tools\;C:\b;c:\tools", r"C:\tools", "remove", r"C:\a;C:\b"),
        (r"C:\a;;C:\b;", r"C:\x;C:\X\;C:\y", "append", r"C:\a;C:\b;C:\x;C:\y"),
        (None, r"C:\t", "append", r"C:\t"),
        ("", r"C:\t", "remove", ""),
        (SYSTEM_PATH, r"%SYSTEMROOT%\System32", "append", SYSTEM_PATH),
    ],
)
def test_list_edits_are_by_entry_without_case(current, entries, mode, expected) -> None:
    assert edit_list(current, entries, mode) == expected


entry = st.text(st.sampled_from("abAB\\: "), min_size=1, max_size=6).filter(lambda e: e.strip())


@given(st.lists(entry, max_size=6), st.lists(entry, min_size=1, max_size=3))
def test_list_edits_are_idempotent(current: list[str], entries: list[str]) -> None:
    for mode in ("append", "prepend", "remove"):
        once = edit_list(";".join(current), ";".join(entries), mode)
        assert edit_list(once, ";".join(entries), mode) == once
        folded = [e.strip().rstrip("\\").casefold() or e.strip() for e in once.split(";") if e]
        for item in entries:
            key = item.strip().rstrip("\\").casefold() or item.strip()
            assert (key in folded) == (mode != "remove")


def test_a_value_referring_to_itself() -> None:
    assert references_itself("Path", r"%PATH%;C:\t")
    assert references_itself("path", r"C:\t;%Path%")
    assert not references_itself("Path", r"%PATHEXT%;%SystemRoot%")


def test_expansion_leaves_unknown_references_as_written() -> None:
    env = {"SYSTEMROOT": r"C:\Windows"}
    assert expand(r"%SystemRoot%\wx;%NOPE%;50%", env) == r"C:\Windows\wx;%NOPE%;50%"


def test_the_block_is_machine_then_user_with_path_joined() -> None:
    block = build_block(
        {"SystemRoot": r"C:\Windows", "Path": "stale", "USERPROFILE": r"C:\Users\u"},
        [("Path", SYSTEM_PATH, True), ("WX", r"%SystemRoot%\wx", True), ("A", "%B%", False)],
        [("Path", r"%USERPROFILE%\bin", True), ("WX", "user wins", False)],
    )
    assert block["Path"] == (
        r"C:\Windows\system32;C:\Windows;C:\Windows\System32\Wbem;C:\Users\u\bin"
    )
    assert block["WX"] == "user wins"
    assert block["A"] == "%B%", "a REG_SZ value is never expanded"


# -- the Windows platform over a registry ---------------------------------------------------------


@pytest.mark.usefixtures("environ")
def test_appending_to_path_keeps_system32_and_the_expand_type(reg: Registry, tmp_path: Path):
    p = Win(tmp_path, reg)
    out = env_step(p, tmp_path, name="Path", value=r"C:\tools", mode="append")
    assert out == "Path set for the machine"
    assert reg.keys[("HKLM", MACHINE_KEY)]["Path"] == (SYSTEM_PATH + r";C:\tools", 2)
    assert os.environ["PATH"] == (
        r"C:\Windows\system32;C:\Windows;C:\Windows\System32\Wbem;C:\tools;"
        r"C:\Windows\system32\config\systemprofile\AppData\Local\Microsoft\WindowsApps"
    )
    assert p.broadcasts == 1
    again = env_step(p, tmp_path, name="Path", value=r"c:\TOOLS\\", mode="append")
    assert again == "Path already set for the machine"
    assert p.broadcasts == 1
    env_step(p, tmp_path, name="Path", value=r"C:\Tools", mode="remove")
    assert reg.keys[("HKLM", MACHINE_KEY)]["Path"] == (SYSTEM_PATH, 2)


@pytest.mark.usefixtures("environ")
def test_a_machine_variable_reaches_later_steps_expanded(reg: Registry, tmp_path: Path):
    p = Win(tmp_path, reg)
    env_step(p, tmp_path, name="WX_MACHINE", value=r"%SystemRoot%\wx")
    assert reg.keys[("HKLM", MACHINE_KEY)]["WX_MACHINE"] == (r"%SystemRoot%\wx", 2)
    assert os.environ["WX_MACHINE"] == r"C:\Windows\wx"
    env_step(p, tmp_path, name="PLAIN", value="50% off")
    assert reg.keys[("HKLM", MACHINE_KEY)]["PLAIN"] == ("50% off", 2)
    env_step(p, tmp_path, name="WX_MACHINE", state="absent")
    assert "WX_MACHINE" not in os.environ
    assert "WX_MACHINE" not in reg.keys[("HKLM", MACHINE_KEY)]
    assert env_step(p, tmp_path, name="WX_MACHINE", state="absent").endswith(
        "already absent for the machine"
    )


@pytest.mark.usefixtures("environ")
def test_a_process_scope_value_stays_over_a_rebuilt_block(reg: Registry, tmp_path: Path):
    p = Win(tmp_path, reg)
    reg.keys[("HKLM", MACHINE_KEY)]["MODE"] = ("machine", 1)
    env_step(p, tmp_path, name="MODE", value="process", scope="process")
    env_step(p, tmp_path, name="OTHER", value="x")
    assert os.environ["MODE"] == "process"
    assert os.environ["OTHER"] == "x"


@pytest.mark.usefixtures("environ")
@pytest.mark.parametrize("value", [r"%Path%;C:\tools", r"C:\tools;%PATH%"])
def test_the_agent_refuses_a_value_naming_its_own_variable(
    reg: Registry, tmp_path: Path, value: str
) -> None:
    p = Win(tmp_path, reg)
    with pytest.raises(StepError, match=r"refers to %Path% itself.*env-self-reference"):
        env_step(p, tmp_path, name="Path", value=value)
    assert reg.keys[("HKLM", MACHINE_KEY)]["Path"] == (SYSTEM_PATH, 2)
    assert reg.writes == []


@pytest.mark.usefixtures("environ")
def test_list_modes_on_posix_and_for_the_process(tmp_path: Path) -> None:
    p = PosixPlatform(tmp_path, {})
    env_step(p, tmp_path, name="PATH", value="/opt/t", mode="prepend", scope="process")
    assert os.environ["PATH"].startswith("/opt/t:")
    env_step(p, tmp_path, name="TOOLS", value="/a:/b", mode="append")
    env_step(p, tmp_path, name="TOOLS", value="/b:/c", mode="append")
    assert os.environ["TOOLS"] == "/a:/b:/c"
    assert '"TOOLS": "/a:/b:/c"' in (tmp_path / "environment.json").read_text()
    with pytest.raises(StepError, match="needs state: present"):
        env_step(p, tmp_path, name="TOOLS", state="absent", mode="remove")
