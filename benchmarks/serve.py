"""Many agents booting at once, against `vmprep serve` and against nginx serving `publish`.

    .venv/bin/python benchmarks/serve.py [--agents 10000] [--concurrency 200] [--storm 100000]

Starts a real `vmprep serve` (uvicorn, one process) and Debian's nginx (one worker) on
127.0.0.1, then drives each with a bounded asyncio client speaking raw HTTP/1.1 (one
connection per simulated agent, as a booting agent would open): phase 1 fetches the signed
config only; phase 2 is a full boot (fetch, then POST a status report on the same
connection); phase 3 fetches the published document and its .sig sidecar from nginx. Prints
requests/s, p50/p99 latency, errors, and the serve/nginx ratio. The client shares the CPU
with the servers, so these are lower bounds. Targets: 0 errors, p99 < 250 ms, and at least
1,500 signed config fetches/s from serve.

Then the re-image storm (benchmarks/storm.py; `--storm 0` skips it): `--storm` instances
booting within `--window` seconds, each fetching its document and sending its final report on
the agent's real retry schedule, against serve with 1 and 2 workers (`--workers`) on SQLite
and on PostgreSQL (a throwaway cluster, tests/server/postgres.py; skipped without Debian's
postgresql), and the fetch side (document + .sig) against nginx on the `publish` tree, the
ceiling each row is compared with. docs/scale.md holds a 100,000-instance run's table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.storm import HEADER, Storm, run_storm
from tests.server.nginx import NGINX, Nginx
from vmprep.server.keys import load_key, write_keypair
from vmprep.server.publish import publish
from vmprep.server.service import hash_token

TOKEN = "bench-fleet-token"
ROLE = """\
version: 1
kind: RoleConfig
role: web
variables: {site: contoso}
steps:
  - id: iis
    windows_feature: {names: [Web-Server, Web-Asp-Net45]}
  - id: site
    file: {path: 'C:\\inetpub\\site\\index.html', content: '<h1>contoso</h1>'}
  - id: reg
    registry: {key: 'HKLM\\SOFTWARE\\Contoso', name: Site, value: contoso}
instances:
"""


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    fetches: int = 0
    elapsed: float = 0.0
    server_cpu: float = float("nan")  # seconds of CPU the server used during the phase

    def row(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else float("nan")
        rps = len(lat) / self.elapsed
        fps = self.fetches / self.elapsed
        cpu = self.server_cpu / len(lat) * 1e6 if lat else float("nan")
        return (
            f"{self.name:<34} {len(lat):>7} {rps:>9.0f} {fps:>10.0f} {p50:>8.1f} {p99:>8.1f}"
            f" {self.errors:>6} {cpu:>9.0f}"
        )


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) of a process and its children, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == root or int(fields[1]) == root:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def _request(reader, writer, raw: bytes) -> tuple[int, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


def _get(host: str, path: str, *, token: bool) -> bytes:
    auth = f"Authorization: Bearer {TOKEN}\r\n" if token else ""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vmprep-agent/bench\r\n"
        f"Accept: application/json\r\nAccept-Encoding: identity\r\n{auth}\r\n"
    ).encode()


def _report(host: str, instance_id: str, serial: int) -> bytes:
    body = json.dumps(
        {
            "apiVersion": "vmprep/v1",
            "kind": "StatusReport",
            "report_id": str(uuid.uuid4()),
            "instance_id": instance_id,
            "role": "web",
            "computer_name": "WEB-" + instance_id[-6:].upper(),
            "agent_version": "0.1.0",
            "config_serial": serial,
            "state": "done",
            "boot": 1,
            "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "steps": [
                {"id": s, "source": "remote", "status": "done", "attempts": 1}
                for s in ("iis", "site", "reg")
            ],
            "error": None,
        }
    ).encode()
    return (
        f"POST /v1/report/{instance_id} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def run_agents(name, port, agents, concurrency, plan, server_pid) -> Result:
    """`plan(i)` -> list of (raw request, expected status, is a config fetch)."""
    result = Result(name)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(agents):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                result.errors += 1
                continue
            try:
                for raw, expected, is_fetch in plan(i):
                    t = time.perf_counter()
                    status, _ = await _request(reader, writer, raw)
                    result.latencies.append(time.perf_counter() - t)
                    if status != expected:
                        result.errors += 1
                    elif is_fetch:
                        result.fetches += 1
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.errors += 1
            finally:
                writer.close()

    start, cpu = time.perf_counter(), cpu_seconds(server_pid)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    result.server_cpu = cpu_seconds(server_pid) - cpu
    return result


def wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"vmprep serve exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("vmprep serve did not start")


def start_serve(tmp: Path, configs: Path, name: str, extra: list[str]):
    """A `vmprep serve` with its own data dir; (process, port, log file)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    argv = [sys.executable, "-m", "vmprep", "serve", "--configs", str(configs)]
    argv += ["--key", str(tmp / "key.pem"), "--data-dir", str(tmp / f"data-{name}")]
    argv += ["--poll", "0", "--tokens", str(tmp / "tokens"), "--port", str(port), *extra]
    log = open(tmp / f"serve-{name}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    wait_up(port, proc)
    return proc, port, log


def storms(args: argparse.Namespace, tmp: Path, configs: Path, ids: list[str]) -> int:
    """The re-image storm against each serve set-up and nginx; prints the table."""
    n = args.storm
    sids = [str(uuid.UUID(int=(1 << 64) + i)) for i in range(n)]
    cluster = None
    stores: list[tuple[str, str | None]] = [("SQLite", None)]
    try:
        from tests.server.postgres import Cluster, bin_dir

        if bin_dir() is None:
            raise RuntimeError("no pg_ctl/initdb (apt-get install -y postgresql)")
        cluster = Cluster()
        stores.append(("PostgreSQL", "pg"))
    except Exception as exc:  # noqa: BLE001 - any reason PostgreSQL cannot run: say it, go on
        print(f"storm: PostgreSQL skipped: {exc}", file=sys.stderr)
    setups = [
        (f"serve {label}, {workers} worker(s)", [store or "", str(workers)])
        for label, store in stores
        for workers in args.workers
    ]
    results: list[Storm] = []
    try:
        for name, (store, workers) in setups:
            # every simulated agent comes from 127.0.0.1, real ones from their own addresses
            extra = ["--workers", workers, "--max-connections-per-client", "0"]
            if store == "pg":
                assert cluster is not None
                extra += ["--store", cluster.migrated_database()]
            proc, port, log = start_serve(tmp, configs, f"storm{len(results)}", extra)
            try:
                host = f"127.0.0.1:{port}"
                req = urllib.request.Request(
                    f"http://{host}/v1/config/web/x", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                with urllib.request.urlopen(req) as answer:
                    serial = json.loads(answer.read())["serial"]

                def plan(i: int, host: str = host, serial: int = serial):
                    fetch = _get(host, f"/v1/config/web/{sids[i]}", token=True)
                    return [(fetch, 200)], [(_report(host, sids[i], serial), 202)]

                print(f"storm: {name} ...", file=sys.stderr, flush=True)
                results.append(
                    asyncio.run(
                        run_storm(name, port, n, plan, window=args.window, max_open=args.max_open)
                    )
                )
            finally:
                proc.terminate()
                proc.wait(30)
                log.close()
        ceiling = None
        if NGINX is not None:
            site = tmp / "site-storm"
            publish(configs, [load_key(tmp / "key.pem")], site)
            nginx = Nginx(site, tmp / "nginx-storm", workers=max(args.workers))
            try:
                nhost = f"127.0.0.1:{nginx.port}"

                def static(i: int):
                    path = "/v1/config/web/_role"
                    get = _get(nhost, path, token=False)
                    sig = _get(nhost, path + ".sig", token=False)
                    return [(get, 200), (sig, 200)], []

                label = f"nginx publish tree, {max(args.workers)} worker(s)"
                print(f"storm: {label} ...", file=sys.stderr, flush=True)
                ceiling = asyncio.run(
                    run_storm(
                        label, nginx.port, n, static, window=args.window, max_open=args.max_open
                    )
                )
            finally:
                nginx.stop()
    finally:
        if cluster is not None:
            cluster.destroy()
    print()
    print(
        f"re-image storm: {n} instances booting within {args.window:g} s, the agent's retry "
        f"policy (vmprep/agent/retry.py defaults), at most {args.max_open} open sockets, "
        f"{os.cpu_count()} CPUs (client included)"
    )
    print(HEADER)
    base = ceiling.fetches_per_s() if ceiling is not None else None
    for r in results:
        print(r.row(base))
    if ceiling is not None:
        print(ceiling.row(base))
    else:
        print("nginx is not installed: no ceiling (apt-get install -y nginx)")
    for r in [*results, *([ceiling] if ceiling else [])]:
        if r.kinds:
            print(f"  {r.name}: failed attempts: {dict(r.kinds.most_common())}")
    print(
        "fetch/s: documents (with their signature) per second between the first and last; "
        "docs s / reps s: seconds from the storm's start until every instance had its "
        "document / its final report accepted; errors: failed attempts, each retried"
    )
    return sum(r.gave_up for r in results) + (ceiling.gave_up if ceiling else 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--overrides", type=int, default=100, help="instances with their own doc")
    parser.add_argument("--storm", type=int, default=100_000, help="instances (0: no storm)")
    parser.add_argument("--window", type=float, default=60.0, help="storm boot window, seconds")
    parser.add_argument("--max-open", type=int, default=2000, help="client sockets at once")
    parser.add_argument(
        "--workers",
        type=lambda v: [int(w) for w in v.split(",")],
        default=[1, 2],
        help="serve worker counts for the storm, e.g. 1,2",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vmprep-bench-"))
    configs = tmp / "configs"
    configs.mkdir()
    ids = [str(uuid.UUID(int=i)) for i in range(args.agents)]
    own = "".join(
        f"  - match: {{instance_id: {ids[i]}}}\n    variables: {{site: own-{i}}}\n"
        for i in range(0, args.agents, max(1, args.agents // max(1, args.overrides)))
    )
    (configs / "web.yaml").write_text(ROLE + own if own else ROLE.replace("instances:\n", ""))
    write_keypair(tmp / "key")
    (tmp / "tokens").write_text(f"fleet {hash_token(TOKEN)}\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    argv = [sys.executable, "-m", "vmprep", "serve", "--configs", str(configs)]
    argv += ["--key", str(tmp / "key.pem"), "--data-dir", str(tmp / "data"), "--poll", "0"]
    argv += ["--tokens", str(tmp / "tokens"), "--port", str(port)]
    argv += ["--max-connections-per-client", "0"]  # every simulated agent is 127.0.0.1
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115
    serve = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    nginx = None
    try:
        wait_up(port, serve)
        host = f"127.0.0.1:{port}"
        fetch = [(_get(host, f"/v1/config/web/{i}", token=True), 200, True) for i in ids]
        r_fetch = asyncio.run(
            run_agents(
                "serve: signed fetch",
                port,
                args.agents,
                args.concurrency,
                lambda i: [fetch[i]],
                serve.pid,
            )
        )
        req = urllib.request.Request(
            f"http://{host}/v1/config/web/x", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(req) as answer:
            serial = json.loads(answer.read())["serial"]
        r_boot = asyncio.run(
            run_agents(
                "serve: boot (fetch + report)",
                port,
                args.agents,
                args.concurrency,
                lambda i: [fetch[i], (_report(host, ids[i], serial), 202, False)],
                serve.pid,
            )
        )
        r_nginx = None
        if NGINX is not None:
            publish(configs, [load_key(tmp / "key.pem")], tmp / "site")
            nginx = Nginx(tmp / "site", tmp / "nginx")
            nhost = f"127.0.0.1:{nginx.port}"
            own_docs = set(os.listdir(tmp / "site" / "v1" / "config" / "web"))

            def static(i: int):
                path = f"/v1/config/web/{ids[i] if ids[i] in own_docs else '_role'}"
                return [
                    (_get(nhost, path, token=False), 200, True),
                    (_get(nhost, path + ".sig", token=False), 200, False),
                ]

            r_nginx = asyncio.run(
                run_agents(
                    "nginx: publish tree (doc + .sig)",
                    nginx.port,
                    args.agents,
                    args.concurrency,
                    static,
                    nginx.proc.pid,
                )
            )
    finally:
        serve.terminate()
        serve.wait(10)
        log.close()
        if nginx is not None:
            nginx.stop()
    print(
        f"{args.agents} agents, concurrency {args.concurrency}, {os.cpu_count()} CPUs "
        "(client included), one server process each"
    )
    print(
        f"{'phase':<34} {'requests':>7} {'req/s':>9} {'fetches/s':>10} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'errors':>6} {'srv µs/req':>9}"
    )
    for r in (r_fetch, r_boot, r_nginx):
        if r is not None:
            print(r.row())
    fps = r_fetch.fetches / r_fetch.elapsed
    if r_nginx is not None:
        print(
            f"ratio serve/nginx config fetches/s: {fps / (r_nginx.fetches / r_nginx.elapsed):.2f}"
        )
    else:
        print("nginx is not installed: no baseline (apt-get install -y nginx)")
    p99 = max(sorted(r.latencies)[int(len(r.latencies) * 0.99) - 1] for r in (r_fetch, r_boot))
    ok = r_fetch.errors + r_boot.errors == 0 and p99 < 0.250 and fps >= 1500
    print(
        f"targets (0 errors, p99 < 250 ms, >= 1500 signed fetches/s): {'met' if ok else 'MISSED'}"
    )
    gave_up = 0
    try:
        if args.storm > 0:
            gave_up = storms(args, tmp, configs, ids)
            print(f"storm: {'every instance done' if gave_up == 0 else f'{gave_up} gave up'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok and gave_up == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
