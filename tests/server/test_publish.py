from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import verify, write_repo
from tests.server.nginx import NGINX, Nginx
from vmprep.server.keys import generate, load_key, write_keypair
from vmprep.server.publish import publish
from vmprep.server.repo import load_repository

DOCS = "v1/config"


def cli(configs, key, out) -> list[str]:
    return ["publish", "--configs", str(configs), "--key", str(key), "-o", str(out)]


@pytest.fixture
def keyfile(tmp_path) -> Path:
    write_keypair(tmp_path / "k")
    return tmp_path / "k.pem"


def test_publish_writes_every_role_and_instance_document_with_a_sidecar(
    run_vmprep, tmp_path, keyfile
):
    configs = write_repo(tmp_path / "configs")
    out = tmp_path / "site"
    r = run_vmprep(*cli(configs, keyfile, out))
    assert "published 3 document(s)" in r.stdout
    assert "skipped" in r.stderr
    assert "'WEB-EU-*': needs `vmprep serve`" in r.stderr
    key = load_key(keyfile)
    names = sorted(p.name for p in (out / DOCS / "web").iterdir())
    assert names == [
        "00-15-5d-01-02-03",
        "00-15-5d-01-02-03.sig",
        "_role",
        "_role.sig",
        "canary-1",
        "canary-1.sig",
    ]
    role = (out / DOCS / "web" / "_role").read_bytes()
    sidecar = (out / DOCS / "web" / "_role.sig").read_text()
    assert sidecar == f"keyid={key.key_id};sig={sidecar.split(';sig=')[1]}"
    assert sidecar.endswith("\n")
    assert verify(sidecar, role, key)
    doc = json.loads(role)
    assert doc["target"] == {"role": "web"}
    assert doc["kind"] == "InstanceConfig"
    canary = json.loads((out / DOCS / "web" / "canary-1").read_bytes())
    assert canary["target"] == {"role": "web", "instance_id": "canary-1"}
    assert canary["serial"] == doc["serial"]
    by_mac = json.loads((out / DOCS / "web" / "00-15-5d-01-02-03").read_bytes())
    assert by_mac["target"] == {"role": "web"}
    assert by_mac["steps"][-1]["id"] == "by-mac"


def test_each_run_has_a_higher_serial_and_replaces_the_tree_whole(tmp_path):
    configs = write_repo(tmp_path / "configs")
    out, keys = tmp_path / "site", [generate()]
    first = publish(configs, keys, out, now=1_800_000_000)
    (out / DOCS / "web" / "stale").write_text("x")
    second = publish(configs, keys, out, now=1_800_000_000)  # the same second: still higher
    assert second.serial == first.serial + 1
    assert not (out / DOCS / "web" / "stale").exists()
    assert json.loads((out / DOCS / "web" / "_role").read_bytes())["serial"] == second.serial
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "site"]  # no temp left


def test_the_tree_is_readable_by_a_web_server(tmp_path):
    """render's writer, in its public mode: 0755 directories' top, files 0666 less the umask
    (an overlay, by contrast, is 0700/0600: it holds secrets)."""
    import os
    import stat

    configs = write_repo(tmp_path / "configs")
    out = tmp_path / "site"
    umask = os.umask(0o022)
    try:
        publish(configs, [generate()], out)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / DOCS / "web" / "_role").stat().st_mode) == 0o644


def test_a_tree_that_cannot_be_written_is_a_precise_error_and_leaves_nothing(
    run_vmprep, tmp_path, keyfile
):
    configs = write_repo(tmp_path / "configs")
    (tmp_path / "file").write_text("not a directory")
    r = run_vmprep(*cli(configs, keyfile, tmp_path / "file" / "site"), expect=2)
    assert "error: cannot create" in r.stderr
    assert "file/site" in r.stderr
    assert "internal error" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "file", "k.pem", "k.pub"]


def test_base_prefix_and_a_rotation_signs_with_both_keys(tmp_path):
    configs = write_repo(tmp_path / "configs")
    old, new = generate(), generate()
    publish(configs, [old, new], tmp_path / "site", base="/fleet/prod/")
    body = (tmp_path / "site/fleet/prod" / DOCS / "web/_role").read_bytes()
    lines = (tmp_path / "site/fleet/prod" / DOCS / "web/_role.sig").read_text().splitlines()
    assert len(lines) == 2
    assert verify(lines[0], body, old)
    assert verify(lines[1], body, new)


def test_publish_refuses_a_foreign_directory_and_documents_with_secrets(
    run_vmprep, tmp_path, keyfile, monkeypatch
):
    configs = write_repo(tmp_path / "configs", sql=True)
    monkeypatch.setenv("TEST_JOIN_USER", "joiner")
    out = tmp_path / "site"
    r = run_vmprep(*cli(configs, keyfile, out), expect=1)
    assert "the sql/_role document holds secrets" in r.stderr
    assert not out.exists()
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    r = run_vmprep(
        *cli(configs, keyfile, foreign),
        "--allow-secrets",
        expect=2,
    )
    assert "was not written by `vmprep publish`" in r.stderr
    assert (foreign / "notes.txt").read_text() == "mine"
    run_vmprep(
        *cli(configs, keyfile, out),
        "--allow-secrets",
    )
    assert json.loads((out / DOCS / "sql/_role").read_bytes())["secrets"]["join_user"] == "joiner"


def test_a_published_document_carries_every_secret_its_role_declares(tmp_path, monkeypatch):
    """Baked steps may need any of them, and a static tree cannot ask (docs/protocol.md)."""
    configs = write_repo(tmp_path / "configs", sql=True)
    monkeypatch.setenv("TEST_JOIN_USER", "joiner")
    sql = configs / "roles" / "sql.yaml"
    sql.write_text(
        sql.read_text().replace("secrets:\n", "secrets:\n  svc: {env: TEST_JOIN_USER}\n"),
        encoding="utf-8",
    )
    out = tmp_path / "site"
    publish(configs, [generate()], out, allow_secrets=True)
    secrets = json.loads((out / DOCS / "sql/_role").read_bytes())["secrets"]
    assert sorted(secrets) == ["join_password", "join_user", "svc"]


def test_an_invalid_repository_is_refused_with_its_problems(run_vmprep, tmp_path, keyfile):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.yaml").write_text("version: 1\nkind: RoleConfig\n")
    r = run_vmprep(
        *cli(tmp_path / "c", keyfile, tmp_path / "o"),
        expect=1,
    )
    assert f"{tmp_path / 'c' / 'a.yaml'}:1:1: error:" in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install -y nginx)")
def test_nginx_serves_the_published_tree_as_the_protocol_expects(tmp_path):
    configs = write_repo(tmp_path / "configs")
    key = generate()
    result = publish(configs, [key], tmp_path / "site", base="fleet")
    server = Nginx(tmp_path / "site", tmp_path / "nginx")
    try:
        base = f"{server.url}/fleet/v1/config"
        # the agent's URL list: its own document where there is one, else the role's
        for instance, expected in (
            ("canary-1", {"role": "web", "instance_id": "canary-1"}),
            ("i-404", {"role": "web"}),
        ):
            for template in (f"{base}/web/{instance}", f"{base}/web/_role"):
                r = httpx.get(template, headers={"Accept": "application/json"})
                if r.status_code == 404:
                    continue
                assert r.status_code == 200
                assert "vmprep-signature" not in r.headers  # so the agent asks for the sidecar
                sig = httpx.get(template + ".sig")
                assert sig.status_code == 200
                assert verify(sig.text, r.content, key)
                doc = json.loads(r.content)
                assert doc["target"] == expected
                assert doc["serial"] == result.serial
                break
            else:
                pytest.fail(f"no document for {instance}")
        assert httpx.get(f"{base}/web/i-404.sig").status_code == 404
    finally:
        server.stop()
    assert load_repository(configs)  # the repository itself is untouched
