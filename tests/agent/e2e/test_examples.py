"""Every example in examples/ (and examples/platforms/, examples/packer/) rendered and run end to
end: its agent.json, as render wrote it, against a real `vmprep serve` on 127.0.0.1 over
examples/configs, with the Windows platform recording its processes (tests/agent/firstboot.py).
Only what the test machine must change is changed: the service's address and key, the
instance's identity source. The steps run as rendered, to `done`, where the recording
platform can carry them (a `download` or `wait_for.http` needs a network the test does not
have: such an example is skipped, saying which step)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent.firstboot import first_boot
from tests.conftest import ROOT
from vmprep.render import render
from vmprep.server.keys import write_keypair
from vmprep.server.store import SqliteStore
from vmprep.spec import load_spec

pytestmark = pytest.mark.slow

EXAMPLES = sorted(
    p for d in ("", "platforms", "packer") for p in (ROOT / "examples" / d).glob("*.yaml")
)
APP_01 = "6d1f0b7e-4a2c-4c8e-9f10-2b7c5e3a9d01"  # examples/configs/roles/app.yaml
ENV = {
    "VMPREP_ADMIN_PASSWORD": "Adm1n-P@ss",
    "VMPREP_JOIN_USER": "CORP\\joiner",
    "VMPREP_JOIN_PASSWORD": "J0in-P@ss",
    "VMPREP_SVC_APP_PASSWORD": "Svc-P@ss",
    "VMPREP_FLEET_TOKEN": "fleet-token",
}


@dataclass(frozen=True)
class Served:
    url: str
    public: str
    data: Path


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from tests.server.conftest import ServeProcess

    tmp = tmp_path_factory.mktemp("serve")
    key = write_keypair(tmp / "key")
    args = ["--configs", str(ROOT / "examples" / "configs"), "--data-dir", str(tmp / "data")]
    server = ServeProcess([*args, "--key", str(tmp / "key.pem"), "--poll", "0"], env=ENV)
    server.start()
    yield Served(server.url, key.public_form, tmp / "data")
    server.stop()


def needs_network(steps: list[dict[str, Any]]) -> str | None:
    for step in steps:
        if "download" in step:
            return f"step {step['id']} downloads from the internet"
        if "http" in step.get("wait_for", {}):
            return f"step {step['id']} waits for {step['wait_for']['http']}"
    return None


def rendered_config(example: Path, root: Path, service: Any) -> Path:
    """agent.json as render writes it, pointed at the loopback service and a fake /sys."""
    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        files = render(load_spec(example)).files
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    name = next(n for n in files if n.endswith("agent.json"))
    cfg = json.loads(files[name])
    ph = cfg["phone_home"]
    if ph is not None:
        base = service.url
        ph["url"] = [f"{base}/v1/config/{{role}}/{{instance_id}}"]
        ph["report_url"] = f"{base}/v1/report/{{instance_id}}"
        ph["trusted_keys"] = [service.public]
        ph["allow_insecure_http"] = True
        ph["retry"] = {"attempts": 5, "initial": "100ms", "max": "300ms"}
    dmi = root / "sys/sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text(APP_01.upper() + "\n")
    cfg["identity"] = ["smbios-uuid"]
    cfg["platform_options"] = {"sys_root": str(root / "sys")}
    path = root / "agent.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_example_runs_to_done(example: Path, tmp_path: Path, service: Any) -> None:
    config = rendered_config(example, tmp_path, service)
    why = needs_network(json.loads(config.read_text())["steps"])
    if why:
        pytest.skip(f"{example.name}: {why}")
    result = first_boot(config, tmp_path / "state")
    assert (result["exit"], result["state"]) == (0, "done"), result
    assert all(s in ("done", "skipped") for s in result["steps"].values()), result


def test_the_domain_joined_example_names_before_it_joins_in_one_restart(
    tmp_path: Path, service: Any
) -> None:
    config = rendered_config(ROOT / "examples" / "domain-joined.yaml", tmp_path, service)
    result = first_boot(config, tmp_path / "state")
    assert (result["exit"], result["state"]) == (0, "done"), result
    assert result["restarts"] == 1
    assert result["add_computer"] == result["add_computer_new_name"] == 1
    assert result["rename_computer_alone"] == 0
    join = next(c for c in result["calls"] if "Add-Computer" in c["script"])
    assert "-NewName 'APP-01' -Options JoinWithNewName,AccountCreate" in join["script"]
    assert join["env"] == ["VMPREP_JOIN_PASSWORD", "VMPREP_JOIN_USER"]  # secrets delivered
    assert all(ENV["VMPREP_JOIN_PASSWORD"] not in part for part in join["argv"])
    user = next(c for c in result["calls"] if "New-LocalUser" in c["script"])
    assert user["env"] == ["VMPREP_USER_PASSWORD"]  # after the restart, fetched again
    exes = [c["argv"][0] for c in result["calls"]]
    assert exes.index("shutdown.exe") > result["calls"].index(join) > 0  # join, then restart
    assert result["calls"].index(user) > exes.index("shutdown.exe")
    steps = result["steps"]
    assert steps["baked:rename"] == steps["baked:join"] == steps["baked:after-join"] == "done"
    store = SqliteStore(service.data)
    try:
        stored = store.instance(APP_01)
    finally:
        store.close()
    assert stored is not None
    assert stored["instance"]["state"] == "done"
