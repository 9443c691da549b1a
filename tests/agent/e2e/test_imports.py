"""The agent imports only the standard library (and its own modules) — on every path."""

from __future__ import annotations

import json
import subprocess
import sys

THIRD_PARTY = {
    "click",
    "rich",
    "yaml",
    "jsonschema",
    "cryptography",
    "ecdsa",
    "six",
    "starlette",
    "uvicorn",
    "httpx",
}

PROBE = """
import json, sys
before = set(sys.modules)
import vmprep.agent.cli, vmprep.agent.run, vmprep.agent.status, vmprep.agent.engine
import vmprep.agent.platform.posix, vmprep.agent.platform.windows
import vmprep.agent.steps.process, vmprep.agent.steps.files, vmprep.agent.steps.system
import vmprep.agent.steps.control
loaded = sorted(m for m in set(sys.modules) - before)
print(json.dumps(loaded))
"""


def test_importing_the_agent_pulls_in_no_third_party_module() -> None:
    # Run in this venv, where click, rich, yaml, jsonschema and cryptography are importable.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    tops = {name.split(".")[0] for name in loaded}
    assert not tops & THIRD_PARTY, tops & THIRD_PARTY
    outside = {t for t in tops if t not in sys.stdlib_module_names and t != "vmprep"}
    assert not outside, outside
    ours = {n for n in loaded if n.startswith("vmprep")}
    assert all(n == "vmprep" or n.startswith("vmprep.agent") for n in ours), ours


def test_the_run_path_without_phone_home_loads_no_network_or_crypto_module(tmp_path) -> None:
    probe = (
        "import sys, json; from pathlib import Path; from vmprep.agent.cli import main\n"
        f"code = main(['run', '--config', {str(tmp_path / 'agent.json')!r}])\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    (tmp_path / "agent.json").write_text(json.dumps({"identity": ["mac"], "steps": []}))
    sys_net = tmp_path / "sys/sys/class/net/eth0"
    sys_net.mkdir(parents=True)
    (sys_net / "address").write_text("00:15:5d:01:02:03\n")
    cfg = json.loads((tmp_path / "agent.json").read_text())
    cfg["platform_options"] = {"sys_root": str(tmp_path / "sys")}
    (tmp_path / "agent.json").write_text(json.dumps(cfg))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert not {m.split(".")[0] for m in loaded} & THIRD_PARTY
    assert "vmprep.agent.verify" not in loaded
    assert "vmprep.agent.fetch" not in loaded
