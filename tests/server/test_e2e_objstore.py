"""The real agent (`python -I agent.pyz run`) reads and verifies its signed document straight
from object storage — moto (S3), Azurite (Azure Blob), gcp-storage-emulator (GCS) — with
anonymous reads, as from a CDN in front of a public-read bucket, and reports to a loopback
`vmprep serve --reports-only` (docs/scale.md, "Object storage + CDN")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.objstore import Provider, start_provider
from tests.server.test_e2e_agent import UUID_A, UUID_B, Fleet, Machine
from vmprep.server.keys import load_key
from vmprep.server.upload import parse_target, publish_to

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vmprep.render.payload import build_payload

    path = tmp_path_factory.mktemp("payload") / "agent.pyz"
    path.write_bytes(build_payload())
    return path


@pytest.fixture(params=["s3", "az", "gs"])
def provider(request, tmp_path_factory, monkeypatch) -> Iterator[Provider]:
    started = start_provider(request.param, tmp_path_factory.mktemp(request.param))
    for name, value in started.env.items():
        monkeypatch.setenv(name, value)
    yield started
    started.emulator.stop()


class Anonymous(Machine):
    """No `phone_home.token`: the agent sends its token to the fetch URLs' origin too, and a
    bucket refuses a Bearer token it did not issue (docs/scale.md)."""

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        del cfg["phone_home"]["token"]
        cfg["secrets"] = {}
        return cfg


def echo(step_id: str, out: Path) -> dict[str, Any]:
    return {"id": step_id, "exec": {"argv": ["/bin/sh", "-c", f'echo {step_id} >> "{out}"']}}


def test_the_agent_fetches_and_verifies_its_document_from_object_storage(
    provider: Provider, serve_process, pyz: Path, tmp_path: Path
) -> None:
    fleet = Fleet(tmp_path / "server", serve_process, [])
    doc = {
        "version": 1,
        "kind": "RoleConfig",
        "role": "web",
        "steps": [echo("one", tmp_path / "shared-out")],
        "instances": [
            {"match": {"instance_id": UUID_B}, "steps": [echo("own", tmp_path / "b-out")]}
        ],
    }
    (fleet.configs / "web.yaml").write_text(json.dumps(doc))
    target = parse_target(provider.target("fleet/prod"))
    key = load_key(fleet.tmp / "old.pem")
    publish_to(fleet.configs, [key], target, endpoint_url=provider.endpoint)
    # reports go to a reports-only serve: it holds no documents to hand out
    args = ["--configs", str(fleet.configs), "--data-dir", str(fleet.data), "--poll", "0"]
    args += ["--key", str(fleet.tmp / "old.pem")]  # loopback: reports without a token
    fleet.server = serve_process([*args, "--reports-only"]).start()

    base = f"{provider.public_url('fleet/prod')}/v1/config/{{role}}"
    urls = [f"{base}/{{instance_id}}", f"{base}/_role"]  # its own document, else the role's
    for name, uuid in (("a", UUID_A), ("b", UUID_B)):
        m = Anonymous(tmp_path / name, pyz, fleet, uuid)
        m.urls = urls
        assert m.run() == 0
        stored = fleet.stored(uuid)
        assert stored is not None
        assert stored["instance"]["state"] == "done"
    assert (tmp_path / "shared-out").read_text().splitlines() == ["one", "one"]
    assert (tmp_path / "b-out").read_text().splitlines() == ["own"]

    # A document changed in the bucket behind publish's back is refused, never run.
    rel = f"{target.key('v1/config/web/_role')}"
    from urllib.request import urlopen

    with urlopen(f"{provider.public_url('fleet/prod')}/v1/config/web/_role") as r:
        body = json.loads(r.read())
    body["steps"][0]["exec"]["argv"][-1] = f'echo evil >> "{tmp_path / "shared-out"}"'
    provider.put(rel, json.dumps(body).encode())
    m = Anonymous(tmp_path / "c", pyz, fleet, "4f2c9a1e-0000-4000-8000-00155d0c0c0c")
    m.urls = urls
    m.run()  # the agent goes on with its baked steps (none here) and says why
    stored = fleet.stored(m.uuid)
    assert stored is not None
    summary = stored["instance"]
    assert (summary["config_serial"], summary["error"]["code"]) == (None, "signature")
    assert (tmp_path / "shared-out").read_text().splitlines() == ["one", "one"]
