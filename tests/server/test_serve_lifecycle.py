"""A real `vmprep serve` through the events a load balancer and an operator care about
(issue 17): the database going down and coming back, a graceful shutdown with a request in
flight, and `--workers`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.server.conftest import write_repo
from tests.server.postgres import Cluster
from vmprep.server.keys import write_keypair

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout=15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _report(instance_id: str = "i-1") -> dict[str, Any]:
    return {
        "apiVersion": "vmprep/v1",
        "kind": "StatusReport",
        "report_id": str(uuid.uuid4()),
        "instance_id": instance_id,
        "role": "web",
        "agent_version": "0.1.0",
        "state": "done",
        "sent_at": "2027-01-01T00:00:00Z",
        "steps": [],
    }


def _args(tmp_path, *extra: str) -> list[str]:
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "k")
    return [
        "--configs",
        str(configs),
        "--key",
        str(tmp_path / "k.pem"),
        "--data-dir",
        str(tmp_path / "d"),
        *extra,
    ]


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_a_database_outage_is_a_503_agents_retry_and_serve_recovers(tmp_path, serve_process):
    cluster = Cluster()  # its own: this test stops it
    try:
        server = serve_process(_args(tmp_path, "--store", cluster.migrated_database())).start()
        assert httpx.get(server.url + "/v1/config/web/i-1").status_code == 200
        assert httpx.get(server.url + "/readyz").json()["status"] == "ready"

        cluster.stop()
        answers = [httpx.get(server.url + "/v1/config/web/i-1", timeout=30) for _ in range(5)]
        answers += [
            httpx.post(server.url + "/v1/report/i-1", json=_report(), timeout=30) for _ in range(5)
        ]
        for r in answers:
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "5"  # vmprep/agent/retry.py waits that long
            assert r.headers["Vmprep-Error"] == "store-unavailable"
            assert "Traceback" not in r.text
        ready = httpx.get(server.url + "/readyz", timeout=30)
        assert ready.status_code == 503
        assert httpx.get(server.url + "/healthz").status_code == 200  # alive all the same
        # one line per 10 s interval, not one per request (the first 503 waits up to 5 s)
        assert 1 <= server.output().count("the store is unavailable, answering 503") <= 2
        assert "Traceback" not in server.output()

        cluster.start()
        assert wait_for(lambda: _ready(server.url))
        assert httpx.get(server.url + "/v1/config/web/i-1").status_code == 200
        r = httpx.post(server.url + "/v1/report/i-1", json=_report())
        assert r.status_code == 202
        assert r.json()["stored"] is True
    finally:
        cluster.destroy()


def test_sigterm_finishes_the_request_in_flight_then_exits(tmp_path, serve_process):
    server = serve_process(_args(tmp_path, "--shutdown-timeout", "20")).start()
    body = json.dumps(_report()).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/report/i-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10]
        )
        time.sleep(0.3)  # the request is in flight: headers read, body half sent
        server.signal(signal.SIGTERM)
        assert wait_for(lambda: "Shutting down" in server.output())
        with pytest.raises(httpx.TransportError):  # no longer accepting
            httpx.get(server.url + "/healthz", timeout=2)
        sock.sendall(body[10:])
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 202 ")
    assert b'"stored":true' in answer
    assert server.proc is not None
    # uvicorn re-raises the signal it caught once it has shut down: killed by SIGTERM, as
    # a service manager expects of a process it sent SIGTERM
    assert server.proc.wait(20) in (0, -signal.SIGTERM)


def test_workers_share_one_port_and_stop_together(tmp_path, serve_process, postgres):
    url = postgres.migrated_database()
    server = serve_process(_args(tmp_path, "--workers", "2", "--store", url)).start()
    assert server.proc is not None
    children = _children(server.proc.pid)
    assert len(children) == 2
    serials: dict[str, set[int]] = {}
    for n in range(30):
        iid = ("canary-1", "i-1", "i-2")[n % 3]  # canary-1 has its own document
        serial = httpx.get(server.url + f"/v1/config/web/{iid}").json()["serial"]
        serials.setdefault(iid, set()).add(serial)
    # one serial per document, whichever worker answered
    assert len(serials["canary-1"]) == len(serials["i-1"]) == 1
    assert serials["i-1"] == serials["i-2"] != serials["canary-1"]
    for n in range(20):
        r = httpx.post(server.url + f"/v1/report/i-{n}", json=_report(f"i-{n}"))
        assert r.status_code == 202
    os.kill(int(children[0]), signal.SIGKILL)  # a worker that dies is replaced
    assert wait_for(lambda: len(set(_children(server.proc.pid)) - {children[0]}) == 2)
    assert "exited with status -9; starting another" in server.output()
    children = _children(server.proc.pid)
    assert httpx.get(server.url + "/readyz").status_code == 200
    server.signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0
    for pid in children:
        assert not _alive(int(pid))


def _children(pid: int) -> list[str]:
    return subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_reports_only_service_needs_no_signing_key_and_refuses_fetches(tmp_path, serve_process):
    configs = write_repo(tmp_path / "configs")
    args = ["--configs", str(configs), "--data-dir", str(tmp_path / "d"), "--reports-only"]
    server = serve_process(args).start()
    r = httpx.get(server.url + "/v1/config/web/i-1")
    assert r.status_code == 404
    assert r.headers["Vmprep-Error"] == "reports-only"
    assert "only collects reports" in r.json()["error"]
    posted = httpx.post(server.url + "/v1/report/i-1", json=_report())
    assert posted.status_code == 202
    assert httpx.get(server.url + "/readyz").json()["reports_only"] is True
    assert "collecting reports only" in server.output()
    without = subprocess.run(
        [sys.executable, "-m", "vmprep", "serve", "--configs", str(configs)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert without.returncode == 2  # a service that serves configs needs its key
    assert "no signing key given" in without.stderr
