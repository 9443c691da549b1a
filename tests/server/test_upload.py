"""`vmprep publish --to`: the publish tree in S3 (moto), Azure Blob (Azurite) and Google Cloud
Storage (gcp-storage-emulator), read back anonymously over HTTP the way an agent or a CDN does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server.conftest import verify, write_repo
from tests.server.objstore import Provider, start_provider
from vmprep.server.keys import generate, write_keypair
from vmprep.server.upload import parse_target, publish_to

pytestmark = pytest.mark.slow  # each provider starts its emulator once per module


@pytest.fixture(scope="module", params=["s3", "az", "gs"])
def provider(request, tmp_path_factory) -> Iterator[Provider]:
    started = start_provider(request.param, tmp_path_factory.mktemp(request.param))
    yield started
    started.emulator.stop()


@pytest.fixture
def store(provider: Provider, monkeypatch) -> Provider:
    for name, value in provider.env.items():
        monkeypatch.setenv(name, value)
    return provider


def prefix() -> str:
    return f"fleet-{uuid.uuid4().hex[:8]}"


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10)


def test_publish_to_uploads_every_document_after_its_sidecar_with_their_headers(
    store: Provider, run_vmprep, tmp_path
):
    configs = write_repo(tmp_path / "configs")
    key = write_keypair(tmp_path / "fleet")
    where = prefix()
    args = ["publish", "--configs", str(configs), "--key", str(tmp_path / "fleet.pem")]
    args += ["--to", store.target(where)]
    if store.endpoint:
        args += ["--endpoint-url", store.endpoint]
    out = run_vmprep(*args)
    assert "published 3 document(s)" in out.stdout
    assert "computer-name pattern" in out.stderr  # the WEB-EU-* override needs serve
    base = store.public_url(where)
    first = {}
    for name in ("_role", "canary-1", "00-15-5d-01-02-03"):
        rel = f"v1/config/web/{name}"
        body = get(f"{base}/{rel}")
        assert body.status_code == 200
        sidecar = get(f"{base}/{rel}.sig").text
        assert verify(sidecar, body.content, key)
        assert json.loads(body.content)["target"]["role"] == "web"
        assert store.head(f"{where}/{rel}") == ("application/json", "max-age=60")
        assert store.head(f"{where}/{rel}.sig") == ("text/plain", "no-cache")
        first[rel] = body.content
    manifest = json.loads(get(f"{base}/.vmprep-publish.json").content)
    assert store.head(f"{where}/.vmprep-publish.json") == ("application/json", "no-cache")
    assert sorted(manifest["documents"]) == sorted(first)
    assert manifest["retired"] == {}

    # A second run: a higher serial, and each sidecar also verifies the body it replaced, for
    # an agent that read the old document just before the new one was written.
    run_vmprep(*args)
    again = json.loads(get(f"{base}/.vmprep-publish.json").content)
    assert again["serial"] > manifest["serial"]
    for rel, old in first.items():
        new = get(f"{base}/{rel}").content
        assert new != old
        sidecar = get(f"{base}/{rel}.sig").text
        assert len(sidecar.splitlines()) == 2
        assert verify(sidecar, new, key)
        assert verify(sidecar, old, key)
    # a third: the sidecar keeps the live body's line only, it does not grow run after run
    run_vmprep(*args)
    assert len(get(f"{base}/v1/config/web/_role.sig").text.splitlines()) == 2


def test_a_document_no_longer_published_goes_once_stale_for_the_grace(store: Provider, tmp_path):
    configs = write_repo(tmp_path / "configs")
    keys, target = [generate()], parse_target(store.target(prefix()))
    kw: dict[str, Any] = {"endpoint_url": store.endpoint, "grace": 3600.0}
    t0 = 1_900_000_000.0
    publish_to(configs, keys, target, now=t0, **kw)
    web = configs / "roles" / "web.yaml"
    web.write_text(web.read_text().split("instances:")[0])  # the overrides go
    canary = f"{store.public_url(target.prefix)}/v1/config/web/canary-1"

    nested = parse_target(f"{store.target(target.prefix)}/eu")  # another tree inside it
    publish_to(configs, keys, nested, now=t0 + 30, endpoint_url=store.endpoint)
    done = publish_to(configs, keys, target, now=t0 + 60, **kw)
    gone = sorted(
        f"v1/config/web/{n}{s}" for n in ("canary-1", "00-15-5d-01-02-03") for s in ("", ".sig")
    )
    assert done.deleted == []
    assert sorted(done.kept_stale) == gone
    assert get(canary).status_code == 200
    assert get(canary + ".sig").status_code == 200
    # still stale an hour after it went stale (not after it was last written): deleted
    done = publish_to(configs, keys, target, now=t0 + 60 + 3600, **kw)
    assert sorted(done.deleted) == gone
    assert done.kept_stale == []
    assert get(canary).status_code == 404
    assert get(canary + ".sig").status_code == 404
    assert get(f"{store.public_url(target.prefix)}/v1/config/web/_role").status_code == 200
    manifest = json.loads(get(f"{store.public_url(target.prefix)}/.vmprep-publish.json").content)
    assert manifest["retired"] == {}
    assert manifest["documents"] == ["v1/config/web/_role"]
    nested_doc = f"{store.public_url(nested.prefix)}/v1/config/web/_role"
    assert get(nested_doc).status_code == 200  # never stale for the outer tree


def test_publish_to_refuses_a_prefix_it_did_not_write(store: Provider, run_vmprep, tmp_path):
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "fleet")
    where = prefix()
    store.put(f"{where}/index.html", b"<html></html>")
    args = ["publish", "--configs", str(configs), "--key", str(tmp_path / "fleet.pem")]
    args += ["--to", store.target(where)]
    if store.endpoint:
        args += ["--endpoint-url", store.endpoint]
    out = run_vmprep(*args, expect=2)
    assert "not written by `vmprep publish`" in out.stderr
    assert get(f"{store.public_url(where)}/index.html").status_code == 200


def test_a_missing_bucket_is_an_external_failure_without_a_traceback(
    store: Provider, run_vmprep, tmp_path
):
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "fleet")
    args = ["publish", "--configs", str(configs), "--key", str(tmp_path / "fleet.pem")]
    args += ["--to", f"{store.scheme}://vmprep-missing/fleet"]
    if store.endpoint:
        args += ["--endpoint-url", store.endpoint]
    out = run_vmprep(*args, expect=4)
    assert out.stderr.startswith("error: ")
    assert "vmprep-missing" in out.stderr
    assert "Traceback" not in out.stderr
