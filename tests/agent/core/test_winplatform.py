"""Windows actions, asserted by the exact argv (and winreg calls) each one builds."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from vmprep.agent.logs import Log
from vmprep.agent.platform import winplatform as w
from vmprep.agent.platform.base import ProcResult
from vmprep.agent.secrets import Vault
from vmprep.agent.steps import StepContext, runner

PASSWORD = "P@ss'w0rd; Remove-Item C:\\ -Recurse"


def decode(argv: list[str]) -> str:
    assert argv[:6] == [
        "powershell.exe",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-EncodedCommand",
    ]
    return base64.b64decode(argv[6]).decode("utf-16-le")


class SetupDone:
    """A registry without Setup's state values: Windows Setup counts as finished."""

    HKEY_LOCAL_MACHINE = "HKLM"
    KEY_READ = 0x20019
    KEY_WOW64_64KEY = 0x100

    def OpenKeyEx(self, hive: str, sub: str, reserved: int, access: int) -> Any:
        raise FileNotFoundError(sub)


class Recorder(w.WindowsPlatform):
    """The Windows platform with processes recorded instead of run."""

    def __init__(
        self,
        tmp: Path,
        image_os: str = "windows-server-2022",
        codes: list[int] | None = None,
        winreg: Any = None,
    ) -> None:
        super().__init__(tmp, {}, image_os, winreg=winreg if winreg is not None else SetupDone())
        self.calls: list[tuple[Any, dict[str, str] | None]] = []
        self.codes = list(codes or [])
        self.task_xml = b""

    def run(self, argv, *, timeout=None, env=None, cwd=None, stdin=None) -> ProcResult:  # type: ignore[override]
        command = argv if isinstance(argv, str) else list(argv)  # a string: msiexec's own line
        self.calls.append((command, None if env is None else dict(env)))
        if command[:3] == ["schtasks.exe", "/Create", "/XML"]:
            self.task_xml = Path(command[3]).read_bytes()
        return ProcResult(self.codes.pop(0) if self.codes else 0, "")


def ctx_for(
    platform: w.WindowsPlatform, tmp: Path, secrets: dict[str, str] | None = None
) -> StepContext:
    return StepContext(
        platform=platform,
        vault=Vault(secrets or {}),
        log=Log(None, echo=None),
        state_dir=tmp,
        variables={"site": "web"},
        names={"instance_id": "i-1", "role": "web"},
    )


def test_powershell_argv_is_utf16le_base64() -> None:
    script = "Write-Host 'héllo' \"x\" $env:X"
    argv = w.powershell_argv(script)
    assert decode(argv) == script
    assert argv[6] == base64.b64encode(script.encode("utf-16-le")).decode()


def test_msi_is_one_command_line_string_and_3010_reboots(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[3010])
    ctx = ctx_for(p, tmp_path, {"k": "v"})
    ctx.step_key = "baked-tools"
    out = runner("msi")(
        {"path": "C:\\t\\tools.msi", "properties": {"KEY": {"secret": "k"}, "DIR": "C:\\a b\\"}},
        ctx,
    )
    assert (out.ok, out.reboot) == (True, "continue")
    log = tmp_path / "logs" / "msi-baked-tools.log"
    assert p.calls[0][0] == (
        f'"C:\\Windows\\System32\\msiexec.exe" /i "C:\\t\\tools.msi" /qn /norestart /lwe "{log}" KEY="v" DIR="C:\\a b\\"'
    )


@pytest.mark.parametrize(
    ("image_os", "expected"),
    [
        (
            "windows-server-2022",
            "$r = Install-WindowsFeature -Name @('Web-Server','Web-Asp''Net') -IncludeManagementTools",
        ),
        (
            "windows-11",
            "$r = Enable-WindowsOptionalFeature -Online -FeatureName @('Web-Server','Web-Asp''Net') -All -NoRestart",
        ),
    ],
)
def test_windows_feature_server_vs_client(tmp_path: Path, image_os: str, expected: str) -> None:
    p = Recorder(tmp_path, image_os)
    body = {"names": ["Web-Server", "Web-Asp'Net"], "include_management_tools": True}
    out = runner("windows_feature")(body, ctx_for(p, tmp_path))
    assert out.ok
    script = decode(p.calls[0][0])
    assert expected in script.splitlines()
    assert "exit 3010" in script


def test_feature_removal_scripts() -> None:
    assert "Uninstall-WindowsFeature -Name @('A')" in w.feature_script(["A"], "absent", True, True)
    assert "-IncludeManagementTools" not in w.feature_script(["A"], "absent", True, True)
    assert (
        "Disable-WindowsOptionalFeature -Online -FeatureName @('A') -NoRestart"
        in w.feature_script(["A"], "absent", False, False)
    )


def test_ps_quote_doubles_every_single_quote_kind() -> None:
    assert w.ps_quote("a'b\u2019c") == "'a''b\u2019\u2019c'"


def test_rename_computer_fills_placeholders_and_reboots(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[3010])
    out = runner("rename_computer")({"name": "WEB-{site}"}, ctx_for(p, tmp_path))
    assert (out.ok, out.reboot) == (True, "continue")
    script = decode(p.calls[0][0])
    assert "Rename-Computer -NewName 'WEB-web' -Force" in script
    assert "if ($env:COMPUTERNAME -eq 'WEB-web') { exit 0 }" in script


def test_join_domain_password_only_in_the_childs_environment(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[3010])
    vault = {"join_user": "CORP\\joiner", "join_password": PASSWORD}
    body = {"domain": "corp.example.com", "ou": "OU=Web,DC=corp", "credentials": "remote"}
    out = runner("join_domain")(body, ctx_for(p, tmp_path, vault))
    assert (out.ok, out.reboot) == (True, "continue")
    argv, env = p.calls[0]
    assert all(PASSWORD not in part for part in argv)
    assert PASSWORD not in decode(argv)
    assert env == {"VMPREP_JOIN_USER": "CORP\\joiner", "VMPREP_JOIN_PASSWORD": PASSWORD}
    script = decode(argv)
    assert (
        "Add-Computer -DomainName 'corp.example.com' -OUPath 'OU=Web,DC=corp' -Credential $cred -Force"
        in script
    )
    assert "ConvertTo-SecureString $env:VMPREP_JOIN_PASSWORD -AsPlainText -Force" in script


def test_join_domain_with_explicit_credentials(tmp_path: Path) -> None:
    p = Recorder(tmp_path)
    body = {"domain": "d", "credentials": {"user": "u", "password": {"env": "JP"}}}
    runner("join_domain")(body, ctx_for(p, tmp_path, {"env:JP": PASSWORD}))
    argv, env = p.calls[0]
    assert env == {"VMPREP_JOIN_USER": "u", "VMPREP_JOIN_PASSWORD": PASSWORD}
    assert "-OUPath" not in decode(argv)


def test_local_user(tmp_path: Path) -> None:
    p = Recorder(tmp_path)
    body = {
        "name": "deploy",
        "password": {"secret": "pw"},
        "groups": ["Administrators"],
        "password_never_expires": True,
    }
    runner("local_user")(body, ctx_for(p, tmp_path, {"pw": PASSWORD}))
    argv, env = p.calls[0]
    assert env == {"VMPREP_USER_PASSWORD": PASSWORD}
    script = decode(argv)
    assert PASSWORD not in script
    assert (
        "New-LocalUser -Name 'deploy' -Password $pass -PasswordNeverExpires | Out-Null }" in script
    )
    assert "Add-LocalGroupMember -Group 'Administrators' -Member 'deploy'" in script
    p2 = Recorder(tmp_path)
    runner("local_user")({"name": "old", "state": "absent"}, ctx_for(p2, tmp_path))
    assert "Remove-LocalUser -Name 'old'" in decode(p2.calls[0][0])
    assert p2.calls[0][1] is None


def test_service_argvs_and_already_in_state(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[0, 1056])
    out = runner("service")(
        {"name": "W3SVC", "start_type": "delayed", "state": "running"}, ctx_for(p, tmp_path)
    )
    assert out.ok
    assert [c[0] for c in p.calls] == [
        ["sc.exe", "config", "W3SVC", "start=", "delayed-auto"],
        ["sc.exe", "start", "W3SVC"],
    ]
    assert w.service_argvs({"name": "S", "start_type": "disabled", "state": "stopped"}) == [
        ["sc.exe", "config", "S", "start=", "disabled"],
        ["sc.exe", "stop", "S"],
    ]
    p = Recorder(tmp_path, codes=[5])
    assert not runner("service")({"name": "S", "state": "running"}, ctx_for(p, tmp_path)).ok


def test_reboot_startup_task_and_kill_argvs(tmp_path: Path) -> None:
    assert w.reboot_argv("vmprep: step x") == [
        "shutdown.exe",
        "/r",
        "/t",
        "5",
        "/c",
        "vmprep: step x",
    ]
    assert w.create_task_argv("C:\\t\\task.xml") == [
        "schtasks.exe",
        "/Create",
        "/XML",
        "C:\\t\\task.xml",
        "/TN",
        "vmprep-agent",
        "/F",
    ]
    assert w.remove_task_argv() == ["schtasks.exe", "/Delete", "/TN", "vmprep-agent", "/F"]
    assert w.kill_tree_argv(1234) == ["taskkill.exe", "/PID", "1234", "/T", "/F"]
    p = Recorder(tmp_path)
    p.reboot("r")
    p.remove_startup_task()
    assert [c[0][0] for c in p.calls] == ["shutdown.exe", "schtasks.exe"]


def test_cmd_runs_a_script_file_through_cmd_exe(tmp_path: Path) -> None:
    p = Recorder(tmp_path)
    out = runner("cmd")("echo hi", ctx_for(p, tmp_path))
    assert out.ok
    argv = p.calls[0][0]
    assert argv[:4] == ["cmd.exe", "/d", "/q", "/c"]
    assert argv[4].endswith(".cmd")
    assert not Path(argv[4]).exists()  # removed after the run


class FakeWinreg:
    HKEY_LOCAL_MACHINE = "HKLM"
    HKEY_CURRENT_USER = "HKCU"
    KEY_WRITE = 0x20006
    KEY_WOW64_64KEY = 0x100
    REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_QWORD, REG_MULTI_SZ, REG_BINARY = 1, 2, 4, 11, 7, 3

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def CreateKeyEx(self, hive, sub, reserved, access):
        self.calls.append(("CreateKeyEx", hive, sub, access))
        return self

    def OpenKeyEx(self, hive, sub, reserved, access):
        self.calls.append(("OpenKeyEx", hive, sub, access))
        return self

    def SetValueEx(self, key, name, reserved, kind, value):
        self.calls.append(("SetValueEx", name, kind, value))

    def DeleteValue(self, key, name):
        self.calls.append(("DeleteValue", name))
        raise FileNotFoundError(name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"type": "REG_DWORD", "value": 1}, ("SetValueEx", "Role", 4, 1)),
        ({"type": "REG_QWORD", "value": "42"}, ("SetValueEx", "Role", 11, 42)),
        ({"value": "web"}, ("SetValueEx", "Role", 1, "web")),
        ({"type": "REG_MULTI_SZ", "value": ["a", "b"]}, ("SetValueEx", "Role", 7, ["a", "b"])),
        ({"type": "REG_BINARY", "value": "00ff"}, ("SetValueEx", "Role", 3, b"\x00\xff")),
        ({"type": "REG_SZ", "value": {"secret": "s"}}, ("SetValueEx", "Role", 1, "sv")),
    ],
)
def test_registry_through_winreg(tmp_path: Path, body, expected) -> None:
    reg = FakeWinreg()
    p = Recorder(tmp_path, winreg=reg)
    out = runner("registry")(
        {"key": "HKLM\\SOFTWARE\\Contoso", "name": "Role", **body},
        ctx_for(p, tmp_path, {"s": "sv"}),
    )
    assert out.ok
    assert reg.calls == [("CreateKeyEx", "HKLM", "SOFTWARE\\Contoso", 0x20106), expected]


def test_registry_bad_values_and_removal(tmp_path: Path) -> None:
    reg = FakeWinreg()
    p = Recorder(tmp_path, winreg=reg)
    ctx = ctx_for(p, tmp_path)
    with pytest.raises(Exception, match="does not fit REG_DWORD"):
        runner("registry")({"key": "HKLM\\S", "name": "n", "type": "REG_DWORD", "value": -1}, ctx)
    out = runner("registry")({"key": "HKCU\\S\\T", "name": "n", "state": "absent"}, ctx)
    assert out.ok
    assert "already absent" in out.output
    assert reg.calls[-2:] == [("OpenKeyEx", "HKCU", "S\\T", 0x20106), ("DeleteValue", "n")]


def test_boot_identity_tolerates_jitter_not_reboots(tmp_path: Path) -> None:
    p = Recorder(tmp_path)
    assert p.same_boot("1800000000", "1800000003")
    assert not p.same_boot("1800000000", "1800000060")
    assert not p.same_boot(None, "1800000000")
    assert not p.same_boot("garbage", "1800000000")


def test_long_powershell_scripts_go_through_a_file(tmp_path: Path) -> None:
    seen: list[bytes] = []

    class Peek(Recorder):
        def run(self, argv, **kwargs) -> ProcResult:  # type: ignore[override]
            if argv[-2] == "-File":
                seen.append(Path(argv[-1]).read_bytes())
            return super().run(argv, **kwargs)

    p = Peek(tmp_path)
    short = "Write-Host 'é'"
    long = "Write-Host 'x'\n" * 2000
    assert runner("powershell")(short, ctx_for(p, tmp_path)).ok
    assert runner("powershell")(long, ctx_for(p, tmp_path)).ok
    assert decode(p.calls[0][0]) == short
    argv = p.calls[1][0]
    assert argv[:6] == [
        "powershell.exe",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-File",
    ]
    assert argv[6].endswith(".ps1")
    assert not Path(argv[6]).exists()
    assert seen == [b"\xef\xbb\xbf" + long.encode()]


def test_run_keeps_a_registered_startup_task_and_registers_a_missing_one(tmp_path: Path) -> None:
    config = tmp_path / "agent.json"
    there = Recorder(tmp_path, codes=[0])
    there.install_startup_task(config, replace=False)
    assert [argv for argv, _ in there.calls] == [["schtasks.exe", "/Query", "/TN", "vmprep-agent"]]
    missing = Recorder(tmp_path, codes=[1, 0])
    missing.install_startup_task(config, replace=False)
    assert [argv[:2] for argv, _ in missing.calls] == [
        ["schtasks.exe", "/Query"],
        ["schtasks.exe", "/Create"],
    ]
    launch = Recorder(tmp_path)
    launch.install_startup_task(config)  # `launch` always writes the current definition
    assert [argv[:2] for argv, _ in launch.calls] == [["schtasks.exe", "/Create"]]


def test_the_startup_task_starts_agent_json_s_interpreter_when_it_exists(tmp_path: Path) -> None:
    """A bundled runtime: SetupComplete.cmd and the task run `<install_dir>\\python\\python.exe`
    (agent.json's `runtime.python`), whatever interpreter happens to run `launch`."""
    import sys

    bundled = tmp_path / "python" / "python.exe"
    bundled.parent.mkdir()
    bundled.write_bytes(b"MZ")
    config = tmp_path / "agent.json"
    p = Recorder(tmp_path)
    p.use_interpreter(str(bundled))
    assert p.agent_argv(config)[0] == str(bundled)
    p.install_startup_task(config)
    xml = (tmp_path / w.TASK_XML).read_bytes().decode("utf-16")
    assert f"<Command>{bundled}</Command>" in xml
    assert "run --config" in xml
    p.use_interpreter(str(tmp_path / "gone" / "python.exe"))  # not on this machine
    assert p.agent_argv(config)[0] == sys.executable
    p.use_interpreter(None)
    assert p.agent_argv(config)[0] == sys.executable


def test_agent_json_names_the_interpreter_for_the_task(tmp_path: Path) -> None:
    import json

    from vmprep.agent.config import ConfigError, load_config

    path = tmp_path / "agent.json"
    path.write_text(
        json.dumps({"runtime": {"python": "C:\\vm\\python\\python.exe", "bundled": True}})
    )
    assert load_config(path).python == "C:\\vm\\python\\python.exe"
    path.write_text("{}")
    assert load_config(path).python is None  # agent.json from before the runtime key
    path.write_text(json.dumps({"runtime": {"python": 3}}))
    with pytest.raises(ConfigError, match='runtime: expected an object with "python"'):
        load_config(path)
