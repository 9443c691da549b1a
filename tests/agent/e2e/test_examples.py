"""Every example in examples/ (and examples/platforms/, examples/packer/) rendered and run end to
end: its agent.json, as render wrote it, against a real `vmprep serve` on 127.0.0.1 over
examples/configs, with the Windows platform recording its processes (tests/agent/firstboot.py).
Only what the test machine must change is changed: the service's address and key, the
instance's identity source. The steps run as rendered, to `done`, where the recording
platform can carry them: a `download` or `wait_for.http` needs a network the test does not
have, and a `file` step writes a Windows path this POSIX run cannot; such an example is
skipped, saying which step (examples/domain-joined.yaml also runs under Wine:
tests/windows/test_domain_joined.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent.firstboot import APP_01, ENV, cannot_run_here, first_boot, rendered_config
from tests.conftest import ROOT
from vmprep.server.keys import write_keypair
from vmprep.server.store import SqliteStore

pytestmark = pytest.mark.slow

EXAMPLES = sorted(
    p for d in ("", "platforms", "packer") for p in (ROOT / "examples" / d).glob("*.yaml")
)


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


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_example_runs_to_done(example: Path, tmp_path: Path, service: Any) -> None:
    config = rendered_config(example, tmp_path, service.url, service.public)
    why = cannot_run_here(json.loads(config.read_text())["steps"])
    if why:
        pytest.skip(f"{example.name}: {why}")
    result = first_boot(config, tmp_path / "state")
    assert (result["exit"], result["state"]) == (0, "done"), result
    assert all(s in ("done", "skipped") for s in result["steps"].values()), result


def test_the_domain_joined_example_names_before_it_joins_in_one_restart(
    tmp_path: Path, service: Any
) -> None:
    config = rendered_config(
        ROOT / "examples" / "domain-joined.yaml", tmp_path, service.url, service.public
    )
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
