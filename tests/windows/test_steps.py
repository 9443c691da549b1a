"""Steps whose Windows form runs an executable, against the recording stubs: the command line
STRING each program received (as GetCommandLineW returns it), secrets only in the child's
environment and never in any command line; registry steps through the real winreg (read back
with `reg query`); file steps on Windows paths (issue #10, groups 3 and 4)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.windows.bench import Prefix, spec, split_windows

PASSWORD = "Bench-S3cret-pw!"  # a secret baked by render from the environment
TOKEN = "bench-token-77"


def args_of(cmdline: str) -> str:
    """The command line after the program name, exactly as received."""
    name = split_windows(cmdline)[0]
    rest = cmdline[len(f'"{name}"') :] if cmdline.startswith('"') else cmdline[len(name) :]
    return rest.removeprefix(" ")


def script_of(cmdline: str) -> str:
    argv = split_windows(cmdline)
    return base64.b64decode(argv[argv.index("-EncodedCommand") + 1]).decode("utf-16-le")


def run_to(prefix: Prefix, steps: str, expect: int = 0, env: dict[str, str] | None = None):
    r = prefix.render(spec("bench-steps", steps), env=env)
    result = prefix.run_agent()
    assert result.returncode == expect, result.output
    status = prefix.agent("status", "--config", r.config, "--format", "json")
    return r, json.loads(status.stdout)


@pytest.mark.slow
def test_executables_receive_these_command_lines_and_no_secret(prefix: Prefix) -> None:
    steps = r"""
    - id: feature
      windows_feature: {names: [Web-Server, Web-Mgmt-Service], include_management_tools: true}
    - id: svc
      service: {name: W3SVC, start_type: delayed, state: running}
    - id: user
      local_user:
        name: svc-app
        password: {env: BENCH_USER_PW}
        groups: [Users]
        full_name: "App O'Service"
    - id: exec
      exec:
        argv: ['C:\windows\system32\net.exe', 'a b', 'say "hi"', 'C:\Trail\', '', 'x\\"y']
        env: {BENCH_TOKEN: {env: BENCH_TOKEN}}
    - id: ps
      powershell: "Write-Output 'ünï'; exit 0"
"""
    _, state = run_to(prefix, steps, env={"BENCH_USER_PW": PASSWORD, "BENCH_TOKEN": TOKEN})
    assert state["state"] == "done", state
    records = [r for r in prefix.records() if r["exe"] != "schtasks.exe"]  # the startup task
    assert [r["exe"] for r in records] == [
        "powershell.exe",
        "sc.exe",
        "sc.exe",
        "powershell.exe",
        "net.exe",
        "powershell.exe",
    ]
    ps_flags = "-NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "
    feature, config, start, user, net, ps = (r["cmdline"] for r in records)
    assert args_of(feature).startswith(ps_flags)
    assert "Install-WindowsFeature -Name @('Web-Server','Web-Mgmt-Service')" in script_of(feature)
    assert "-IncludeManagementTools" in script_of(feature)
    assert args_of(config) == "config W3SVC start= delayed-auto"
    assert args_of(start) == "start W3SVC"
    assert "-FullName 'App O''Service'" in script_of(user)
    # the Microsoft C runtime's quoting: what net.exe's argv parser turns back into the list
    assert args_of(net) == r'"a b" "say \"hi\"" C:\Trail\ "" x\\\\\"y'
    assert split_windows(net)[1:] == ["a b", 'say "hi"', "C:\\Trail\\", "", r'x\\"y']
    assert script_of(ps) == "Write-Output 'ünï'; exit 0"

    user_env = dict(e.split("=", 1) for e in records[3]["env"] if "=" in e[1:])
    assert user_env["VMPREP_USER_PASSWORD"] == PASSWORD  # only in that child's environment
    net_env = dict(e.split("=", 1) for e in records[4]["env"] if "=" in e[1:])
    assert net_env["BENCH_TOKEN"] == TOKEN
    for record in records:
        decoded = script_of(record["cmdline"]) if "-EncodedCommand" in record["cmdline"] else ""
        for secret in (PASSWORD, TOKEN):
            assert secret not in record["cmdline"]
            assert secret not in decoded
    assert all(
        "VMPREP_USER_PASSWORD" not in e for r in records if r is not records[3] for e in r["env"]
    )


@pytest.mark.slow
def test_registry_steps_write_what_reg_query_reads(prefix: Prefix) -> None:
    steps = r"""
    - id: sz
      registry: {key: 'HKLM\SOFTWARE\Bench\Ünï Key', name: Site, value: 'contoso "web"'}
    - id: expand
      registry: {key: 'HKLM\SOFTWARE\Bench', name: Home, type: REG_EXPAND_SZ, value: '%SystemRoot%\bench'}
    - id: dword
      registry: {key: 'HKLM\SOFTWARE\Bench', name: Level, type: REG_DWORD, value: 4294967295}
    - id: qword
      registry: {key: 'HKLM\SOFTWARE\Bench', name: Big, type: REG_QWORD, value: 4294967296}
    - id: multi
      registry: {key: 'HKLM\SOFTWARE\Bench', name: List, type: REG_MULTI_SZ, value: [one, two words]}
    - id: binary
      registry: {key: 'HKLM\SOFTWARE\Bench', name: Blob, type: REG_BINARY, value: 00ff10}
    - id: default
      registry: {key: 'HKLM\SOFTWARE\Bench', name: '', value: the default}
    - id: gone
      registry: {key: 'HKLM\SOFTWARE\Bench', name: Never, state: absent}
"""
    _, state = run_to(prefix, steps)
    assert state["state"] == "done", state
    values = prefix.reg_query("HKLM\\SOFTWARE\\Bench")
    assert values["Home"] == ("REG_EXPAND_SZ", "%SystemRoot%\\bench")
    assert values["Level"] == ("REG_DWORD", "0xffffffff")
    assert values["Big"][0] == "REG_QWORD"  # Wine's reg.exe prints "(null)" for a QWORD's data
    read = "import winreg as w; k = w.OpenKey(w.HKEY_LOCAL_MACHINE, r'SOFTWARE\\Bench'); "
    read += "print(w.QueryValueEx(k, 'Big'))"
    big = prefix.python("-I", "-S", "-c", read).check(0).stdout.strip()
    assert big == "(4294967296, 11)"  # 11: REG_QWORD
    assert values["List"] == ("REG_MULTI_SZ", "one\\0two words")
    assert values["Blob"] == ("REG_BINARY", "00FF10")
    assert values["(Default)"] == ("REG_SZ", "the default")
    assert "Never" not in values
    assert prefix.reg_query("HKLM\\SOFTWARE\\Bench\\Ünï Key") == {
        "Site": ("REG_SZ", 'contoso "web"')
    }
    # the 64-bit view (KEY_WOW64_64KEY): nothing went to the 32-bit registry
    assert prefix.reg_query("HKLM\\SOFTWARE\\Wow6432Node\\Bench") == {}


@pytest.mark.slow
def test_file_steps_write_windows_paths(prefix: Prefix) -> None:
    steps = r"""
    - id: text
      file: {path: 'C:\Bench Dir\sub\ünï.txt', content: "line one\nline two"}
    - id: binary
      file: {path: 'C:\Bench Dir\blob.bin', content: AAEC/w==, encoding: base64}
    - id: keep
      file: {path: 'C:\Bench Dir\keep.txt', content: new, overwrite: false}
    - id: mixed-case
      file: {path: 'c:\bench dir\SUB\second.txt', content: two}
"""
    prefix.write("C:\\Bench Dir\\keep.txt", "old")
    _, state = run_to(prefix, steps)
    assert state["state"] == "done", state
    assert prefix.read_bytes("C:\\Bench Dir\\sub\\ünï.txt") == b"line one\nline two"
    assert prefix.read_bytes("C:\\Bench Dir\\blob.bin") == b"\x00\x01\x02\xff"
    assert prefix.read_text("C:\\Bench Dir\\keep.txt") == "old"
    # Windows paths are case-insensitive: the same directory, not a second one
    assert sorted(p.name for p in prefix.host("C:\\Bench Dir").iterdir()) == [
        "blob.bin",
        "keep.txt",
        "sub",
    ]
    assert prefix.read_text("C:\\Bench Dir\\sub\\second.txt") == "two"
