"""Agent start-up and footprint, against baselines measured in the same run.

    .venv/bin/python benchmarks/agent.py [--runs N]

A loopback server plays Azure IMDS (identity), the config service (a signed document) and the
report endpoint. Measured, as the median of N runs of `python -I agent.pyz run`:
- start -> first step: from just before the process is spawned until the first baked step
  (a `cmd` writing a timestamp) runs;
- 20-step run: the whole run, 20 remote steps (exec and file), signature check and reports;
- peak RSS of the agent process (os.wait4's rusage, Linux KiB, spawned from a small helper).
Baselines: `python -I -c pass`, and `python -I -c` doing one bare urllib GET to the server.
Targets: start -> first step < 3x `python -c pass`; peak RSS < 40 MB. Three payload variants:
the zipapp as plain source (zipimport compiles every module on every start), with .pyc for
this interpreter beside each .py (what render could ship), and that run with `-S` as well.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agent.e2e.conftest import Service, build_pyz, serve

VM_ID = "4f2c9a1e-0000-4000-8000-00155d010203"


# Children are spawned by this small helper, not by the benchmark itself: Linux carries a
# process's peak RSS across fork+exec, so a child forked from this (large) benchmark process
# would report the benchmark's size as its own peak.
SPAWNER = """
import json, os, sys, time
argv = json.loads(sys.argv[1])
start = time.time()
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_RDWR)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.execv(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print(json.dumps([start, wall, os.waitstatus_to_exitcode(status), usage.ru_maxrss]))
"""


def timed(argv: list[str]) -> tuple[float, float, int, int]:
    """(start time, wall seconds, exit code, peak RSS KiB) of one child."""
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SPAWNER, json.dumps(argv)],
        capture_output=True,
        text=True,
        check=True,
    )
    start, wall, code, rss = json.loads(out.stdout)
    return float(start), float(wall), int(code), int(rss)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="vmprep-bench-"))
    plain = build_pyz(work / "agent.pyz")
    bytecode = build_pyz(work / "agent-bytecode.pyz", bytecode=True)
    payloads = {  # label -> (interpreter flags, payload)
        "-I, source": (["-I"], plain),
        "-I, .pyc": (["-I"], bytecode),
        "-I -S, .pyc": (["-I", "-S"], bytecode),
    }
    svc = Service(vm_id=VM_ID)
    httpd = serve(svc)
    stamp = work / "first-step"
    steps: list[dict[str, object]] = []
    for i in range(10):
        steps.append({"id": f"exec-{i}", "exec": {"argv": ["/bin/true"]}})
        steps.append(
            {"id": f"file-{i}", "file": {"path": str(work / "files" / f"f{i}"), "content": "x"}}
        )
    svc.publish(steps, serial=1, instance_id=VM_ID)
    config = {
        "format": 1,
        "identity": ["azure-imds"],
        "endpoints": {"azure-imds": svc.base},
        "phone_home": svc.phone_home(),
        "steps": [{"id": "first", "cmd": f'date +%s.%N > "{stamp}"'}],
        "platform_options": {"boot_id_path": str(work / "boot_id")},
    }
    (work / "agent.json").write_text(json.dumps(config))
    state = work / "vmprep"

    def agent_run(flags: list[str], payload: Path) -> tuple[float, float, int, int]:
        if state.exists():
            subprocess.run(["rm", "-rf", str(state)], check=True)
        argv = [py, *flags, str(payload), "run", "--config", str(work / "agent.json")]
        return timed([*argv, "--state-dir", str(state)])

    get = f"import urllib.request; urllib.request.urlopen('{svc.base}/x').read()"
    pass_walls: list[float] = []
    bare_walls: list[float] = []
    get_walls: list[float] = []
    first: dict[str, list[float]] = {label: [] for label in payloads}
    full: dict[str, list[float]] = {label: [] for label in payloads}
    rss: list[int] = []
    for _ in range(args.runs):
        pass_walls.append(timed([py, "-I", "-c", "pass"])[1])
        bare_walls.append(timed([py, "-I", "-S", "-c", "pass"])[1])
        get_walls.append(timed([py, "-I", "-c", get])[1])
        for label, (flags, payload) in payloads.items():
            start, wall, code, peak = agent_run(flags, payload)
            if code != 0:
                print(f"agent run failed with exit code {code}", file=sys.stderr)
                return 1
            first[label].append(float(stamp.read_text()) - start)
            full[label].append(wall)
            rss.append(peak)
    httpd.shutdown()

    def ms(values: list[float]) -> str:  # the median, and the minimum (least disturbed by load)
        return f"{statistics.median(values) * 1000:7.1f} ms (min {min(values) * 1000:6.1f})"

    base = statistics.median(pass_walls)
    peak_mb = max(rss) / 1024
    print(f"python -I -c pass                          {ms(pass_walls)}")
    print(f"python -I -S -c pass                       {ms(bare_walls)}")
    print(f"bare urllib GET (loopback)                 {ms(get_walls)}")
    for label in payloads:
        ratio = statistics.median(first[label]) / base
        best = min(first[label]) / min(pass_walls)
        verdict = "ok" if ratio < 3 else "over"
        print(
            f"agent ({label:12}): start -> first step {ms(first[label])}  "
            f"{ratio:.2f}x, min/min {best:.2f}x ({verdict})"
        )
        print(f"agent ({label:12}): 20-step run         {ms(full[label])}")
    verdict = "ok" if peak_mb < 40 else "over"
    print(f"agent: peak RSS                            {peak_mb:7.1f} MB  (< 40 MB: {verdict})")
    print(
        f"({args.runs} runs, Python {sys.version.split()[0]}; target: median < 3x python -c pass)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
