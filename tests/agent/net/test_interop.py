"""The agent's network half against a real `vmprep serve` process on 127.0.0.1.

The server signs with `cryptography`; the agent verifies with the pure-Python `ecdsa`. This
checks the two halves of docs/protocol.md against each other, not each against our reading of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import ServeProcess, write_repo
from vmprep.agent.fetch import FetchOutcome, fetch_config
from vmprep.agent.identity import Identity
from vmprep.agent.reportsender import Reporter
from vmprep.server.keys import generate, load_key, write_keypair
from vmprep.server.service import hash_token

FLEET = "fleet-token-for-tests"
ADMIN = "admin-token-for-tests"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, str]]:
    root = tmp_path_factory.mktemp("serve")
    configs = write_repo(root / "configs")
    write_keypair(root / "k")
    (root / "tokens").write_text(f"fleet {hash_token(FLEET)}\nadmin {hash_token(ADMIN)}\n")
    args = ["--configs", str(configs), "--key", str(root / "k.pem")]
    args += ["--data-dir", str(root / "data"), "--tokens", str(root / "tokens"), "--poll", "0"]
    server = ServeProcess(args).start()
    try:
        yield server, load_key(root / "k.pem").public_form
    finally:
        server.stop()


def phone_home(server: ServeProcess, public: str) -> dict[str, Any]:
    return {
        "url": [server.url + "/v1/config/{role}/{instance_id}"],
        "role": "web",
        "trusted_keys": [public],
        "timeout": "10s",
        "retry": {"attempts": 2, "initial": "100ms", "max": "1s"},
        "allow_insecure_http": True,
        "report_url": server.url + "/v1/report/{instance_id}",
    }


def fetch(cfg: dict[str, Any], identity: Identity, **kwargs: Any) -> FetchOutcome:
    args: dict[str, Any] = {
        "role": "web",
        "token": FLEET,
        "last_completed_serial": None,
        "accepted": None,
        "agent_version": "0.1.0",
    }
    args.update(kwargs)
    return fetch_config(cfg, identity, sleep=lambda _s: None, **args)


def test_fetch_verify_304_and_report_against_vmprep_serve(serve, tmp_path: Path):
    server, public = serve
    identity = Identity("canary-1", "ec2-imds", "00-15-5d-0a-0b-0c", "WEB-1")
    cfg = phone_home(server, public)

    first = fetch(cfg, identity)
    assert first.kind == "document", first.message
    assert first.document is not None
    assert first.document["target"] == {"role": "web", "instance_id": "canary-1"}
    assert first.document["variables"] == {"site": "canary"}
    serial = first.document["serial"]
    assert first.sha256 is not None

    again = fetch(cfg, identity, accepted=(serial, first.sha256))
    assert (again.kind, again.sha256) == ("document", first.sha256)
    assert fetch(cfg, identity, last_completed_serial=serial).kind == "not_modified"
    assert fetch(cfg, identity, token="wrong").error_code == "unauthorized"

    reporter = Reporter(
        cfg,
        identity,
        role="web",
        token=FLEET,
        spool_dir=tmp_path / "spool",
        agent_version="0.1.0",
        redact=lambda text: text,
    )
    steps = [{"id": "iis", "source": "remote", "status": "done", "attempts": 1, "reboots": 0}]
    report = {"state": "done", "boot": 1, "config_serial": serial, "steps": steps}
    assert reporter.send(report)
    assert not list((tmp_path / "spool").glob("*.json"))
    listing: dict[str, Any] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the service stores reports from a writer thread
        answer = httpx.get(
            server.url + "/v1/instances/canary-1", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        if answer.status_code == 200 and "done" in answer.text:
            listing = answer.json()
            break
        time.sleep(0.05)
    assert "done" in json.dumps(listing)


def test_role_wide_document_and_a_key_the_service_does_not_use(serve):
    server, public = serve
    identity = Identity("i-0abc", "ec2-imds", None, "WEB-2")
    cfg = phone_home(server, public)
    outcome = fetch(cfg, identity)
    assert outcome.kind == "document", outcome.message
    assert outcome.document is not None
    assert outcome.document["target"] == {"role": "web"}
    refused = fetch({**cfg, "trusted_keys": [generate().public_form]}, identity)
    assert (refused.kind, refused.error_code) == ("refused", "signature")


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """`vmprep publish` output (signed by two keys: a rotation) served by http.server."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from vmprep.server.publish import publish

    keys = [generate(), generate()]
    site = tmp_path / "site"
    publish(write_repo(tmp_path / "configs"), keys, site)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", [k.public_form for k in keys]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_static_tree_from_vmprep_publish_with_sidecars_and_url_list(static_site):
    base, publics = static_site
    cfg = {
        "url": [base + "/v1/config/{role}/{instance_id}", base + "/v1/config/{role}/_role"],
        "role": "web",
        "trusted_keys": [publics[1]],  # only the new key of the rotation is trusted
        "retry": {"attempts": 1},
        "allow_insecure_http": True,
    }
    canary = Identity("canary-1", "ec2-imds", None, "W")
    own = fetch(cfg, canary, token=None)
    assert own.kind == "document", own.message
    assert own.document is not None
    assert own.document["target"] == {"role": "web", "instance_id": "canary-1"}
    role_wide = fetch(cfg, Identity("i-0abc", "ec2-imds", None, "W"), token=None)
    assert role_wide.kind == "document", role_wide.message
    assert role_wide.document is not None
    assert role_wide.document["target"] == {"role": "web"}
    untrusted = fetch({**cfg, "trusted_keys": [generate().public_form]}, canary, token=None)
    assert (untrusted.kind, untrusted.error_code) == ("refused", "signature")
