"""The platform launchers under a real cmd.exe (Wine): what each platform's hook really does.

- Azure CALLs our SetupComplete2.cmd from its own SetupComplete.cmd
  (docs/platforms/azure.md): ours must run the chained script in a child cmd.exe (its bare
  `exit` cannot end anything), start the agent, and return so Azure's script goes on.
- GCE's boot task runs firstboot.cmd: it deletes the task only when the agent launcher
  exited 0 (docs/platforms/gce.md).

`python.exe` and `schtasks.exe` are a recording stand-in (built with mingw): each call appends
its name and arguments to C:\\ProgramData\\vmprep\\calls.txt and exits with the code in
exitcode.txt. Skipped without wine and x86_64-w64-mingw32-gcc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from vmprep.render import render
from vmprep.spec import load_spec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("wine") and shutil.which("x86_64-w64-mingw32-gcc")),
        reason="needs wine and x86_64-w64-mingw32-gcc",
    ),
]

RECORDER = r"""
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    FILE *f = fopen("C:\\ProgramData\\vmprep\\calls.txt", "a");
    const char *name = strrchr(argv[0], '\\');
    fprintf(f, "%s", name ? name + 1 : argv[0]);
    for (int i = 1; i < argc; i++) fprintf(f, " [%s]", argv[i]);
    fprintf(f, "\n");
    fclose(f);
    int code = 0;
    FILE *c = fopen("C:\\ProgramData\\vmprep\\exitcode.txt", "r");
    if (c) { if (fscanf(c, "%d", &code) != 1) code = 0; fclose(c); }
    return code;
}
"""
# What Azure's own SetupComplete.cmd does around ours (as quoted in
# https://matt.kotsenas.com/posts/azure-setupcomplete2): provisioning, then CALL, then more.
AZURE_SETUPCOMPLETE = (
    "@ECHO OFF && SETLOCAL && SETLOCAL ENABLEDELAYEDEXPANSION && SETLOCAL ENABLEEXTENSIONS\r\n"
    "ECHO provisioning>> C:\\ProgramData\\vmprep\\azure.txt\r\n"
    "IF EXIST %SystemRoot%\\OEM\\SetupComplete2.cmd (\r\n"
    "  CALL %SystemRoot%\\OEM\\SetupComplete2.cmd\r\n"
    ")\r\n"
    "ECHO after SetupComplete2>> C:\\ProgramData\\vmprep\\azure.txt\r\n"
)
# An image's existing SetupComplete2.cmd, ending with a bare `exit` (which would end Azure's
# script too if it ran in the same cmd.exe).
THEIRS = "@echo theirs>> C:\\ProgramData\\vmprep\\theirs.txt\r\nexit 5\r\n"


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wine")
    source = base / "recorder.c"
    source.write_text(RECORDER)
    exe = base / "recorder.exe"
    subprocess.run(["x86_64-w64-mingw32-gcc", "-O1", "-o", str(exe), str(source)], check=True)
    prefix = base / "prefix"
    run_wine(prefix, "cmd", "/c", "echo", "ready")
    drive = prefix / "drive_c"
    python = drive / "Program Files/Python312/python.exe"
    python.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(exe, python)
    system32 = drive / "windows/system32"
    shutil.copy(exe, system32 / "schtasks.exe")  # the prefix is this test's own
    return prefix


def run_wine(prefix: Path, *argv: str, schtasks: str = "n") -> subprocess.CompletedProcess[str]:
    # n(ative): the recorder in system32; b(uiltin): Wine's own schtasks.exe and Task Scheduler
    env = {
        **os.environ,
        "WINEPREFIX": str(prefix),
        "WINEDEBUG": "-all",
        "WINEDLLOVERRIDES": f"schtasks.exe={schtasks}",
    }
    return subprocess.run(
        ["wine", *argv], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def lay(prefix: Path, files: dict[str, bytes]) -> Path:
    drive = prefix / "drive_c"
    state = drive / "ProgramData/vmprep"
    if state.exists():
        shutil.rmtree(state)
    for rel, data in files.items():
        if rel.endswith(".cmd"):
            path = drive.joinpath(*[p.lower() if p == "Windows" else p for p in rel.split("/")])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    state.mkdir(parents=True, exist_ok=True)
    return state


def test_azure_calls_our_setupcomplete2_which_chains_theirs_and_returns(prefix: Path) -> None:
    chain = "C:\\Windows\\OEM\\SetupComplete2.vmprep-chained.cmd"
    spec = load_spec(EXAMPLES / "platforms" / "azure.yaml")
    files = render(spec, chain_setupcomplete=chain, environ={}).files
    state = lay(prefix, files)
    oem = prefix / "drive_c/windows/OEM"
    (oem / "SetupComplete2.vmprep-chained.cmd").write_text(THEIRS, newline="")
    scripts = prefix / "drive_c/windows/setup/scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / "SetupComplete.cmd").write_text(AZURE_SETUPCOMPLETE, newline="")
    run_wine(prefix, "cmd", "/c", "C:\\windows\\setup\\scripts\\SetupComplete.cmd")
    assert (state / "theirs.txt").read_text().strip() == "theirs"
    calls = (state / "calls.txt").read_text().splitlines()
    launch = (
        "python.exe [-I] [-S] [C:\\ProgramData\\vmprep\\agent.pyz] [launch] [--config] "
        "[C:\\ProgramData\\vmprep\\agent.json]"
    )
    assert calls == [launch]
    # Azure's script went on after ours: nothing of ours ended it.
    assert (state / "azure.txt").read_text().splitlines() == [
        "provisioning",
        "after SetupComplete2",
    ]
    log = (state / "setupcomplete.log").read_text(errors="replace")
    assert "SetupComplete2.cmd started" in log
    assert "the chained script exited with 5" in log


@pytest.mark.parametrize(("code", "deleted"), [(0, True), (1, False)])
def test_gce_firstboot_deletes_its_task_only_after_a_successful_launch(
    prefix: Path, code: int, deleted: bool
) -> None:
    files = render(load_spec(EXAMPLES / "platforms" / "gce.yaml"), environ={}).files
    state = lay(prefix, files)
    (state / "exitcode.txt").write_text(str(code))
    run_wine(prefix, "cmd", "/c", "C:\\ProgramData\\vmprep\\firstboot.cmd")
    calls = (state / "calls.txt").read_text().splitlines()
    assert calls[0].startswith("python.exe [-I] [-S]")
    delete = "schtasks.exe [/Delete] [/TN] [vmprep-firstboot] [/F]"
    assert (delete in calls) is deleted
    assert len(calls) == 1 + deleted


def test_gce_task_xml_registers_with_a_task_scheduler(prefix: Path) -> None:
    """Wine's Task Scheduler reads task XML through `schtasks /Create /XML` as Windows does
    (UTF-16 with a BOM, the task namespace, well-formed): ours registers, and a copy with a
    broken element is refused (so the check can fail). Wine ignores unknown elements, so
    the schema itself is checked by test_platforms.py, not here."""
    data = render(load_spec(EXAMPLES / "platforms" / "gce.yaml"), environ={}).files[
        "ProgramData/vmprep/firstboot-task.xml"
    ]
    folder = prefix / "drive_c/vmprep-task"
    folder.mkdir(exist_ok=True)
    (folder / "good.xml").write_bytes(data)
    bad = data.decode("utf-16").replace("<BootTrigger>", "<BogusTrigger>").encode("utf-16")
    (folder / "bad.xml").write_bytes(bad)
    create = ["schtasks", "/Create", "/TN", "vmprep-firstboot", "/F", "/XML"]
    good = run_wine(prefix, *create, "C:\\vmprep-task\\good.xml", schtasks="b")
    assert good.returncode == 0, good.stdout + good.stderr
    assert (prefix / "drive_c/windows/system32/tasks/vmprep-firstboot").is_file()
    create[3] = "vmprep-broken"
    refused = run_wine(prefix, *create, "C:\\vmprep-task\\bad.xml", schtasks="b")
    assert refused.returncode != 0
    deleted = run_wine(prefix, "schtasks", "/Delete", "/TN", "vmprep-firstboot", "/F", schtasks="b")
    assert deleted.returncode == 0
