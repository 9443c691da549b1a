"""The agent's Python floor (3.8, vmprep/protocol/floor.py) on the Windows CPython it names: the
official embeddable CPython 3.8 runs `--version` and a run of several step kinds to `done`;
an older interpreter is refused with one line and exit 5 before any of the agent's code runs
(by construction: no older embeddable CPython is published, so 3.8 plays one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.windows.bench import Prefix
from vmprep import __version__
from vmprep.protocol.floor import TOO_OLD

PY38 = "C:\\Python38\\python.exe"

SPEC = r"""
version: 1
image: {name: floor}
setup:
  timezone: UTC
  administrator: {password: {env: VMPREP_ADMIN_PASSWORD}}
agent:
  runtime: {python: 'C:\Python38\python.exe'}
  steps:
    - id: reg
      registry: {key: 'HKLM\SOFTWARE\Floor', name: Level, type: REG_DWORD, value: 38}
    - id: file
      file: {path: 'C:\Floor\note.txt', content: "three-eight"}
    - id: cmd
      cmd: 'echo cmd-ran> C:\Floor\cmd.txt'
    - id: exec
      exec: {argv: ['C:\windows\system32\sc.exe', query, Floor]}
"""


@pytest.mark.slow
def test_the_floor_interpreter_runs_the_agent(prefix: Prefix, bench_embed38: Path) -> None:
    r = prefix.render(SPEC, python=False)
    prefix.install_python(PY38, embed=bench_embed38)
    version = prefix.python("-I", "-S", "-c", "import sys; print(sys.version_info[:2])")
    assert version.check(0).stdout.strip() == "(3, 8)"
    assert prefix.agent("--version").check(0).stdout.strip() == f"vmprep-agent {__version__}"

    prefix.run_agent().check(0)
    status = prefix.agent("status", "--config", r.config, "--format", "json").check(0)
    state = json.loads(status.stdout)
    assert state["state"] == "done"
    assert [s["status"] for s in state["steps"]] == ["done"] * 4
    assert prefix.reg_query("HKLM\\SOFTWARE\\Floor", "Level") == {"Level": ("REG_DWORD", "0x26")}
    assert prefix.read_text("C:\\Floor\\note.txt") == "three-eight"
    assert prefix.read_text("C:\\Floor\\cmd.txt").strip() == "cmd-ran"
    assert [rec["cmdline"] for rec in prefix.records("sc.exe")] == [
        "C:\\windows\\system32\\sc.exe query Floor"
    ]


@pytest.mark.slow
def test_an_older_interpreter_is_refused_before_the_agent_runs(
    prefix: Prefix, bench_embed38: Path
) -> None:
    r = prefix.render(SPEC, python=False)
    prefix.install_python(PY38, embed=bench_embed38)
    pretend = (
        "import runpy, sys; sys.version_info = (3, 7, 9, 'final', 0); "
        f"sys.argv = [{r.pyz!r}, 'run', '--config', {r.config!r}]; "
        f"runpy.run_path({r.pyz!r}, run_name='__main__')"
    )
    result = prefix.python("-I", "-S", "-c", pretend)
    assert result.returncode == TOO_OLD, result.output
    assert result.stderr.strip() == (
        "vmprep-agent: error: Python 3.7.9 is too old: the agent needs Python 3.8 or newer "
        "(agent.runtime.python in the spec)"
    )
    assert not prefix.exists(r.install_dir + "\\state")  # nothing was done
    assert not prefix.exists(r.install_dir + "\\logs")
