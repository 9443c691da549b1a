"""End-to-end fixtures: agent.pyz built by render's payload builder from this tree, a signing
config service on 127.0.0.1, and a fake machine (agent.json, /sys tree, boot id, reboots)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import vmprep

UUID = "4f2c9a1e-0000-4000-8000-00155d010203"


def _pyc(source: bytes, name: str, date_time: tuple[int, int, int, int, int, int]) -> bytes:
    """A timestamp .pyc that zipimport accepts for the `.py` entry with this date_time."""
    import importlib.util
    import marshal
    import struct

    mtime = int(time.mktime((*date_time, 0, 0, -1)))
    code = compile(source, name, "exec", dont_inherit=True)
    header = struct.pack("<III", 0, mtime & 0xFFFFFFFF, len(source) & 0xFFFFFFFF)
    return importlib.util.MAGIC_NUMBER + header + marshal.dumps(code)


def build_pyz(dest: Path, *, bytecode: bool = False) -> Path:
    """The payload exactly as `vmprep render` builds it. With `bytecode` (the benchmark's
    comparison only), a .pyc for this interpreter beside each .py: zipimport uses it when the
    magic number matches and falls back to the source otherwise."""
    from vmprep.render.payload import FIXED_TIME, build_zipapp, payload_files

    files = payload_files()
    if bytecode:
        for name, data in list(files.items()):
            if name.endswith(".py") and name != "__main__.py":
                files[name + "c"] = _pyc(data, name, FIXED_TIME)
    dest.write_bytes(build_zipapp(files))
    return dest


@pytest.fixture(scope="session")
def agent_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pyz(tmp_path_factory.mktemp("payload") / "agent.pyz")


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + base64.b64encode(raw).decode()


def signature_header(key: Ed25519PrivateKey, body: bytes) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_id = hashlib.sha256(raw).hexdigest()[:16]
    sig = base64.urlsafe_b64encode(key.sign(body)).decode().rstrip("=")
    return f"keyid={key_id};sig={sig}"


@dataclass
class Service:
    """A config service: signed documents per instance, reports collected."""

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    documents: dict[str, bytes] = field(default_factory=dict)  # instance id -> body
    signer: Ed25519PrivateKey | None = None  # sign with another key than the trusted one
    reports: list[dict[str, Any]] = field(default_factory=list)
    fetches: list[dict[str, str]] = field(default_factory=list)
    reports_at_reboot: list[list[dict[str, Any]]] = field(default_factory=list)
    down: bool = False  # answer 503 to everything
    failing_posts: int = 0  # answer this many more reports with 503
    vm_id: str | None = None  # answer Azure IMDS with this vmId
    base: str = ""

    def reboot_command(self) -> list[str]:
        """A reboot that tells the service, which notes the reports it had received by then."""
        url = f"{self.base}/_reboot"
        return [
            sys.executable,
            "-c",
            f"import urllib.request; urllib.request.urlopen({url!r}).read()",
        ]

    def publish(
        self, steps: list[dict[str, Any]], *, serial: int = 1, instance_id: str = UUID, **extra: Any
    ) -> bytes:
        now = time.time()
        doc = {
            "apiVersion": "vmprep/v1",
            "kind": "InstanceConfig",
            "serial": serial,
            "issued_at": rfc3339(now - 60),
            "expires_at": rfc3339(now + 3600),
            "target": {"role": "web", "instance_id": instance_id},
            "steps": steps,
            **extra,
        }
        body = json.dumps(doc).encode()
        self.documents[instance_id] = body
        return body

    @property
    def trusted(self) -> str:
        return public_key_text(self.key)

    def phone_home(self, **overrides: Any) -> dict[str, Any]:
        ph = {
            "url": [f"{self.base}/v1/config/{{role}}/{{instance_id}}"],
            "role": "web",
            "trusted_keys": [self.trusted],
            "allow_insecure_http": True,
            "report_url": f"{self.base}/v1/report/{{instance_id}}",
            "timeout": "5s",
            "retry": {"attempts": 3, "initial": "100ms", "max": "200ms"},
        }
        ph.update(overrides)
        return ph


def serve(svc: Service) -> ThreadingHTTPServer:
    """Serve `svc` on 127.0.0.1 (also Azure IMDS for `svc.vm_id`); sets `svc.base`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/_reboot":
                svc.reports_at_reboot.append(list(svc.reports))
                self._send(200, b"ok")
                return
            if self.path.startswith("/metadata/instance") and svc.vm_id:
                self._send(200, json.dumps({"compute": {"vmId": svc.vm_id}}).encode())
                return
            svc.fetches.append({"path": self.path, **dict(self.headers)})
            if svc.down:
                self._send(503)
                return
            parts = self.path.split("/")
            if len(parts) == 5 and parts[1:3] == ["v1", "config"] and parts[4] in svc.documents:
                body = svc.documents[parts[4]]
                sig = signature_header(svc.signer or svc.key, body)
                self._send(200, body, {"Content-Type": "application/json", "Vmprep-Signature": sig})
            else:
                self._send(404)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if svc.down or svc.failing_posts > 0:
                svc.failing_posts -= 1
                self._send(503, b'{"error": "down"}')
                return
            svc.reports.append(json.loads(body))
            self._send(202, b"{}", {"Content-Type": "application/json"})

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # many agents at once (crash test): no SYN retries

    httpd = Server(("127.0.0.1", 0), Handler)
    svc.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service()
    httpd = serve(svc)
    yield svc
    httpd.shutdown()
    httpd.server_close()


@dataclass
class Machine:
    """A fake instance: agent.json, a /sys tree for its identity, a boot id, a reboot recorder."""

    root: Path
    pyz: Path
    config: dict[str, Any]

    @property
    def state_dir(self) -> Path:
        return self.root / "vmprep"

    def _argv(self) -> list[str]:
        cfg = self.root / "agent.json"
        cfg.write_text(json.dumps(self.config))
        run = ["run", "--config", str(cfg), "--state-dir", str(self.state_dir)]
        return [sys.executable, "-I", str(self.pyz), *run]

    def run(self, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._argv(), capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def status(self) -> tuple[int, dict[str, Any]]:
        out = subprocess.run(
            [
                sys.executable,
                "-I",
                str(self.pyz),
                "status",
                "--state-dir",
                str(self.state_dir),
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.returncode, json.loads(out.stdout)

    def state(self, instance_id: str = UUID) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self.state_dir / "state" / f"{instance_id}.json").read_text()
        )
        return data

    def reboots(self) -> int:
        path = self.root / "reboots"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def reboot(self) -> None:
        boot = self.root / "boot_id"
        boot.write_text(str(int(boot.read_text()) + 1))

    def all_files_text(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in self.state_dir.rglob("*") if p.is_file()
        )


@pytest.fixture
def machine(tmp_path: Path, agent_pyz: Path) -> Callable[..., Machine]:
    def make(
        steps: list[dict[str, Any]], phone_home: dict[str, Any] | None = None, **extra: Any
    ) -> Machine:
        dmi = tmp_path / "sys/sys/class/dmi/id"
        dmi.mkdir(parents=True, exist_ok=True)
        (dmi / "product_uuid").write_text(UUID + "\n")
        (tmp_path / "boot_id").write_text("1")
        config = {
            "format": 1,
            "vmprep_version": vmprep.__version__,
            "image": {"name": "e2e", "os": "windows-server-2022", "architecture": "amd64"},
            "install_dir": str(tmp_path / "vmprep"),
            "identity": ["smbios-uuid"],
            "variables": {},
            "keep_answer_files": False,
            "answer_files": [],
            "log_level": "debug",
            "phone_home": phone_home,
            "steps": steps,
            "secrets": {},
            "platform_options": {
                "sys_root": str(tmp_path / "sys"),
                "boot_id_path": str(tmp_path / "boot_id"),
                "reboot_command": ["/bin/sh", "-c", f'echo reboot >> "{tmp_path / "reboots"}"'],
            },
        }
        config.update(extra)
        return Machine(tmp_path, agent_pyz, config)

    return make


def appender(step_id: str, path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "exec": {"argv": ["/bin/sh", "-c", f'echo {step_id} >> "{path}"']},
        **extra,
    }
