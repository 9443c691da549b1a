from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ecdsa
import httpx
import pytest

from vmprep.server.keys import SigningKey, generate

WEB = """\
version: 1
kind: RoleConfig
role: web
ttl: 1h
variables: {site: contoso}
steps:
  - id: iis
    windows_feature: {names: [Web-Server]}
  - id: banner
    file: {path: 'C:\\banner.txt', content: hello}
instances:
  - match: {instance_id: canary-1}
    variables: {site: canary}
    steps:
      - id: canary-banner
        file: {path: 'C:\\canary.txt', content: canary}
      - id: extra
        reboot: {}
  - match: {mac: 00-15-5d-01-02-03}
    steps:
      - {id: by-mac, reboot: {}}
  - match: {name: 'WEB-EU-*'}
    steps:
      - {id: by-name, reboot: {}}
"""

SQL = """\
version: 1
kind: RoleConfig
role: sql
secrets:
  join_user: {env: TEST_JOIN_USER}
  join_password: {file: join.txt}
steps:
  - id: join
    join_domain: {domain: corp.example, credentials: remote}
"""


def write_repo(root: Path, *, sql: bool = False) -> Path:
    (root / "roles").mkdir(parents=True, exist_ok=True)
    (root / "roles" / "web.yaml").write_text(WEB, encoding="utf-8")
    if sql:
        (root / "roles" / "sql.yaml").write_text(SQL, encoding="utf-8")
        (root / "roles" / "join.txt").write_text("s3cret-P@ss\n", encoding="utf-8")
    return root


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    return write_repo(tmp_path / "configs")


@pytest.fixture
def key() -> SigningKey:
    return generate()


def verify(header: str, body: bytes, key: SigningKey | bytes) -> bool:
    """Check a Vmprep-Signature value the way the agent does, with the pure-Python ecdsa."""
    raw = key if isinstance(key, bytes) else key.raw_public
    vk = ecdsa.VerifyingKey.from_string(raw, curve=ecdsa.curves.Ed25519)
    for entry in header.replace("\n", ",").split(","):
        params = dict(p.strip().split("=", 1) for p in entry.split(";") if "=" in p)
        if "sig" not in params:
            continue
        sig = base64.urlsafe_b64decode(params["sig"] + "=" * (-len(params["sig"]) % 4))
        try:
            if vk.verify(sig, body):
                return True
        except ecdsa.BadSignatureError:
            continue
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """A real `vmprep serve` on 127.0.0.1 (python -m vmprep serve ...)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_kwargs: dict[str, Any] = {}

    def start(self) -> ServeProcess:
        argv = [sys.executable, "-m", "vmprep", "serve", "--port", str(self.port), *self.args]
        Path(self.args_log()).parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.args_log(), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.output()}")
            try:
                r = httpx.get(self.url + "/healthz", timeout=1, **self.start_kwargs)
                if r.status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"serve did not come up: {self.output()}")

    def args_log(self) -> str:
        return str(Path(self.args[self.args.index("--data-dir") + 1]) / "serve.log")

    def output(self) -> str:
        return Path(self.args_log()).read_text(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log.close()


@pytest.fixture
def serve_process() -> Iterator[type[ServeProcess]]:
    started: list[ServeProcess] = []

    class Tracked(ServeProcess):
        def start(self) -> ServeProcess:
            started.append(self)
            return super().start()

    yield Tracked
    for proc in started:
        proc.stop()


class AppClient:
    """A synchronous client for the ASGI app in-process (httpx's ASGITransport)."""

    def __init__(
        self, app, base_url: str = "http://cfg.test", client: tuple[str, int] = ("10.9.9.9", 1)
    ):
        self.app, self.base_url, self.client = app, base_url, client

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, client=self.client)
        async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as c:
            return await c.request(method, url, **kwargs)

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        import asyncio

        return asyncio.run(self._request(method, url, **kwargs))

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """One throwaway PostgreSQL cluster for the session (tests/server/postgres.py)."""
    from tests.server.postgres import Cluster

    cluster = Cluster()
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_url(postgres) -> str:
    """A fresh database at this vmprep's schema version."""
    url: str = postgres.migrated_database()
    return url
