"""What the agent's network half costs: a signed fetch against a bare GET, in the same run.

Run: `.venv/bin/python benchmarks/agent_fetch.py [--runs N]`. Medians, on 127.0.0.1:

- bare GET:        urllib.request.urlopen of the document             (the floor)
- fetch_config:    GET + Ed25519 verify (pure-Python ecdsa) + checks   target: floor + 30 ms
- verify only:     python-ecdsa vs cryptography on the same body      (what pure Python costs)
- 4 MiB body:      our capped, deadline-bounded read vs urllib's read  target: under 2x urllib
- import:          python -c "import vmprep.agent.fetch" against importing what any HTTP
                   client pays (http.client, ssl, json)                target: floor + 25 ms

Bytecode caching is on for the children (PYTHONDONTWRITEBYTECODE removed, one warm-up run).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vmprep.agent.fetch import fetch_config
from vmprep.agent.http import Session
from vmprep.agent.identity import Identity
from vmprep.agent.verify import parse_header, trusted_keys, verify

IDENTITY = Identity("4f2c9a1e-0000-4000-8000-00155d010203", "smbios-uuid", None, "BENCH")


def document(steps: int) -> bytes:
    now = time.time()

    def stamp(t: float) -> str:
        return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    doc = {
        "apiVersion": "vmprep/v1",
        "kind": "InstanceConfig",
        "serial": 42,
        "issued_at": stamp(now - 60),
        "expires_at": stamp(now + 3600),
        "target": {"role": "web", "instance_id": IDENTITY.instance_id},
        "variables": {"site": "contoso"},
        "steps": [{"id": f"s{i}", "cmd": f"echo step {i}"} for i in range(steps)],
    }
    return json.dumps(doc).encode()


def serve(routes: dict[str, tuple[bytes, dict[str, str]]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body, headers = routes[self.path]
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def process_ms(code: str, runs: int) -> float:
    argv = [sys.executable, "-c", code]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return median_ms(lambda: subprocess.run(argv, check=True, env=env), runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs

    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    public = "ed25519:" + base64.b64encode(raw).decode()
    keyid = hashlib.sha256(raw).hexdigest()[:16]
    body = document(20)
    sig = base64.urlsafe_b64encode(key.sign(body)).decode().rstrip("=")
    header = f"keyid={keyid};sig={sig}"
    big = b"x" * (4 * 1024 * 1024)
    path = f"/v1/config/web/{IDENTITY.instance_id}"
    httpd = serve({path: (body, {"Vmprep-Signature": header}), "/big": (big, {})})
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    phone_home = {
        "url": [base + "/v1/config/{role}/{instance_id}"],
        "role": "web",
        "trusted_keys": [public],
        "allow_insecure_http": True,
    }

    def fetch() -> None:
        outcome = fetch_config(
            phone_home,
            IDENTITY,
            role="web",
            token=None,
            last_completed_serial=None,
            accepted=None,
            agent_version="bench",
        )
        assert outcome.kind == "document", outcome

    def bare() -> None:
        with urllib.request.urlopen(base + path) as response:
            response.read()

    session = Session(timeout=30, allow_http=True)
    keys = trusted_keys([public])
    entries = parse_header(header)
    public_key = key.public_key()

    floor = median_ms(bare, runs)
    ours = median_ms(fetch, runs)
    ecdsa_ms = median_ms(lambda: verify(body, entries, keys), runs)
    crypto_ms = median_ms(lambda: public_key.verify(key.sign(body), body), runs)
    big_urllib = median_ms(lambda: urllib.request.urlopen(base + "/big").read(), max(5, runs // 3))
    big_ours = median_ms(
        lambda: session.request("GET", base + "/big", headers={}, max_bytes=len(big)),
        max(5, runs // 3),
    )
    bare_py = process_ms("import http.client, ssl, json", max(5, runs // 3))
    imported = process_ms("import vmprep.agent.fetch", max(5, runs // 3))
    httpd.shutdown()

    print(f"document: {len(body)} bytes, 20 steps; medians of {runs} runs")
    print(f"bare GET (urllib)          {floor:8.2f} ms")
    print(f"fetch_config (verify+check){ours:8.2f} ms   floor + {ours - floor:.2f} ms (target 30)")
    print(f"verify, python-ecdsa       {ecdsa_ms:8.2f} ms")
    print(f"sign+verify, cryptography  {crypto_ms:8.2f} ms")
    print(f"4 MiB body, urllib         {big_urllib:8.2f} ms")
    ratio = big_ours / big_urllib
    print(f"4 MiB body, agent http     {big_ours:8.2f} ms   {ratio:.2f}x urllib (target < 2x)")
    print(f"import http.client,ssl,json{bare_py:8.2f} ms")
    print(
        f"import vmprep.agent.fetch  {imported:8.2f} ms   +{imported - bare_py:.2f} ms (target 25)"
    )


if __name__ == "__main__":
    main()
