"""Issue 22: a real `vmprep serve` closes clients that trickle their request, caps
connections per client address with a fast 503, and keeps serving everybody else."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.server.conftest import write_repo
from vmprep.server.keys import write_keypair

ATTACKER = "127.0.0.2"  # all of 127.0.0.0/8 is loopback on Linux: another client address


@pytest.fixture
def serve(tmp_path, serve_process):
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "k")

    def make(*extra: str):
        args = ["--configs", str(configs), "--key", str(tmp_path / "k.pem")]
        return serve_process([*args, "--data-dir", str(tmp_path / "data"), *extra]).start()

    return make


def connect(port: int, source: str = ATTACKER) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    return s


def closed_by_server(s: socket.socket, within: float = 15.0) -> bytes:
    """What the server sent before it closed the connection (waits at most `within`)."""
    s.settimeout(within)
    got = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return got
        got += chunk


def test_a_client_that_trickles_its_headers_gets_408_and_is_closed(serve):
    server = serve("--header-timeout", "1")
    with connect(server.port) as s:
        s.sendall(b"GET /v1/config/web/i-1 HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        started = time.monotonic()
        answer = closed_by_server(s)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 10  # a bound, not a measurement: it was 1 s
    assert "did not send its request headers in time" in server.output()


def test_a_client_that_trickles_its_body_is_closed(serve):
    server = serve("--body-timeout", "1")
    with connect(server.port) as s:
        s.sendall(
            b"POST /v1/report/i-1 HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 100\r\n\r\n{"
        )
        assert closed_by_server(s) == b""
    assert "did not send its request body in time" in server.output()
    assert "Traceback" not in server.output()


def test_connections_past_the_per_client_cap_get_a_fast_503_and_others_are_served(serve):
    server = serve("--max-connections-per-client", "5", "--header-timeout", "30")
    held = [connect(server.port) for _ in range(5)]
    try:
        time.sleep(0.2)  # let the server count them
        with connect(server.port) as extra:
            answer = closed_by_server(extra)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"retry-after: 1" in answer.lower()
        r = httpx.get(server.url + "/v1/config/web/i-1", timeout=10)  # from 127.0.0.1
        assert r.status_code == 200
    finally:
        for s in held:
            s.close()
    assert "--max-connections-per-client" in server.output()


@pytest.mark.slow
def test_a_kept_alive_connection_gets_a_fresh_header_deadline_per_request(serve):
    server = serve("--header-timeout", "2")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(3):  # 3 requests over one connection, more than 2 s in all
            assert client.get("/v1/config/web/i-1").status_code == 200
            time.sleep(0.8)


def test_the_open_file_soft_limit_is_raised_to_the_hard_one():
    import resource
    import subprocess
    import sys

    code = (
        "import resource;"
        "from vmprep.server.guard import raise_open_file_limit as r;"
        "print(r()[0], resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 1024:
        pytest.skip(f"needs a finite hard limit above 1024 (have {hard})")

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, preexec_fn=lower
    ).stdout.split()
    assert out == [str(hard), str(hard)]
