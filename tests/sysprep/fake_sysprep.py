"""A recording fake sysprep.exe, installed by the tests at <drive>/Windows/System32/Sysprep/.

It records its argv to <drive>/fake-sysprep-argv.json, reads the scenario from
<drive>/fake-sysprep-scenario, writes Panther logs in Sysprep's format, and flips the image
state in <drive>/Windows/Setup/State/State.ini the way sysprep does. Like Sysprep, it caches
the `/unattend:` file as Windows/Panther/unattend.xml (Setup's cache) when it succeeds, and it
refuses an answer file that *is* that cache (it would copy the file onto itself), or a
missing one. What it saw at start goes to <drive>/fake-sysprep-seen.json.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PANTHER = ROOT / "Windows" / "System32" / "Sysprep" / "Panther"
CACHE = ROOT / "Windows" / "Panther" / "unattend.xml"
STATE_INI = ROOT / "Windows" / "Setup" / "State" / "State.ini"
T = "2026-11-26 01:02:03"

START = [
    f"{T}, Info                  SYSPRP ========================================================",
    f"{T}, Info                  SYSPRP ===          Beginning of a new sysprep run          ===",
    f"{T}, Info       [0x0f004e] SYSPRP Initialized SysPrep log at C:\\Windows\\System32\\Sysprep\\Panther",
    f"{T}, Info       [0x0f005f] SYSPRP ParseCommands:Found supported command line option 'GENERALIZE'",
]
APPX = [
    f"{T}, Error                 SYSPRP Package Contoso.Notes_1.2.3.0_x64__abcdefghjk1mn was installed for a user, but not provisioned for all users. This package will not function properly in the sysprep image.",
    f"{T}, Error                 SYSPRP Failed to remove apps for the current user: 0x80073cf2.",
    f"{T}, Error      [0x0f0082] SYSPRP ActionPlatform::LaunchModule: Failure occurred while executing 'SysprepGeneralizeValidate' from C:\\Windows\\System32\\AppxSysprep.dll; dwRet = 0x3cf2",
    f"{T}, Error      [0x0f00d8] SYSPRP WinMain:Hit failure while pre-validate sysprep generalize internal providers; hr = 0x80073cf2",
]
BITLOCKER = [
    f"{T}, Error      [0x0f0082] SYSPRP BitLocker-Sysprep: BitLocker is on for the OS volume. Turn BitLocker off to run Sysprep. (0x80310039)",
    f"{T}, Error      [0x0f0082] SYSPRP ActionPlatform::LaunchModule: Failure occurred while executing 'ValidateBitLockerState' from C:\\Windows\\System32\\BdeSysprep.dll; dwRet = 0x80310039",
]


def log(lines: Sequence[str], errors: Sequence[str] = ()) -> None:
    PANTHER.mkdir(parents=True, exist_ok=True)
    with (PANTHER / "setupact.log").open("a", encoding="utf-8", newline="\r\n") as f:
        f.write("\n".join([*lines, *errors]) + "\n")
    if errors:
        with (PANTHER / "setuperr.log").open("a", encoding="utf-8", newline="\r\n") as f:
            f.write("\n".join(errors) + "\n")


def set_state(value: str) -> None:
    STATE_INI.write_text(f"[State]\r\nImageState={value}\r\n", encoding="ascii")


def main() -> int:
    (ROOT / "fake-sysprep-argv.json").write_text(json.dumps(sys.argv[1:]))
    scenario_file = ROOT / "fake-sysprep-scenario"
    scenario = scenario_file.read_text().strip() if scenario_file.exists() else "success"
    unattend = [a.split(":", 1)[1] for a in sys.argv[1:] if a.lower().startswith("/unattend:")]
    seen = {"unattend": unattend, "panther_cache_existed": CACHE.exists()}
    (ROOT / "fake-sysprep-seen.json").write_text(json.dumps(seen))
    answer = Path(unattend[0]) if unattend else None
    if answer is not None:
        bad = None
        if not answer.is_file():
            bad = "not found"
        elif CACHE.exists() and answer.resolve() == CACHE.resolve():
            bad = "is Setup's own cache (Windows\\Panther\\unattend.xml)"
        if bad:
            log(START, [f"{T}, Error                 SYSPRP the answer file {answer} {bad}"])
            return 2
        # what sysprep really got: the installed answer file
        (ROOT / "fake-sysprep-unattend.xml").write_bytes(answer.read_bytes())
    if scenario == "success":
        log(START)
        if answer is not None:
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            CACHE.write_bytes(answer.read_bytes())
        set_state("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE")
        (PANTHER.parent / "Sysprep_succeeded.tag").write_text("")
        return 0
    if scenario == "appx":  # sysprep /quiet exits 0 and leaves the image undeployable
        log(START, APPX)
        set_state("IMAGE_STATE_UNDEPLOYABLE")
        return 0
    if scenario == "exit":
        log(START, BITLOCKER)
        return 1
    if scenario == "no-state":  # exits 0 but never reaches the promised state
        log(START)
        return 0
    if scenario == "hang":
        log(START)
        time.sleep(60)
        return 0
    raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    sys.exit(main())
