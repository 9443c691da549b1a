"""The agent imports only the standard library (and its own modules) — on every path."""

from __future__ import annotations

import json
import os
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
import vmprep.agent.platform.posix, vmprep.agent.platform.winplatform
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
    assert all(n == "vmprep" or n.startswith(("vmprep.agent", "vmprep.protocol")) for n in ours)


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


FIRST_STEP_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from vmprep.agent import cli, run
seen = []
first_report = run.Run._first_report
def spy(self):
    if not seen:
        seen.append(sorted(sys.modules))
    first_report(self)
run.Run._first_report = spy
code = cli.main(["run", "--config", sys.argv[2], "--state-dir", sys.argv[3]])
print(json.dumps([code, seen[0]]))
"""
# Modules that must not load before the first step starts (start-up time): the HTTP stack
# (unless an IMDS identity source is tried), the report worker and what it pulls in.
NOT_ON_THE_BOOT_PATH = {
    "http.client",
    "ssl",
    "email.utils",
    "email.parser",
    "uuid",
    "dataclasses",
    "logging",
    "queue",
    "tempfile",
    "typing",
    "csv",
    "argparse",
    "vmprep.agent.http",
    "vmprep.agent.fetch",
    "vmprep.agent.reportsender",
    "vmprep.agent.reportworker",
    "vmprep.agent.retry",
    "vmprep.agent.verify",
    "vmprep.agent.document",
    "vmprep.agent.status",
}


def test_the_path_to_the_first_step_loads_no_network_or_report_module(machine, service) -> None:
    m = machine([{"id": "first", "exec": {"argv": ["/bin/true"]}}], phone_home=service.phone_home())
    m._argv()  # writes agent.json
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            FIRST_STEP_PROBE,
            str(m.pyz),
            str(m.root / "agent.json"),
            str(m.state_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    code, loaded = json.loads(out.stdout.splitlines()[-1])
    assert code == 0, out.stderr
    assert "vmprep.agent.engine" in loaded  # the probe saw the boot path
    assert not NOT_ON_THE_BOOT_PATH & set(loaded), NOT_ON_THE_BOOT_PATH & set(loaded)
    assert service.reports  # the reports still went out, after the first step started


COMPILE_PROBE = """
import builtins, collections, json, runpy, sys
compiled = collections.Counter()
real = builtins.compile
def spy(source, name, *args, **kwargs):
    compiled[name] += 1
    return real(source, name, *args, **kwargs)
builtins.compile = spy
pyz = sys.argv[1]
sys.argv = [pyz, "status", "--state-dir", sys.argv[2], "--format", "json"]
try:
    runpy.run_path(pyz, run_name="__main__")
except SystemExit:
    pass
mods = {n: getattr(m, "__file__", None) for n, m in sys.modules.items() if n.startswith("vmprep")}
print(json.dumps([compiled, mods]), file=sys.stderr)
"""


def test_the_payload_compiles_each_module_once(agent_pyz, tmp_path) -> None:
    """zipimport's get_filename compiles a module only to name its file; __main__.py swaps in
    an importer that does not, so each source module is compiled once per start."""
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", COMPILE_PROBE, str(agent_pyz), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    compiled, mods = json.loads(out.stderr.splitlines()[-1])
    ours = {name: n for name, n in compiled.items() if "/vmprep/" in name}
    assert len(ours) >= 4, compiled  # cli, status, ... were loaded from the archive
    assert set(ours.values()) == {1}, ours
    sep = os.sep
    assert mods["vmprep.agent.cli"] == f"{agent_pyz}{sep}vmprep{sep}agent{sep}cli.py"
    assert mods["vmprep.agent"] == f"{agent_pyz}{sep}vmprep{sep}agent{sep}__init__.py"
