"""The agent under the Windows CPython (Wine) next to the same agent under Linux CPython.

    .venv/bin/python benchmarks/agent_wine.py [--runs N]

One spec of 20 baked `file` steps is rendered once; its agent.pyz runs `run` (`-I -S`, as the
startup task runs it) N times on each side, from a fresh state each time, and the medians are
printed side by side:
- start -> first step: from just before the process is spawned until the first step's file is
  written (its mtime: Wine's C: drive is a Linux directory, so one clock serves both sides);
- 20-step run: the whole run, process start to exit.
The Windows side runs in a warm Wine prefix (its wineserver already up, as a booted Windows is);
the Linux side is spawned by benchmarks/agent.py's helper. Baseline on each side: the same
interpreter's `-I -S -c pass`. The ratio Wine/Linux is printed for each line: the figures are
for comparing runs of this script, not for asserting on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PureWindowsPath

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.agent import timed
from tests.windows import bench

UUID = "4f2c9a1e-0000-4000-8000-00155d0a0b0c"
STEPS = 20
SPEC = (
    "version: 1\n"
    "image: {name: bench-wine, os: windows-server-2022}\n"
    "setup:\n"
    "  timezone: UTC\n"
    "  administrator: {password: {env: VMPREP_ADMIN_PASSWORD}}\n"
    "agent:\n"
    "  runtime: {python: 'C:\\Program Files\\Python313\\python.exe'}\n"
    "  steps:\n"
    + "".join(
        f"    - id: s{i:02}\n      file: {{path: 'C:\\bench\\s{i:02}.txt', content: step {i}}}\n"
        for i in range(STEPS)
    )
)


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.0f} ms"


def first_step_and_total(
    run: Callable[[], tuple[float, float]], first: Path
) -> tuple[float, float]:
    start, wall = run()
    return first.stat().st_mtime - start, wall


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vmprep-bench-wine-"))
    try:
        template = bench.build_template(work / "template")
        stub = bench.build_stub(work)
        prefix = bench.new_prefix(
            template, work / "prefix", stub, bench.embed_python("3.13"), work / "w"
        )
        r = prefix.render(SPEC)
        config = json.loads(prefix.read_text(r.config))
        config["identity"] = ["smbios-uuid"]
        prefix.write(r.config, json.dumps(config))

        # the Linux side: the same agent.json, its paths moved to a directory here
        linux = work / "linux"
        (linux / "sys/sys/class/dmi/id").mkdir(parents=True)
        (linux / "sys/sys/class/dmi/id/product_uuid").write_text(UUID + "\n")
        linux_cfg = dict(config, install_dir=str(linux / "vmprep"))
        linux_cfg["platform_options"] = {"sys_root": str(linux / "sys")}
        for step in linux_cfg["steps"]:
            step["file"]["path"] = str(linux / "out" / PureWindowsPath(step["file"]["path"]).name)
        (linux / "vmprep").mkdir()
        (linux / "agent.json").write_text(json.dumps(linux_cfg))
        pyz = prefix.find(r.pyz)
        linux_argv = [sys.executable, "-I", "-S", str(pyz), "run", "--config"]
        linux_argv += [str(linux / "agent.json"), "--state-dir", str(linux / "vmprep")]

        def linux_run() -> tuple[float, float]:
            shutil.rmtree(linux / "vmprep", ignore_errors=True)
            shutil.rmtree(linux / "out", ignore_errors=True)
            start, wall, code, _ = timed(linux_argv)
            assert code == 0, f"the Linux run exited {code}"
            return start, wall

        def wine_run() -> tuple[float, float]:
            for name in ("state", "logs", "spool"):
                shutil.rmtree(prefix.find(r.install_dir) / name, ignore_errors=True)
            shutil.rmtree(prefix.find("C:\\bench"), ignore_errors=True)
            start = time.time()
            t0 = time.perf_counter()
            result = prefix.run_agent()
            wall = time.perf_counter() - t0
            assert result.returncode == 0, result.output
            return start, wall

        def wine_pass() -> float:
            t0 = time.perf_counter()
            prefix.python("-I", "-S", "-c", "pass").check(0)
            return time.perf_counter() - t0

        wine_run()  # warm: wineserver up, files in the page cache
        linux_run()
        rows: dict[str, tuple[list[float], list[float]]] = {
            "-I -S -c pass": ([], []),
            "agent: start -> first step": ([], []),
            f"agent: {STEPS}-step run": ([], []),
        }
        for _ in range(args.runs):
            rows["-I -S -c pass"][0].append(timed([sys.executable, "-I", "-S", "-c", "pass"])[1])
            rows["-I -S -c pass"][1].append(wine_pass())
            first, wall = first_step_and_total(linux_run, linux / "out" / "s00.txt")
            rows["agent: start -> first step"][0].append(first)
            rows[f"agent: {STEPS}-step run"][0].append(wall)
            first, wall = first_step_and_total(wine_run, prefix.find("C:\\bench\\s00.txt"))
            rows["agent: start -> first step"][1].append(first)
            rows[f"agent: {STEPS}-step run"][1].append(wall)
        print(f"median of {args.runs} runs        Linux CPython   Windows CPython (Wine)   ratio")
        for label, (lin, win) in rows.items():
            ratio = statistics.median(win) / statistics.median(lin)
            print(f"{label:28} {median_ms(lin)}     {median_ms(win)}          {ratio:5.1f}x")
        prefix.kill()
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
