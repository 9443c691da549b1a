"""Group 7 of the bench (docs/windows-bench.md): `vmprep sysprep --generalize` itself, run by
the Windows CPython 3.13 under Wine with vmprep's real dependencies (bench.WHEELS), so the
real `WindowsPlatform` runs: winreg reads of ImageState, GetShortPathNameW for the answer
file, sysprep.exe started and waited for as a Windows process, tasklist, and the restore of
every replaced file when Sysprep fails. `sysprep.exe`, `shutdown.exe`, `tasklist.exe` and
`powershell.exe` are recording stubs; the sysprep stub sets ImageState in Wine's registry the
way Sysprep does on success."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.windows import bench
from tests.windows.bench import Prefix

PYTHON = "C:\\Program Files\\Python313\\python.exe"
STATE_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State"
SPEC = "C:\\vmprep-bench\\vmprep.yaml"
SYSPREP = "C:\\Windows\\System32\\Sysprep\\sysprep.exe"
ANSWER_FILE = "C:\\Windows\\System32\\Sysprep\\unattend.xml"
# (lower-case `windows`: the bench writes paths with the case given, and Wine's own folder is
# `windows`)
SETUPCOMPLETE = "C:\\windows\\Setup\\Scripts\\SetupComplete.cmd"
RECORD = "C:\\ProgramData\\vmprep\\sysprep-install\\install.json"
PASSWORD = "Bench-only-1"
GENERALIZED = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
# What the preflight's PowerShell probe prints on a clean Server VM (vmprep/sysprep/probes.py):
# Wine's powershell.exe is a stub, so the bench's recording stub answers in its place.
FACTS = {
    "appx": [],
    "bitlocker": {"present": False},
    "rearm": {"remaining": 1001},
    "domain": {"part_of_domain": False, "domain": "WORKGROUP"},
    "services": [],
    "dhcp": [],
}

# `tasklist /fo csv /nh` on a clean VM (Wine 8's own tasklist.exe prints nothing).
CLEAN_TASKS = [
    ("System Idle Process", 0),
    ("System", 4),
    ("services.exe", 612),
    ("python.exe", 4242),
]

pytestmark = pytest.mark.slow


@pytest.fixture
def machine(prefix: Prefix, vmprep_site: Path) -> Prefix:
    prefix.install_stubs(["tasklist.exe"])  # before the first Wine process (DllOverrides)
    prefix.install_python(PYTHON)
    prefix.install_vmprep(PYTHON, vmprep_site)
    prefix.write(SPEC, bench.spec("sysprep-bench"))
    prefix.wine("reg.exe", "add", STATE_KEY, "/v", "ImageState", "/t", "REG_SZ", "/d",
                "IMAGE_STATE_COMPLETE", "/f").check(0)  # fmt: skip
    prefix.stub("powershell.exe", stdout=json.dumps(FACTS))
    return prefix


def vmprep(prefix: Prefix, *args: str) -> bench.Result:
    return prefix.wine(
        PYTHON, "-m", "vmprep", "sysprep", *args, SPEC,
        env={"VMPREP_ADMIN_PASSWORD": PASSWORD},
    )  # fmt: skip


def tasklist(prefix: Prefix, tasks: list[tuple[str, int]]) -> None:
    """Script the tasklist.exe stub to list `tasks` as `tasklist /fo csv /nh` does."""
    rows = [f'"{name}","{pid}","Services","0","8,192 K"' for name, pid in tasks]
    prefix.stub("tasklist.exe", stdout="\\n".join(rows))


def image_state(prefix: Prefix) -> str:
    return prefix.reg_query(STATE_KEY, "ImageState")["ImageState"][1]


def sets_state(state: str = GENERALIZED) -> tuple[str, str, str]:
    """The stub's registry action: ImageState, as Sysprep leaves it when it is done."""
    return (STATE_KEY[len("HKLM\\") :], "ImageState", state)


def assert_no_secret(prefix: Prefix) -> None:
    for record in prefix.records():
        assert PASSWORD not in record["cmdline"], record["exe"]


def test_generalize_runs_sysprep_waits_for_the_state_and_shuts_down(machine: Prefix) -> None:
    machine.stub("sysprep.exe", registry=sets_state())
    tasklist(machine, CLEAN_TASKS)
    result = vmprep(machine, "--generalize").check(0)
    assert "| sysprep-running | pass   | no other sysprep.exe is running" in result.output
    assert "done: the image is generalized" in result.output
    # What Windows handed sysprep.exe: the command line string the flow builds (/quit, never
    # /shutdown: vmprep shuts down itself once ImageState is right, packer#5385).
    (sysprep,) = machine.records("sysprep.exe")
    assert sysprep["cmdline"] == (
        f"{SYSPREP} /generalize /oobe /quit /quiet /unattend:{ANSWER_FILE}"
    )
    assert bench.split_windows(sysprep["cmdline"])[1:] == [
        "/generalize", "/oobe", "/quit", "/quiet", f"/unattend:{ANSWER_FILE}",
    ]  # fmt: skip
    (shutdown,) = machine.records("shutdown.exe")
    assert shutdown["cmdline"] == "shutdown.exe /s /t 0 /d p:4:1"
    assert image_state(machine) == GENERALIZED
    # The answer file next to sysprep.exe, the hook, and the agent run by this interpreter.
    assert b"<unattend" in machine.read_bytes(ANSWER_FILE)
    hook = machine.read_text(SETUPCOMPLETE)
    assert "agent.pyz" in hook
    agent = json.loads(machine.read_text("C:\\ProgramData\\vmprep\\agent.json"))
    assert agent["runtime"]["python"] == PYTHON
    assert_no_secret(machine)


def test_the_real_platform_reads_the_registry_short_paths_and_processes(machine: Prefix) -> None:
    tasklist(machine, CLEAN_TASKS)
    code = (
        "import json; from vmprep.sysprep.winhost import WindowsPlatform; p = WindowsPlatform(); "
        "key = r'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State'; "
        "print(json.dumps([p.is_windows(), p.is_admin(), p.drive, str(p.root), "
        "p.reg_value(key, 'ImageState'), p.reg_value(key, 'NoSuchValue'), "
        "p.reg_key_exists(key), p.reg_key_exists(key + r'\\NoSuchKey'), "
        "p.short_path(r'C:\\Program Files\\Python313\\python.exe'), "
        "p.short_path(r'C:\\no such dir\\x.exe'), "
        "'python.exe' in p.processes(), p.interpreter, "
        "__import__('os').path.isfile(p.short_path(r'C:\\Program Files\\Python313\\python.exe'))]))"
    )
    result = machine.wine(PYTHON, "-c", code).check(0)
    facts = json.loads(result.stdout)
    assert facts[:8] == [
        True, True, "C:", "C:\\", "IMAGE_STATE_COMPLETE", None, True, False,
    ]  # fmt: skip
    short = facts[8]
    assert " " not in short, short
    # Wine makes up its 8.3 names (PROG~FBU, not PROGRA~1): each part at most 8.3, no space.
    assert re.fullmatch(
        r"C:\\[A-Z0-9_~]{1,8}\\[A-Z0-9_~]{1,8}\\python\.exe", short, re.IGNORECASE
    ), short
    assert facts[12] is True  # and it names the file
    assert facts[9] == "C:\\no such dir\\x.exe"  # no short name: the path as it is
    assert facts[10] is True
    assert facts[11] == PYTHON


def test_a_failing_sysprep_restores_every_replaced_file(machine: Prefix) -> None:
    machine.write(SETUPCOMPLETE, "@echo the image's own hook\r\n")
    machine.stub("sysprep.exe", [31])
    result = vmprep(machine, "--generalize")
    result.check(4)  # ExitCode.EXTERNAL: sysprep failed, files restored (docs/sysprep.md)
    assert "sysprep exited with 31; every replaced file was restored" in result.output
    assert "Traceback" not in result.output
    assert len(machine.records("sysprep.exe")) == 1
    assert machine.records("shutdown.exe") == []
    assert machine.read_bytes(SETUPCOMPLETE) == b"@echo the image's own hook\r\n"
    assert not machine.exists(ANSWER_FILE)
    assert not machine.exists("C:\\windows\\Setup\\Scripts\\SetupComplete.vmprep-chained.cmd")
    assert not machine.exists("C:\\ProgramData\\vmprep\\agent.pyz")
    assert image_state(machine) == "IMAGE_STATE_COMPLETE"
    # Nothing left half-done: no unfinished install for `--restore` to find.
    assert vmprep(machine, "--restore").returncode == 3
    assert_no_secret(machine)


def test_sysprep_that_never_sets_the_state_fails_and_restores(machine: Prefix) -> None:
    machine.stub("sysprep.exe", [0])  # exits 0, ImageState stays IMAGE_STATE_COMPLETE
    result = vmprep(machine, "--generalize", "--timeout", "4s")
    result.check(4)
    # The tasklist stub is not scripted here and prints nothing, as Wine 8's own does: the
    # process checks say they could not check (they used to pass: "no other sysprep.exe").
    for check in ("sysprep-running", "servicing"):
        assert f"| {check:<15} | warn   | could not check: tasklist.exe listed no process" in (
            result.output
        )
    assert f"ImageState is IMAGE_STATE_COMPLETE, not {GENERALIZED}" in result.output
    assert "do not capture it" in result.output
    assert machine.records("shutdown.exe") == []
    assert not machine.exists(ANSWER_FILE)
    assert not machine.exists(SETUPCOMPLETE)


def test_a_hung_sysprep_is_stopped_at_the_timeout(machine: Prefix) -> None:
    machine.stub("sysprep.exe", [0], sleep_ms=120_000, registry=sets_state())
    start = time.monotonic()
    result = vmprep(machine, "--generalize", "--timeout", "5s")
    assert time.monotonic() - start < 60, "vmprep waited for the hung sysprep.exe"
    result.check(4)
    assert "did not finish within 5s and was stopped" in result.output
    assert machine.records("shutdown.exe") == []
    assert not machine.exists(ANSWER_FILE)
    # The stopped sysprep.exe is gone (TerminateProcess), not left running in the prefix.
    listed = machine.wine("tasklist.exe", "/fo", "csv", "/nh").stdout.lower()
    assert "sysprep.exe" not in listed


def test_preflight_refuses_an_image_that_is_not_complete(machine: Prefix) -> None:
    machine.wine("reg.exe", "add", STATE_KEY, "/v", "ImageState", "/t", "REG_SZ", "/d",
                 "IMAGE_STATE_UNDEPLOYABLE", "/f").check(0)  # fmt: skip
    machine.stub("sysprep.exe", registry=sets_state())
    result = vmprep(machine, "--generalize")
    result.check(3)  # ExitCode.PREFLIGHT: nothing changed
    assert "preflight refused: image-state" in result.output
    assert machine.records("sysprep.exe") == []
    assert not machine.exists(ANSWER_FILE)
    assert not machine.exists(RECORD)


def test_another_running_sysprep_refuses_the_run(machine: Prefix) -> None:
    tasklist(machine, [*CLEAN_TASKS, ("sysprep.exe", 5150), ("TiWorker.exe", 77)])
    machine.stub("sysprep.exe", registry=sets_state())
    result = vmprep(machine, "--generalize")
    result.check(3)
    assert "another sysprep.exe is running" in result.output
    assert "Windows servicing is running: tiworker.exe" in result.output
    listed = machine.records("tasklist.exe")
    assert listed
    assert {r["cmdline"] for r in listed} == {"tasklist.exe /fo csv /nh"}
    assert machine.records("sysprep.exe") == []
    assert not machine.exists(ANSWER_FILE)
