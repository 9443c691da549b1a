"""Agent start-up and footprint, against baselines measured in the same run.

    .venv/bin/python benchmarks/agent.py [--runs N]

A loopback server plays Azure IMDS (identity), the config service (a signed document) and the
report endpoint. Measured, as the median of N runs of `python -I agent.pyz run`:
- start -> first step: from just before the process is spawned until the first baked step
  (a `cmd` writing a timestamp) runs;
- 20-step run: the whole run, 20 remote steps (exec and file), signature check and reports;
- peak RSS of the agent process (os.wait4's rusage, Linux KiB).
Baselines: `python -I -c pass`, and `python -I -c` doing one bare urllib GET to the server.
Targets: start -> first step < 3x `python -c pass`; peak RSS < 40 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agent.e2e.conftest import Service, build_pyz, signature_header

VM_ID = "4f2c9a1e-0000-4000-8000-00155d010203"


def serve(svc: Service) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.startswith("/metadata/instance"):
                self._send(200, json.dumps({"compute": {"vmId": VM_ID}}).encode())
            elif self.path.startswith("/v1/config/"):
                body = svc.documents[VM_ID]
                self._send(200, body, {"Vmprep-Signature": signature_header(svc.key, body)})
            else:
                self._send(200, b"ok")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self._send(202, b"{}")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    svc.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    return httpd


def timed(argv: list[str]) -> tuple[float, float, int, int]:
    """(start time, wall seconds, exit code, peak RSS KiB) of one child."""
    start = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return start, wall, proc.returncode, usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="vmprep-bench-"))
    pyz = build_pyz(work / "agent.pyz")
    svc = Service()
    httpd = serve(svc)
    stamp = work / "first-step"
    steps = []
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

    def agent_run() -> tuple[float, float, int, int]:
        state = work / "vmprep"
        if state.exists():
            subprocess.run(["rm", "-rf", str(state)], check=True)
        return timed(
            [
                py,
                "-I",
                str(pyz),
                "run",
                "--config",
                str(work / "agent.json"),
                "--state-dir",
                str(state),
            ]
        )

    get = f"import urllib.request; urllib.request.urlopen('{svc.base}/x').read()"
    pass_walls, get_walls, first_steps, full_walls, rss = [], [], [], [], []
    for _ in range(args.runs):
        pass_walls.append(timed([py, "-I", "-c", "pass"])[1])
        get_walls.append(timed([py, "-I", "-c", get])[1])
        start, wall, code, peak = agent_run()
        if code != 0:
            print(f"agent run failed with exit code {code}", file=sys.stderr)
            return 1
        first_steps.append(float(stamp.read_text()) - start)
        full_walls.append(wall)
        rss.append(peak)
    httpd.shutdown()

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:7.1f} ms"

    base = statistics.median(pass_walls)
    first = statistics.median(first_steps)
    peak_mb = max(rss) / 1024
    print(f"python -I -c pass            {ms(pass_walls)}")
    print(f"bare urllib GET (loopback)   {ms(get_walls)}")
    print(
        f"agent: start -> first step   {ms(first_steps)}   ({first / base:.2f}x python -c pass; target < 3x)"
    )
    print(f"agent: 20-step run finished  {ms(full_walls)}")
    print(f"agent: peak RSS              {peak_mb:7.1f} MB   (target < 40 MB)")
    print(f"(median of {args.runs} runs, Python {sys.version.split()[0]})")
    return 0 if first < 3 * base and peak_mb < 40 else 1


if __name__ == "__main__":
    raise SystemExit(main())
