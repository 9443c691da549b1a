"""A scriptable HTTP(S) server on 127.0.0.1, a signing key, and document builders."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from vmprep.agent.identity import Identity

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
IDENTITY = Identity(
    "4f2c9a1e-0000-4000-8000-00155d010203", "smbios-uuid", "00-15-5d-01-02-03", "WEB 1"
)


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "vmprep/v1",
        "kind": "InstanceConfig",
        "serial": 7,
        "issued_at": rfc3339(NOW - 60),
        "expires_at": rfc3339(NOW + 3600),
        "target": {"role": "web", "instance_id": IDENTITY.instance_id},
        "variables": {"site": "contoso"},
        "steps": [{"id": "hello", "cmd": "echo hi"}],
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def doc_bytes(**overrides: Any) -> bytes:
    return json.dumps(make_doc(**overrides)).encode()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_length: int | None = None  # sent instead of len(body)
    send_length: bool = True
    cut_after: int | None = None  # send this many body bytes, then close
    stall: float = 0.0  # after the headers (and cut_after bytes), wait this long
    chunked: bool = False


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Server:
    def __init__(self, tls: ssl.SSLContext | None = None, port: int = 0) -> None:
        self.routes: dict[str, list[Reply | Callable[[Seen], Reply]]] = {}
        self.requests: list[Seen] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                server.requests.append(seen)
                replies = server.routes.get(self.path)
                if not replies:
                    reply: Reply | Callable[[Seen], Reply] = Reply(404)
                else:
                    reply = replies.pop(0) if len(replies) > 1 else replies[0]
                if callable(reply):
                    reply = reply(seen)
                self.answer(reply)

            do_GET = do_POST = do_PUT = handle_any

            def answer(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                body = reply.body
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                elif reply.send_length:
                    length = reply.content_length
                    self.send_header("Content-Length", str(len(body) if length is None else length))
                self.send_header("Connection", "close")
                self.end_headers()
                if reply.cut_after is not None:
                    body = body[: reply.cut_after]
                if reply.chunked:
                    for i in range(0, len(body), 1000):
                        part = body[i : i + 1000]
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    if reply.cut_after is None:
                        self.wfile.write(b"0\r\n\r\n")
                else:
                    self.wfile.write(body)
                self.wfile.flush()
                if reply.stall:
                    server.release.wait(reply.stall)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def route(self, path: str, *replies: Reply | Callable[[Seen], Reply]) -> None:
        self.routes[path] = list(replies)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def server2() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Signer:
    def __init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.key = Ed25519PrivateKey.generate()
        self.raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public = "ed25519:" + base64.b64encode(self.raw).decode()
        self.keyid = hashlib.sha256(self.raw).hexdigest()[:16]

    def sig(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(self.key.sign(body)).decode().rstrip("=")

    def header(self, body: bytes) -> str:
        return f"keyid={self.keyid};sig={self.sig(body)}"


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer()


@pytest.fixture(scope="session")
def other_signer() -> Signer:
    return Signer()


class Clock:
    """Injected `now` and `sleep`: sleeping advances the clock, never the test."""

    def __init__(self, start: float = NOW) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class Pki:
    ca_file: Path
    context: ssl.SSLContext


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and a server certificate for 127.0.0.1, made now; the CA file is the ca_bundle."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def make_pki(tmp: Path, *, starts_in: dt.timedelta | None = None, ip: str = "127.0.0.1") -> Pki:
    """A CA and a server certificate for `ip`, valid from now (or `starts_in` from now)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vmprep test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + starts_in if starts_in else now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = tmp / "server.crt"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = tmp / "server.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key_file)
    return Pki(ca_file, context)


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[Server]:
    srv = Server(tls=pki.context)
    yield srv
    srv.close()
