"""How fast `vmprep validate` is, against the cost of merely importing its dependencies.

Run: `.venv/bin/python benchmarks/validate.py [--runs N]`. Every figure is the median of fresh
processes, measured in this run on this machine:

- floor:        python -c "import yaml, jsonschema, click"   (what any such tool pays)
- valid spec:   vmprep validate examples/web-role.yaml        target: floor + 15 ms
- invalid spec: vmprep validate examples/invalid/paths.yaml   target: floor + 15 ms
- 1,000 specs:  vmprep validate DIR (generated, one process)  target: under 1 s
- --help:       vmprep --help                                 target: under 60 ms

Each figure is shown as wall-clock time and as CPU time (user + system) of the process: on a
busy machine the CPU time is the steadier measure of our own cost. Bytecode caching is
switched on for the children (PYTHONDONTWRITEBYTECODE removed, one warm-up
run each), as it is for any installed package.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def vmprep_argv() -> list[str]:
    script = Path(sys.executable).with_name("vmprep")
    return [str(script)] if script.exists() else [sys.executable, "-m", "vmprep"]


def run_once(argv: list[str], env: dict[str, str], ok: tuple[int, ...]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) milliseconds of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        sys.exit(f"{argv} exited {code}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def medians(
    commands: dict[str, tuple[list[str], tuple[int, ...]]], runs: int, env: dict[str, str]
) -> dict[str, tuple[float, float]]:
    """Median wall and CPU ms per command. Runs are interleaved (one of each, then again), so
    a change in the machine's load or clock speed affects every command alike."""
    for argv, ok in commands.values():
        run_once(argv, env, ok)  # warm-up: write .pyc, fill the page cache
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, ok) in commands.items():
            samples[name].append(run_once(argv, env, ok))
    return {
        name: (statistics.median(s[0] for s in runs_), statistics.median(s[1] for s in runs_))
        for name, runs_ in samples.items()
    }


def generate_specs(directory: Path, count: int) -> None:
    """`count` valid, varied specs (a few steps each), deterministic."""
    rng = random.Random(2)
    oses = ["windows-server-2019", "windows-server-2022", "windows-server-2025", "windows-10"]
    zones = ["UTC", "W. Europe Standard Time", "Pacific Standard Time", "Tokyo Standard Time"]
    for i in range(count):
        steps = []
        for n in range(rng.randint(2, 8)):
            kind = rng.choice(["powershell", "feature", "registry", "download", "service"])
            if kind == "powershell":
                body = f"      powershell: Write-Output {i}-{n}\n      retries: {n % 3}\n"
            elif kind == "feature":
                body = "      windows_feature: {names: [Web-Server, Web-Mgmt-Service]}\n"
            elif kind == "registry":
                body = (
                    f"      registry: {{key: 'HKLM\\SOFTWARE\\Bench', name: v{n}, "
                    f"type: REG_DWORD, value: {n}}}\n"
                )
            elif kind == "download":
                body = (
                    f"      download:\n        url: https://example.com/f{n}.msi\n"
                    f"        sha256: {rng.getrandbits(256):064x}\n"
                    f"        to: 'C:\\Tools\\f{n}.msi'\n"
                )
            else:
                body = "      service: {name: W3SVC, start_type: automatic, state: running}\n"
            steps.append(f"    - id: step-{n}\n{body}")
        os_name, zone = rng.choice(oses), rng.choice(zones)
        # Windows 10/11 disable the built-in Administrator: a local admin account too.
        admin = (
            "  accounts: [{name: ops, groups: [Administrators]}]\n"
            if os_name == "windows-10"
            else ""
        )
        text = (
            f"version: 1\nimage:\n  name: bench-{i}\n  os: {os_name}\n"
            f"setup:\n  computer_name: WEB-{i:04d}\n  timezone: {zone}\n"
            f"  locale: en-US\n  organization: Contoso\n"
            "  administrator: {password: {env: VMPREP_ADMIN_PASSWORD}}\n"
            f"{admin}"
            f"agent:\n  runtime: {{python: 'C:\\Python312\\python.exe'}}\n"
            f"  steps:\n{''.join(steps)}"
        )
        (directory / f"spec-{i:04d}.yaml").write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per fresh-process figure")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    vmprep = vmprep_argv()
    runs = args.runs
    with tempfile.TemporaryDirectory() as tmp:
        generate_specs(Path(tmp), 1000)
        singles = medians(
            {
                "floor": ([sys.executable, "-c", "import yaml, jsonschema, click"], (0,)),
                "valid": ([*vmprep, "validate", str(EXAMPLES / "web-role.yaml")], (0,)),
                "invalid": ([*vmprep, "validate", str(EXAMPLES / "invalid" / "paths.yaml")], (1,)),
                "help": ([*vmprep, "--help"], (0,)),
            },
            runs,
            env,
        )
        bulk = medians({"bulk": ([*vmprep, "validate", tmp], (0,))}, max(3, runs // 4), env)
    floor, valid, invalid, helptime = (singles[k] for k in ("floor", "valid", "invalid", "help"))
    bulk_ms = bulk["bulk"]
    rows = [
        ("floor: import yaml, jsonschema, click", floor, None, None, ""),
        ("validate one valid spec", valid, floor[0] + 15, floor[1] + 15, "floor + 15 ms"),
        ("validate one invalid spec", invalid, floor[0] + 15, floor[1] + 15, "floor + 15 ms"),
        ("validate 1,000 specs (one process)", bulk_ms, 1000.0, 1000.0, "1000 ms"),
        ("vmprep --help", helptime, 60.0, 60.0, "60 ms"),
    ]
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load:.1f}, {runs} runs")
    print("wall = median elapsed time; cpu = median user + system time of the process")
    print(f"{'':38} {'wall ms':>8} {'x floor':>8} {'cpu ms':>8} {'x floor':>8}   target")
    for name, (wall, cpu), wall_target, cpu_target, label in rows:
        verdict = ""
        if wall_target is not None and cpu_target is not None:
            verdict = (
                "ok" if wall <= wall_target else ("ok (cpu)" if cpu <= cpu_target else "MISSED")
            )
        print(
            f"{name:38} {wall:8.1f} {wall / floor[0]:8.2f} {cpu:8.1f} {cpu / floor[1]:8.2f}"
            f"   {label} {verdict}"
        )


if __name__ == "__main__":
    main()
