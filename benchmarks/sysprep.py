"""How fast `vmprep sysprep` explains a failure and checks a machine, against plain baselines.

Run: `.venv/bin/python benchmarks/sysprep.py [--lines N] [--runs N]`. Figures are medians,
measured in this run on this machine:

- read log:    read a Panther setupact.log of N lines and split it into lines (the floor)
- diagnose:    vmprep.sysprep.panther.diagnose on the same log (parse, find causes)
               target: under 5x the floor, and under 1 s for 200,000 lines (~35 MB)
- --check:     `vmprep sysprep --check --root DIR` on a fake drive, fresh process
- floor:       python -c "import click, rich, yaml, jsonschema" (what any such CLI pays)
               target: --check under floor + 200 ms (the real PowerShell probe is not counted:
               on Windows it is one interpreter start, about a second)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vmprep.sysprep.panther import PANTHER, diagnose

ROOT = Path(__file__).resolve().parent.parent
T = "2026-11-26 01:02:03"
INFO = f"{T}, Info       [0x0f004d] SYSPRP ActionPlatform::LaunchModule: Found 'X' in C:\\Windows\\System32\\x.dll; executing it"
ERRORS = [
    f"{T}, Error                 SYSPRP Package Contoso.Notes_1.2.3.0_x64__abc was installed for a user, but not provisioned for all users. This package will not function properly in the sysprep image.",
    f"{T}, Error      [0x0f0082] SYSPRP ActionPlatform::LaunchModule: Failure occurred while executing 'SysprepGeneralizeValidate' from C:\\Windows\\System32\\AppxSysprep.dll; dwRet = 0x3cf2",
]


def median_s(function: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_process_s(argv: list[str], runs: int, ok: tuple[int, ...]) -> float:
    subprocess.run(argv, capture_output=True, check=False)  # warm-up: write .pyc
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode not in ok:
            sys.exit(f"{argv} exited {proc.returncode}:\n{proc.stderr.decode()}")
    return statistics.median(times)


def fake_drive(root: Path, lines: int) -> Path:
    log = root / PANTHER / "setupact.log"
    log.parent.mkdir(parents=True)
    body = [INFO] * lines
    body[lines // 2 : lines // 2 + len(ERRORS)] = ERRORS
    log.write_text("\r\n".join(body) + "\r\n", encoding="utf-8")
    (root / "Windows/Setup/State").mkdir(parents=True)
    (root / "Windows/Setup/State/State.ini").write_text(
        "[State]\nImageState=IMAGE_STATE_COMPLETE\n"
    )
    (root / "Windows/System32/Sysprep/sysprep.exe").write_bytes(b"MZ")
    python = root / "Program Files/Python312/python.exe"
    python.parent.mkdir(parents=True)
    python.write_bytes(b"MZ")
    facts = {"appx": [], "bitlocker": {"present": False}, "rearm": {"remaining": 1000},
             "domain": {"part_of_domain": False}, "services": []}  # fmt: skip
    platform = {"windows": True, "admin": True, "processes": ["explorer.exe"],
                "commands": [{"match": "Get-AppxPackage", "stdout": json.dumps(facts)}]}  # fmt: skip
    (root / ".vmprep-fake-platform.json").write_text(json.dumps(platform))
    return log


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "C"
        log = fake_drive(root, args.lines)
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(
            "version: 1\nimage: {name: bench}\n"
            "setup: {administrator: {password: {env: VMPREP_ADMIN_PASSWORD}}}\n"
            "agent: {runtime: {python: 'C:\\Program Files\\Python312\\python.exe'}}\n"
        )
        size_mb = log.stat().st_size / 1e6
        floor = median_s(lambda: log.read_bytes().decode().splitlines(), args.runs)
        found = diagnose(root)
        assert [c.id for c in found.causes] == ["appx"], found.causes
        took = median_s(lambda: diagnose(root), args.runs)
        print(f"read log ({args.lines:,} lines, {size_mb:.1f} MB): {floor * 1000:8.1f} ms")
        print(f"diagnose:                                  {took * 1000:8.1f} ms"
              f"  ({took / floor:.1f}x the floor; target < 5x and < 1000 ms)")  # fmt: skip
        imports = [sys.executable, "-c", "import click, rich, yaml, jsonschema"]
        check = [
            sys.executable,
            "-m",
            "vmprep",
            "sysprep",
            "--check",
            "--root",
            str(root),
            str(spec),
        ]
        env_floor = median_process_s(imports, args.runs, (0,))
        env_check = median_process_s(check, args.runs, (0,))
        print(f"import floor (fresh process):              {env_floor * 1000:8.1f} ms")
        print(f"sysprep --check (fresh process):           {env_check * 1000:8.1f} ms"
              f"  (floor + {(env_check - env_floor) * 1000:.0f} ms; target < floor + 200 ms)")  # fmt: skip


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    main()
