"""Slow clients and connection floods against `vmprep serve` at a 1024 open-file limit.

    .venv/bin/python benchmarks/serve_attack.py [--seconds 20] [--counts 1000,5000]

Starts a real `vmprep serve` on 127.0.0.1 with its open-file limit at 1024 soft AND hard (the
worst case: a service manager's default soft limit, and no room to raise it), then, for each
attack, one legitimate client fetches a signed document every 0.5 s from 127.0.0.1 while an
attacker on 127.0.0.2 (another loopback address) holds N connections:

- slow-headers: each sends one byte of a request's headers a second;
- slow-body:    complete headers announcing a 1,000-byte report, then one byte a second;
- flood:        connections opened and never written to.

The attacker re-opens what the server closes, for the whole run, and stops by itself. Prints
the legitimate client's success rate and p99 beside the run with no attack, and one run of
slow-headers against a server with the guard turned off (huge deadlines, no per-client cap):
what issue 22 measured before. Targets: >= 99 % success and p99 < 1 s under every attack.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serve import ROLE  # one role, as the fetch benchmark serves
from tests.server.conftest import free_port
from vmprep.server.keys import write_keypair

ATTACKER, LEGIT = "127.0.0.2", "127.0.0.1"
UNGUARDED = [
    "--header-timeout",
    "100000",
    "--body-timeout",
    "100000",
    "--max-connections-per-client",
    "0",
    "--max-connections",
    "1000000",
]


def start_serve(tmp: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, "-m", "vmprep", "serve", "--configs", str(tmp / "configs")]
    argv += ["--key", str(tmp / "k.pem"), "--data-dir", str(tmp / f"data-{port}")]
    argv += ["--port", str(port), *extra]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    log = open(tmp / f"serve-{port}.log", "wb")  # noqa: SIM115
    # No thread runs in this process while it forks (the attack's event loop is not started).
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit)  # noqa: PLW1509
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _answers(port):
            return proc, port
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"serve did not start: {(tmp / f'serve-{port}.log').read_text()}")


def _answers(port: int) -> bool:
    try:
        asyncio.run(fetch_once(port, 2.0))
    except OSError:
        return False
    return True


REQUEST = b"GET /v1/config/web/i-1 HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


async def fetch_once(port: int, timeout: float) -> float:
    started = time.perf_counter()

    async def go() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(LEGIT, 0))
        try:
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n")
            if b" 200 " not in head:
                raise OSError(head.decode(errors="replace").strip())
            await reader.read()
        finally:
            writer.close()

    await asyncio.wait_for(go(), timeout)
    return time.perf_counter() - started


async def legit(port: int, seconds: float) -> tuple[int, int, list[float]]:
    ok = total = 0
    latencies: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        total += 1
        try:
            latencies.append(await fetch_once(port, 5.0))
            ok += 1
        except (OSError, asyncio.TimeoutError):
            latencies.append(5.0)
        await asyncio.sleep(0.5)
    return ok, total, latencies


async def attacker(port: int, kind: str, count: int, seconds: float) -> None:
    end = time.monotonic() + seconds
    sem = asyncio.Semaphore(200)  # connect in waves, as a script would

    async def one() -> None:
        while time.monotonic() < end:
            try:
                async with sem:
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", port, local_addr=(ATTACKER, 0)
                    )
            except OSError:
                await asyncio.sleep(0.5)
                continue
            try:
                if kind == "slow-body":
                    writer.write(
                        b"POST /v1/report/i-1 HTTP/1.1\r\nHost: x\r\n"
                        b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
                    )
                trickle = b"GET /v1/config/web/i-1 HTTP/1.1\r\nX-Slow: " + b"a" * 10000
                i = 0
                while time.monotonic() < end and not reader.at_eof():
                    if kind != "flood":
                        writer.write(trickle[i : i + 1] if kind == "slow-headers" else b"x")
                        i += 1
                        await writer.drain()
                    try:
                        await asyncio.wait_for(reader.read(1024), 1.0)
                    except asyncio.TimeoutError:
                        continue
            except OSError:
                pass
            finally:
                writer.close()

    await asyncio.gather(*(one() for _ in range(count)))


async def scenario(port: int, kind: str, count: int, seconds: float) -> tuple[int, int, float]:
    tasks = []
    if kind != "none":
        tasks.append(asyncio.ensure_future(attacker(port, kind, count, seconds + 2)))
        await asyncio.sleep(2)  # let the attack build up
    ok, total, lat = await legit(port, seconds)
    for task in tasks:
        await task
    lat.sort()
    p99 = lat[max(0, int(len(lat) * 0.99) - 1)] if lat else float("nan")
    return ok, total, p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--counts", default="1000,5000")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attacker needs descriptors
    counts = [int(c) for c in args.counts.split(",")]
    rows = [("guarded", "none", 0)]
    rows += [("guarded", k, n) for n in counts for k in ("slow-headers", "slow-body", "flood")]
    rows.append(("unguarded", "slow-headers", counts[0]))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "configs").mkdir()
        (tmp / "configs" / "web.yaml").write_text(ROLE.replace("instances:\n", "instances: []\n"))
        write_keypair(tmp / "k")
        print(f"open-file limit of serve: 1024 soft and hard; {args.seconds:g} s per row")
        print(
            f"{'server':<10} {'attack':<13} {'conns':>6} {'legit ok':>9} {'rate':>7} {'p99 ms':>8}"
        )
        baseline = None
        for server, kind, count in rows:
            proc, port = start_serve(tmp, UNGUARDED if server == "unguarded" else [])
            try:
                ok, total, p99 = asyncio.run(scenario(port, kind, count, args.seconds))
            finally:
                proc.terminate()
                proc.wait(10)
            rate = ok / total * 100 if total else 0.0
            note = ""
            if baseline is None:
                baseline = p99
            elif server == "guarded":
                meets = rate >= 99 and p99 < 1.0
                note = f"  p99 {p99 / baseline:.1f}x no-attack; {'meets' if meets else 'MISSES'} target"
            print(
                f"{server:<10} {kind:<13} {count:>6} {ok:>4}/{total:<4} {rate:>6.1f}% "
                f"{p99 * 1000:>8.1f}{note}"
            )


if __name__ == "__main__":
    main()
