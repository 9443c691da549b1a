"""The real POSIX step kinds: file, download, env, wait_for, exec/cmd edge cases."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vmprep.agent.logs import Log
from vmprep.agent.platform.posix import PosixPlatform
from vmprep.agent.secrets import Vault
from vmprep.agent.steps import StepContext, StepError, runner

PAYLOAD = b"tool bytes " * 1000
SEEN: list[dict[str, str]] = []


def make_ctx(tmp: Path, **options) -> StepContext:
    return StepContext(
        platform=PosixPlatform(tmp, options),
        vault=Vault({"h": "hv", "c": "c0ntent"}),
        log=Log(None, echo=None),
        state_dir=tmp,
        options=options,
    )


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            SEEN.append(dict(self.headers))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://example.invalid/x")
                self.end_headers()
                return
            body = PAYLOAD if self.path == "/tool" else json.dumps(dict(self.headers)).encode()
            self.send_response(200 if self.path != "/missing" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_file_writes_atomically_and_respects_overwrite(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    target = tmp_path / "a" / "b.txt"
    assert runner("file")({"path": str(target), "content": {"secret": "c"}}, ctx).ok
    assert target.read_text() == "c0ntent"
    assert runner("file")(
        {"path": str(target), "content": "aGk=", "encoding": "base64", "overwrite": False}, ctx
    ).ok
    assert target.read_text() == "c0ntent"
    assert runner("file")({"path": str(target), "content": "aGk=", "encoding": "base64"}, ctx).ok
    assert target.read_bytes() == b"hi"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.txt"]


@pytest.mark.parametrize(
    ("path", "why"), [("relative/x", "not absolute"), ("/tmp/../etc/x", "contains '..'")]
)
def test_file_refuses_bad_paths(tmp_path: Path, path: str, why: str) -> None:
    with pytest.raises(StepError, match=why):
        runner("file")({"path": path, "content": "x"}, make_ctx(tmp_path))


def test_file_refuses_bad_base64(tmp_path: Path) -> None:
    with pytest.raises(StepError, match="not valid base64"):
        runner("file")(
            {"path": str(tmp_path / "x"), "content": "***", "encoding": "base64"},
            make_ctx(tmp_path),
        )


def test_download_verifies_then_moves_into_place(tmp_path: Path, server: str) -> None:
    ctx = make_ctx(tmp_path, allow_http_downloads_from_loopback=True)
    target = tmp_path / "dl" / "tool.msi"
    body = {
        "url": f"{server}/tool",
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
        "to": str(target),
    }
    out = runner("download")(body, ctx)
    assert out.ok
    assert target.read_bytes() == PAYLOAD
    assert "already present" in runner("download")(body, ctx).output


def test_download_sha_mismatch_leaves_nothing(tmp_path: Path, server: str) -> None:
    ctx = make_ctx(tmp_path, allow_http_downloads_from_loopback=True)
    target = tmp_path / "dl" / "tool.msi"
    with pytest.raises(StepError, match="sha256 mismatch"):
        runner("download")({"url": f"{server}/tool", "sha256": "0" * 64, "to": str(target)}, ctx)
    assert list(target.parent.iterdir()) == []


def test_download_sends_secret_headers(tmp_path: Path, server: str) -> None:
    ctx = make_ctx(tmp_path, allow_http_downloads_from_loopback=True)
    target = tmp_path / "h.bin"
    SEEN.clear()
    body = {
        "url": f"{server}/tool",
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
        "to": str(target),
    }
    assert runner("download")({**body, "headers": {"X-Token": {"secret": "h"}}}, ctx).ok
    assert SEEN[-1]["X-Token"] == "hv"
    assert SEEN[-1]["Accept-Encoding"] == "identity"


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("http://example.com/x", {"allow_http_downloads_from_loopback": True}),
        ("http://127.0.0.1:1/x", {}),
        ("ftp://example.com/x", {}),
    ],
)
def test_download_is_https_only(tmp_path: Path, url: str, options) -> None:
    with pytest.raises(StepError, match="must be https"):
        runner("download")(
            {"url": url, "sha256": "0" * 64, "to": str(tmp_path / "x")},
            make_ctx(tmp_path, **options),
        )


def test_download_refuses_a_redirect_to_plain_http(tmp_path: Path, server: str) -> None:
    ctx = make_ctx(tmp_path, allow_http_downloads_from_loopback=True)
    with pytest.raises(StepError, match=r"must be https: http://example\.invalid/x"):
        runner("download")(
            {"url": f"{server}/redirect", "sha256": "0" * 64, "to": str(tmp_path / "x")}, ctx
        )


def test_env_process_and_persisted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("VMPREP_A", raising=False)
    monkeypatch.delenv("VMPREP_B", raising=False)
    ctx = make_ctx(tmp_path)
    runner("env")({"name": "VMPREP_A", "value": "1", "scope": "process"}, ctx)
    runner("env")({"name": "VMPREP_B", "value": "2"}, ctx)
    assert os.environ["VMPREP_A"] == "1"
    assert os.environ["VMPREP_B"] == "2"
    assert json.loads((tmp_path / "environment.json").read_text()) == {"VMPREP_B": "2"}
    runner("env")({"name": "VMPREP_B", "state": "absent"}, ctx)
    assert "VMPREP_B" not in os.environ
    assert json.loads((tmp_path / "environment.json").read_text()) == {}


def test_wait_for_path_tcp_http(tmp_path: Path, server: str) -> None:
    ctx = make_ctx(tmp_path)
    ctx.timeout = 10
    marker = tmp_path / "ready"
    threading.Timer(0.2, marker.touch).start()
    assert runner("wait_for")({"path": str(marker), "interval": "50ms"}, ctx).ok
    port = server.rsplit(":", 1)[1]
    assert runner("wait_for")({"tcp": f"127.0.0.1:{port}"}, ctx).ok
    assert runner("wait_for")({"http": f"{server}/tool"}, ctx).ok


def test_wait_for_gives_up(tmp_path: Path, server: str) -> None:
    ctx = make_ctx(tmp_path)
    ctx.timeout = 0.3
    with pytest.raises(StepError, match=r"still waiting after 0\.3s"):
        runner("wait_for")({"http": f"{server}/missing", "interval": "50ms"}, ctx)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(StepError, match="still waiting"):
        runner("wait_for")({"tcp": f"127.0.0.1:{port}", "interval": "50ms"}, ctx)


def test_posix_refuses_windows_kinds_clearly(tmp_path: Path) -> None:
    p = PosixPlatform(tmp_path, {})
    for kind in (
        "powershell",
        "msi",
        "registry",
        "windows_feature",
        "service",
        "rename_computer",
        "join_domain",
        "local_user",
    ):
        assert (
            p.unsupported(kind, {}) == f"'{kind}' steps are not supported on this platform (posix)"
        )
    assert "not supported on this platform" in (p.unsupported("wait_for", {"service": "x"}) or "")
    assert p.unsupported("wait_for", {"path": "/x"}) is None


def test_exec_env_cwd_and_success_codes(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    out = runner("exec")(
        {
            "argv": ["/bin/sh", "-c", 'pwd; echo "$H"; exit 5'],
            "cwd": str(tmp_path),
            "env": {"H": {"secret": "h"}},
            "success_exit_codes": [5],
        },
        ctx,
    )
    assert out.ok
    assert out.exit_code == 5
    assert out.output == f"{tmp_path}\nhv\n"


def test_output_tail_keeps_the_last_4k(tmp_path: Path) -> None:
    out = runner("cmd")(
        "i=0; while [ $i -lt 3000 ]; do echo line$i; i=$((i+1)); done", make_ctx(tmp_path)
    )
    assert len(out.output.encode()) <= 4096
    assert out.output.endswith("line2999\n")


def test_a_background_child_holding_the_pipe_does_not_hold_the_step(tmp_path: Path) -> None:
    import time

    started = time.monotonic()
    out = runner("cmd")("echo before; sleep 5 & echo after", make_ctx(tmp_path))
    assert out.ok
    assert time.monotonic() - started < 4.5  # the background sleep lasts 5 s
    assert out.output == "before\nafter\n"
