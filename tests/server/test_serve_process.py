"""`vmprep serve` as a real process on 127.0.0.1: reloads, restarts, `vmprep status`."""

from __future__ import annotations

import ipaddress
import json
import re
import signal
import ssl
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.server.conftest import verify, write_repo
from vmprep.server.keys import load_key, write_keypair
from vmprep.server.service import hash_token

ADMIN = "admin-secret-token"


@pytest.fixture
def setup(tmp_path, serve_process):
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "k")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# who may list\nadmin {hash_token(ADMIN)}\n")

    def make(*extra: str):
        args = ["--configs", str(configs), "--key", str(tmp_path / "k.pem")]
        args += ["--data-dir", str(tmp_path / "data"), "--tokens", str(tokens), *extra]
        return serve_process(args)

    return configs, load_key(tmp_path / "k.pem"), make


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_real_server_signs_reloads_on_sighup_and_keeps_the_last_good_repository(setup):
    configs, key, make = setup
    server = make("--poll", "0").start()
    r = httpx.get(server.url + "/v1/config/web/i-1")
    assert r.status_code == 200
    assert verify(r.headers["vmprep-signature"], r.content, key)
    assert r.json()["variables"] == {"site": "contoso"}
    web = configs / "roles" / "web.yaml"
    good = web.read_text()
    web.write_text(good.replace("  - id: iis\n", "  - id: iis\n    bogus: true\n"))
    server.signal(signal.SIGHUP)
    assert wait_for(lambda: "still serving the previous one" in server.output())
    assert re.search(rf"{web}:\d+:\d+: error: .*bogus", server.output())  # placed
    assert httpx.get(server.url + "/v1/config/web/i-1").json()["variables"] == {"site": "contoso"}
    web.write_text(good.replace("site: contoso", "site: fabrikam"))
    server.signal(signal.SIGHUP)
    assert wait_for(
        lambda: (
            httpx.get(server.url + "/v1/config/web/i-1").json()["variables"] == {"site": "fabrikam"}
        )
    )


def test_file_changes_are_picked_up_by_the_poll(setup):
    configs, _, make = setup
    server = make("--poll", "0.1").start()
    first = httpx.get(server.url + "/v1/config/web/i-1").json()
    web = configs / "roles" / "web.yaml"
    web.write_text(web.read_text().replace("site: contoso", "site: polled"))
    assert wait_for(
        lambda: (
            httpx.get(server.url + "/v1/config/web/i-1").json()["variables"] == {"site": "polled"}
        )
    )
    assert httpx.get(server.url + "/v1/config/web/i-1").json()["serial"] > first["serial"]


@pytest.mark.slow
def test_a_restart_serves_the_same_bytes_and_keeps_the_reports(setup, run_vmprep):
    _, _, make = setup
    server = make().start()
    before = httpx.get(server.url + "/v1/config/web/i-1")
    rep = {
        "apiVersion": "vmprep/v1",
        "kind": "StatusReport",
        "report_id": str(uuid.uuid4()),
        "instance_id": "i-1",
        "role": "web",
        "agent_version": "0.1.0",
        "config_serial": before.json()["serial"],
        "state": "done",
        "sent_at": "2026-11-25T10:03:12Z",
        "steps": [{"id": "iis", "source": "remote", "status": "done"}],
    }
    assert httpx.post(server.url + "/v1/report/i-1", json=rep).status_code == 202
    server.stop()
    server = make().start()
    after = httpx.get(server.url + "/v1/config/web/i-1")
    assert after.content == before.content
    assert after.headers["vmprep-signature"] == before.headers["vmprep-signature"]
    out = run_vmprep("status", "--server", server.url, "--token", ADMIN, "--format", "json")
    (inst,) = json.loads(out.stdout)["instances"]
    assert inst["instance_id"] == "i-1"
    assert inst["steps"] == {"done": 1, "failed": 0, "total": 1}
    table = run_vmprep("--no-color", "status", "--server", server.url, "--token", ADMIN).stdout
    assert "i-1" in table
    assert "1/1" in table
    assert "s ago" in table
    bad = run_vmprep("status", "--server", server.url, "--token", "wrong", expect=4)
    assert "HTTP 403: this token is not accepted here" in bad.stderr


def test_status_against_a_server_without_an_admin_token_says_to_configure_one(
    run_vmprep, tmp_path, serve_process
):
    # No token passed here can help: the hint must point at the server's --tokens file.
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "k")
    args = ["--configs", str(configs), "--key", str(tmp_path / "k.pem")]
    server = serve_process([*args, "--data-dir", str(tmp_path / "data")]).start()
    bad = run_vmprep("status", "--server", server.url, "--token", ADMIN, expect=4)
    assert "HTTP 403: no admin token is configured on this server" in bad.stderr
    assert "hint: start `vmprep serve` with --tokens FILE" in bad.stderr
    assert "pass the admin token" not in bad.stderr


def test_an_invalid_repository_at_start_exits_1_with_every_problem(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.yaml").write_text("version: 1\nkind: RoleConfig\nrole: web\nttl: 1s\n")
    write_keypair(tmp_path / "k")
    argv = [sys.executable, "-m", "vmprep", "serve", "--configs", str(tmp_path / "c")]
    argv += ["--key", str(tmp_path / "k.pem"), "--data-dir", str(tmp_path / "d"), "--port", "0"]
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert f"{tmp_path / 'c' / 'a.yaml'}:4:1: error: ttl must be at least 60 seconds" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "d").exists()  # the refused start left no empty store behind


def test_status_says_when_it_cannot_connect(run_vmprep):
    from tests.server.conftest import free_port

    r = run_vmprep("status", "--server", f"http://127.0.0.1:{free_port()}", expect=4)
    assert "cannot connect" in r.stderr


def _self_signed(tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tmp_path / "cert.pem", tmp_path / "tls.key"


def test_serve_speaks_tls_with_a_certificate_and_key(tmp_path, serve_process, monkeypatch):
    configs = write_repo(tmp_path / "configs", sql=True)
    write_keypair(tmp_path / "k")
    cert, tls_key = _self_signed(tmp_path)
    args = ["--configs", str(configs), "--key", str(tmp_path / "k.pem")]
    args += ["--data-dir", str(tmp_path / "d"), "--certfile", str(cert), "--keyfile", str(tls_key)]
    server = serve_process(args, env={"TEST_JOIN_USER": "joiner"})
    server.url = server.url.replace("http://", "https://")
    ctx = ssl.create_default_context(cafile=str(cert))
    server.start_kwargs = {"verify": ctx}
    server.start()
    r = httpx.get(server.url + "/v1/config/sql/db-1", verify=ctx)
    assert r.status_code == 200
    assert r.json()["secrets"]["join_user"] == "joiner"
    assert verify(r.headers["vmprep-signature"], r.content, load_key(tmp_path / "k.pem"))


def test_a_taken_port_is_a_clear_error(tmp_path):
    import socket

    write_keypair(tmp_path / "k")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [
            sys.executable,
            "-m",
            "vmprep",
            "serve",
            "--configs",
            str(write_repo(tmp_path / "c")),
        ]
        argv += [
            "--key",
            str(tmp_path / "k.pem"),
            "--data-dir",
            str(tmp_path / "d"),
            "--port",
            str(port),
        ]
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 4
    assert f"error: could not serve on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_status_watch_refreshes_until_interrupted(setup):
    _, _, make = setup
    server = make().start()
    argv = [sys.executable, "-m", "vmprep", "status", "--server", server.url, "--watch"]
    argv += ["--token", ADMIN, "--format", "json"]
    # A handler (not SIG_IGN) in this process while the child starts: exec resets it to the
    # default there. Under nohup or a CI runner that ignores SIGINT, the child would inherit
    # the ignore and never see the Ctrl-C below.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:  # never leave the watcher running into the next test
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert out.count('"instances"') >= 2
    assert "Traceback" not in err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_serving_anonymously_on_a_reachable_address_is_refused(tmp_path, host):
    (tmp_path / "c").mkdir()
    write_keypair(tmp_path / "k")
    argv = [sys.executable, "-m", "vmprep", "serve", "--configs", str(tmp_path / "c")]
    argv += ["--key", str(tmp_path / "k.pem"), "--data-dir", str(tmp_path / "d")]
    argv += ["--host", host, "--port", "0"]
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert f"error: no fleet token configured, and --host {host} is reachable" in proc.stderr
    assert "hint: give --tokens FILE" in proc.stderr
    assert not (tmp_path / "d").exists()  # refused before the store is created


def test_anonymous_serving_stays_open_on_loopback():
    from vmprep.server.serve import _is_loopback

    assert _is_loopback("127.0.0.1")
    assert _is_loopback("::1")
    assert _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0")
    assert not _is_loopback("config.example.com")
