"""The agent under the Windows CPython against a `vmprep publish` tree served over HTTPS on
127.0.0.1 (issue #10, groups 2 and 4): the signed role-wide document and its `.sig` sidecar
from a plain static server, a baked `download` step from the same server checked by sha256,
and a download whose sha256 does not match refused."""

from __future__ import annotations

import hashlib
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.test_serve_process import _self_signed
from tests.windows.bench import Prefix, spec
from vmprep.server.keys import load_key, write_keypair
from vmprep.server.publish import publish

TOOL = b"\x00tool bytes\r\n" * 1000
ROLE = {
    "version": 1,
    "kind": "RoleConfig",
    "role": "web",
    "steps": [
        {
            "id": "static",
            "registry": {"key": "HKLM\\SOFTWARE\\Bench", "name": "From", "value": "tree"},
        }
    ],
}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A static HTTPS server on 127.0.0.1 over a published tree; (base URL, tree, CA file)."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "web.yaml").write_text(json.dumps(ROLE))
    write_keypair(tmp_path / "key")
    tree = tmp_path / "site"
    publish(configs, [load_key(tmp_path / "key.pem")], tree)
    (tree / "tools").mkdir()
    (tree / "tools" / "tool.bin").write_bytes(TOOL)
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tree), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", tmp_path, cert
    httpd.shutdown()
    httpd.server_close()


def steps(base: str, sha256: str) -> str:
    return (
        "    - id: tool\n"
        f"      download: {{url: '{base}/tools/tool.bin', sha256: '{sha256}',"
        " to: 'C:\\Tools\\tool.bin', ca_bundle: 'C:\\ProgramData\\vmprep\\site-ca.pem'}\n"
    )


def run(prefix: Prefix, base: str, tmp: Path, cert: Path, sha256: str) -> dict:
    r = prefix.render(spec("bench-static", steps(base, sha256)))
    ca = r.install_dir + "\\site-ca.pem"
    prefix.write(ca, cert.read_bytes())
    cfg = r.agent_json
    cfg["phone_home"] = {
        "url": [
            f"{base}/v1/config/{{role}}/{{instance_id}}",
            f"{base}/v1/config/{{role}}/_role",
        ],
        "role": "web",
        "trusted_keys": [load_key(tmp / "key.pem").public_form],
        "ca_bundle": ca,
        "timeout": "10s",
        "retry": {"attempts": 3, "initial": "100ms", "max": "300ms"},
    }
    cfg["identity"] = ["smbios-uuid"]
    prefix.write(r.config, json.dumps(cfg))
    prefix.run_agent()
    return json.loads(prefix.agent("status", "--config", r.config, "--format", "json").stdout)


@pytest.mark.slow
def test_a_published_tree_over_https_and_a_checked_download(
    prefix: Prefix, site: tuple[str, Path, Path]
) -> None:
    base, tmp, cert = site
    state = run(prefix, base, tmp, cert, hashlib.sha256(TOOL).hexdigest())
    assert state["state"] == "done", state
    assert prefix.read_bytes("C:\\Tools\\tool.bin") == TOOL
    assert prefix.reg_query("HKLM\\SOFTWARE\\Bench", "From") == {"From": ("REG_SZ", "tree")}
    statuses = {s["id"]: s["status"] for s in state["steps"]}
    assert statuses == {"tool": "done", "static": "done"}


@pytest.mark.slow
def test_a_download_whose_sha256_differs_is_refused_and_not_kept(
    prefix: Prefix, site: tuple[str, Path, Path]
) -> None:
    base, tmp, cert = site
    state = run(prefix, base, tmp, cert, "0" * 64)
    assert state["state"] == "failed", state
    assert not prefix.exists("C:\\Tools\\tool.bin")
    tool = next(s for s in state["steps"] if s["id"] == "tool")
    assert tool["status"] == "failed"
