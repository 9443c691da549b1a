"""#19 under the real Windows CPython in Wine: a refused reboot, a timed-out step's
grandchildren, system programs by absolute path, the environment later steps inherit, and cmd
scripts in the OEM code page. Each test failed on the code before the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.windows.bench import Prefix

PYTHON = "C:\\Python313\\python.exe"


def setup_complete(prefix: Prefix) -> None:
    """Windows Setup is done, as the agent checks before any step (winready.py)."""
    key = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State"
    prefix.wine("reg.exe", "add", key, "/v", "ImageState", "/t", "REG_SZ", "/d",
                "IMAGE_STATE_COMPLETE", "/f").check(0)  # fmt: skip


def spec(steps: list[dict[str, Any]], **setup: Any) -> str:
    data = {
        "version": 1,
        "image": {"name": "issue19"},
        "setup": {"administrator": {"password": {"env": "VMPREP_ADMIN_PASSWORD"}}, **setup},
        "agent": {"runtime": {"python": PYTHON}, "steps": steps},
    }
    return yaml.safe_dump(data, allow_unicode=True)


def status(prefix: Prefix, config: str) -> dict[str, Any]:
    result = prefix.agent("status", "--config", config, "--format", "json")
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def env_of(record: dict[str, Any]) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in record["env"] if "=" in item[1:])
    return {name.upper(): value for name, value in pairs}


@pytest.mark.slow
def test_a_refused_reboot_is_retried_then_reported_failed(prefix: Prefix) -> None:
    r = prefix.render(spec([{"id": "rb", "reboot": {"reason": "bench"}}]))
    config = prefix.host(r.config)
    agent_json = json.loads(config.read_text())
    agent_json.setdefault("platform_options", {})["reboot_retry_waits"] = [0, 0]
    config.write_text(json.dumps(agent_json))
    prefix.stub("shutdown.exe", [1190])  # ERROR_SHUTDOWN_IS_SCHEDULED
    setup_complete(prefix)
    prefix.run_agent().check(1)
    assert len(prefix.records("shutdown.exe")) == 3
    state = status(prefix, r.config)
    assert state["state"] == "failed"
    assert state["error"]["code"] == "reboot_failed"
    waited = prefix.agent("status", "--wait", "--timeout", "60s", "--config", r.config)
    assert waited.returncode == 1
    assert "waiting for a reboot" not in waited.stdout


CHILD = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, r'C:\\out\\grandchild.py'])\n"
    "time.sleep(120)\n"
)
GRANDCHILD = "import time\ntime.sleep(8)\nopen(r'C:\\out\\alive', 'w').write('still here')\n"


@pytest.mark.slow
def test_a_timeout_kills_the_grandchildren_too(prefix: Prefix) -> None:
    r = prefix.render(
        spec(
            [
                {"id": "c", "file": {"path": "C:\\out\\child.py", "content": CHILD}},
                {"id": "g", "file": {"path": "C:\\out\\grandchild.py", "content": GRANDCHILD}},
                {"id": "t", "exec": {"argv": [PYTHON, "C:\\out\\child.py"]}, "timeout": "4s"},
            ]
        )
    )
    setup_complete(prefix)
    prefix.run_agent().check(1)
    step = status(prefix, r.config)["steps"][2]
    assert step["status"] == "failed"
    prefix.python("-c", "import time; time.sleep(12)").check(0)
    assert not prefix.exists("C:\\out\\alive"), "the grandchild outlived the step's timeout"


@pytest.mark.slow
def test_system_programs_by_path_and_later_steps_see_the_rebuilt_environment(
    prefix: Prefix,
) -> None:
    prefix.render(
        spec(
            [
                {"id": "p", "env": {"name": "Path", "value": "C:\\tools", "mode": "append"}},
                {"id": "x", "env": {"name": "WX_MACHINE", "value": "%SystemRoot%\\wx"}},
                {"id": "ps", "powershell": "exit 0"},
                {"id": "svc", "service": {"name": "W3SVC", "state": "running"}},
            ]
        )
    )
    setup_complete(prefix)
    prefix.run_agent().check(0)
    system32 = "C:\\windows\\System32\\"
    (ps,) = prefix.records("powershell.exe")
    assert ps["cmdline"].startswith(system32 + "WindowsPowerShell\\v1.0\\powershell.exe ")
    assert prefix.records("sc.exe")[0]["cmdline"].startswith(system32 + "sc.exe ")
    env = env_of(ps)
    assert env["WX_MACHINE"].lower() == "c:\\windows\\wx"
    entries = [e.lower() for e in env["PATH"].split(";")]
    assert "c:\\windows\\system32" in entries
    assert entries.index("c:\\tools") > entries.index("c:\\windows\\system32")
    key = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment"
    kind, value = prefix.reg_query(key, "Path")["Path"]
    assert kind == "REG_EXPAND_SZ"
    assert value.lower().endswith(";c:\\tools")
    assert "%systemroot%" in value.lower() or "c:\\windows\\system32" in value.lower()


# Only code page 437 here: Wine takes the code page from the host's locale, and a host
# without ja_JP (or de_DE...) installed cannot hold such file names; the other code pages
# are covered by tests/agent/core/test_cmd_codepage.py.
@pytest.mark.slow
def test_a_cmd_script_is_read_right_in_the_oem_code_page(prefix: Prefix) -> None:
    prefix.render(spec([{"id": "md", "cmd": 'mkdir "C:\\out\\dir-ünï"'}]))
    setup_complete(prefix)
    prefix.run_agent().check(0)
    names = [p.name for p in prefix.find("C:\\out").iterdir()]
    assert names == ["dir-ünï"]


@pytest.mark.slow
def test_a_cmd_script_with_characters_the_code_page_lacks_is_refused(prefix: Prefix) -> None:
    # The spec says Japanese, the machine runs code page 437: the agent refuses, nothing mangled.
    r = prefix.render(spec([{"id": "md", "cmd": 'mkdir "C:\\out\\dir-日本"'}], locale="ja-JP"))
    setup_complete(prefix)
    prefix.run_agent().check(1)
    state = status(prefix, r.config)
    assert "code page 437" in state["error"]["message"], state
    assert not prefix.find("C:\\out").exists()
