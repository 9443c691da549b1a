"""The real `vmprep serve` and the real agent (`python -I agent.pyz run`) on 127.0.0.1, each
outcome checked in the server's store: first boot, reboot-resume, a re-imaged instance, a key
rotation, a server restart mid-run, a bad token, and an instance that reports a failure."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import vmprep
from tests.server.nginx import NGINX, Nginx
from vmprep.server.keys import load_key, write_keypair
from vmprep.server.publish import publish
from vmprep.server.service import hash_token
from vmprep.server.store import SqliteStore

pytestmark = pytest.mark.slow

FLEET, ADMIN, SITE_KEY = "fleet-e2e-token", "admin-e2e-token", "k3y-0f-the-s1te"
UUID_A = "4f2c9a1e-0000-4000-8000-00155d0a0a0a"
UUID_B = "4f2c9a1e-0000-4000-8000-00155d0b0b0b"


@pytest.fixture(scope="module")
def agent_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vmprep.render.payload import build_payload

    path = tmp_path_factory.mktemp("payload") / "agent.pyz"
    path.write_bytes(build_payload())
    return path


def appender(step_id: str, out: Path, code: int = 0) -> dict[str, Any]:
    script = f'echo {step_id} >> "{out}"; exit {code}'
    return {
        "id": step_id,
        "exec": {"argv": ["/bin/sh", "-c", script], "env": {"K": {"secret": "site_key"}}},
    }


def role_config(root: Path, steps: list[dict[str, Any]]) -> Path:
    doc = {
        "version": 1,
        "kind": "RoleConfig",
        "role": "web",
        "variables": {"site": "contoso"},
        "secrets": {"site_key": {"env": "E2E_SITE_KEY"}},
        "steps": steps,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "web.yaml").write_text(json.dumps(doc))  # JSON is YAML
    return root


class Fleet:
    """The server side: keys, tokens, the config repository and a `vmprep serve` process."""

    def __init__(self, tmp: Path, serve_process: Any, steps: list[dict[str, Any]]) -> None:
        self.tmp = tmp
        self.configs = role_config(tmp / "configs", steps)
        self.keys = {name: write_keypair(tmp / name) for name in ("old", "new")}
        (tmp / "tokens").write_text(f"fleet {hash_token(FLEET)}\nadmin {hash_token(ADMIN)}\n")
        self.data = tmp / "data"
        self.serve_process = serve_process
        self.server: Any = None

    def start(self, *keys: str) -> None:
        args = ["--configs", str(self.configs), "--data-dir", str(self.data), "--poll", "0"]
        args += ["--tokens", str(self.tmp / "tokens")]
        for name in keys or ("old",):
            args += ["--key", str(self.tmp / f"{name}.pem")]
        port = self.server.port if self.server else None
        self.server = self.serve_process(args, env={"E2E_SITE_KEY": SITE_KEY})
        if port:
            self.server.port, self.server.url = port, f"http://127.0.0.1:{port}"
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def stored(self, instance_id: str) -> dict[str, Any] | None:
        store = SqliteStore(self.data)
        try:
            return store.instance(instance_id)
        finally:
            store.close()


class Machine:
    """An instance: agent.json, a fake /sys for its SMBIOS UUID, a boot id, a reboot recorder."""

    def __init__(
        self, root: Path, pyz: Path, fleet: Fleet, uuid: str, *, trust=("old",), token=FLEET
    ):
        self.root, self.pyz, self.fleet = root, pyz, fleet
        self.out = root / "out"
        self.reimage(uuid)
        self.trust, self.token = list(trust), token
        self.urls: list[str] | None = None  # default: the fleet's `vmprep serve`

    def reimage(self, uuid: str) -> None:
        """A fresh disk from the base image: new SMBIOS UUID, no agent state."""
        shutil.rmtree(self.root / "vmprep", ignore_errors=True)
        dmi = self.root / "sys/sys/class/dmi/id"
        dmi.mkdir(parents=True, exist_ok=True)
        (dmi / "product_uuid").write_text(uuid.upper() + "\n")
        (self.root / "boot_id").write_text("1")
        self.uuid = uuid

    def config(self) -> dict[str, Any]:
        base = self.fleet.server.url
        return {
            "format": 1,
            "vmprep_version": vmprep.__version__,
            "image": {"name": "e2e", "os": "windows-server-2022", "architecture": "amd64"},
            "install_dir": str(self.root / "vmprep"),
            "identity": ["smbios-uuid"],
            "variables": {},
            "log_level": "debug",
            "phone_home": {
                "url": self.urls or [f"{base}/v1/config/{{role}}/{{instance_id}}"],
                "role": "web",
                "trusted_keys": [self.fleet.keys[n].public_form for n in self.trust],
                "token": {"secret": "env:VMPREP_FLEET_TOKEN"},
                "allow_insecure_http": True,
                "report_url": f"{base}/v1/report/{{instance_id}}",
                "timeout": "5s",
                "retry": {"attempts": 60, "initial": "100ms", "max": "300ms"},
            },
            "steps": [],
            "secrets": {"env:VMPREP_FLEET_TOKEN": self.token},
            "platform_options": {
                "sys_root": str(self.root / "sys"),
                "boot_id_path": str(self.root / "boot_id"),
                "reboot_command": ["/bin/sh", "-c", f'echo reboot >> "{self.root / "reboots"}"'],
            },
        }

    def argv(self) -> list[str]:
        cfg = self.root / "agent.json"
        cfg.write_text(json.dumps(self.config()))
        state = str(self.root / "vmprep")
        return [
            sys.executable,
            "-I",
            str(self.pyz),
            "run",
            "--config",
            str(cfg),
            "--state-dir",
            state,
        ]

    def run(self) -> int:
        proc = subprocess.run(self.argv(), capture_output=True, text=True, timeout=120, check=False)
        return proc.returncode

    def reboot(self) -> None:
        boot = self.root / "boot_id"
        boot.write_text(str(int(boot.read_text()) + 1))

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines() if self.out.exists() else []

    def local_state(self) -> dict[str, Any]:
        path = self.root / "vmprep" / "state" / f"{self.uuid}.json"
        state: dict[str, Any] = json.loads(path.read_text())
        return state


@pytest.fixture
def world(tmp_path, serve_process, agent_pyz):
    def make(steps: list[dict[str, Any]]) -> tuple[Fleet, Any]:
        fleet = Fleet(tmp_path / "server", serve_process, steps)
        fleet.start()

        def machine(name: str = "a", uuid: str = UUID_A, **kw: Any) -> Machine:
            return Machine(tmp_path / name, agent_pyz, fleet, uuid, **kw)

        return fleet, machine

    return make


def latest(view: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = view["reports"][0]["report"]
    return report


def test_first_boot_then_a_reboot_resumes_and_a_server_restart_between_boots_is_invisible(
    world, tmp_path
):
    out = tmp_path / "a" / "out"
    fleet, machine = world(
        [appender("one", out), {"id": "boot", "reboot": {}}, appender("two", out)]
    )
    m = machine()
    assert m.run() == 2  # the reboot step asked for a reboot
    view = fleet.stored(UUID_A)
    assert view["instance"]["state"] == "running"
    serial = view["instance"]["config_serial"]
    assert m.lines() == ["one"]
    fleet.stop()  # the server restarts while the instance reboots
    fleet.start()
    m.reboot()
    assert m.run() == 0
    assert m.lines() == ["one", "two"]
    view = fleet.stored(UUID_A)
    summary = view["instance"]
    assert (summary["state"], summary["config_serial"], summary["error"]) == ("done", serial, None)
    assert summary["steps"] == {"done": 3, "failed": 0, "total": 3}
    assert [s["status"] for s in latest(view)["steps"]] == ["done", "done", "done"]
    assert SITE_KEY not in json.dumps(view)  # secrets went to the agent, never into reports
    # a third run: the document is current (304), nothing runs again
    assert m.run() == 0
    assert m.lines() == ["one", "two"]
    assert fleet.stored(UUID_A)["instance"]["state"] == "done"


def test_the_server_coming_up_mid_run_is_retried_not_fatal(world, tmp_path):
    out = tmp_path / "a" / "out"
    fleet, machine = world([appender("one", out)])
    m = machine()
    fleet.stop()
    agent = subprocess.Popen(m.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)  # the agent is retrying against a closed port
        assert agent.poll() is None
        fleet.start()
        assert agent.wait(60) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert m.lines() == ["one"]
    # reports the agent could not send while the server was down wait in its spool for the
    # next run, which sends them; the newest state wins in the store whatever the order
    assert m.run() == 0
    view = fleet.stored(UUID_A)
    assert view["instance"]["state"] == "done"
    assert len(view["reports"]) >= 3
    assert m.lines() == ["one"]


def test_a_reimaged_instance_has_a_new_id_and_starts_over(world, tmp_path):
    out = tmp_path / "a" / "out"
    fleet, machine = world([appender("one", out)])
    m = machine()
    assert m.run() == 0
    m.reimage(UUID_B)
    assert m.run() == 0
    assert m.lines() == ["one", "one"]
    for uuid in (UUID_A, UUID_B):
        assert fleet.stored(uuid)["instance"]["state"] == "done"
    assert len(fleet.stored(UUID_B)["reports"]) >= 1


def test_a_key_rotation_keeps_old_and_new_images_working_until_the_old_key_goes(world, tmp_path):
    fleet, machine = world([appender("one", tmp_path / "out")])
    old_image = machine("a", UUID_A, trust=("old",))
    assert old_image.run() == 0
    fleet.stop()
    fleet.start("old", "new")  # rotation: both keys sign
    new_image = machine("b", UUID_B, trust=("new",))
    assert new_image.run() == 0
    assert old_image.run() == 0
    assert fleet.stored(UUID_B)["instance"]["state"] == "done"
    assert fleet.stored(UUID_A)["instance"]["error"] is None
    fleet.stop()
    fleet.start("new")  # the old key retired: an image that trusts only it refuses
    assert new_image.run() == 0
    old_image.run()
    refused = fleet.stored(UUID_A)["instance"]
    assert refused["error"]["code"] == "signature"
    assert fleet.stored(UUID_B)["instance"]["error"] is None


def test_a_bad_token_gets_nothing_and_stores_nothing(world, tmp_path):
    fleet, machine = world([appender("one", tmp_path / "a" / "out")])
    m = machine(token="not-the-fleet-token")
    m.run()
    assert m.lines() == []
    assert m.local_state()["error"]["code"] == "unauthorized"
    assert fleet.stored(UUID_A) is None  # its reports were refused too


def test_an_instance_that_fails_a_step_reports_it(world, tmp_path):
    out = tmp_path / "a" / "out"
    fleet, machine = world(
        [appender("one", out), appender("bad", out, code=3), appender("never", out)]
    )
    m = machine()
    assert m.run() == 1
    assert m.lines() == ["one", "bad"]
    view = fleet.stored(UUID_A)
    summary = view["instance"]
    assert summary["state"] == "failed"
    assert summary["steps"]["failed"] == 1
    assert summary["error"]["code"] == "step_failed"
    assert [(s["id"], s["status"]) for s in latest(view)["steps"]] == [
        ("one", "done"),
        ("bad", "failed"),
        ("never", "pending"),
    ]


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install -y nginx)")
def test_the_agent_fetches_the_published_tree_from_nginx_and_reports_to_serve(world, tmp_path):
    def echo(step_id: str, out: Path) -> dict[str, Any]:
        return {"id": step_id, "exec": {"argv": ["/bin/sh", "-c", f'echo {step_id} >> "{out}"']}}

    fleet, machine = world([])
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
    publish(fleet.configs, [load_key(fleet.tmp / "old.pem")], tmp_path / "site", base="fleet")
    server = Nginx(tmp_path / "site", tmp_path / "nginx")
    base = f"{server.url}/fleet/v1/config/{{role}}"
    try:
        for name, uuid in (("a", UUID_A), ("b", UUID_B)):
            m = machine(name, uuid)
            m.urls = [f"{base}/{{instance_id}}", f"{base}/_role"]  # own document, else the role's
            assert m.run() == 0
            assert fleet.stored(uuid)["instance"]["state"] == "done"  # reports went to serve
    finally:
        server.stop()
    assert (tmp_path / "shared-out").read_text().splitlines() == ["one", "one"]
    assert (tmp_path / "b-out").read_text().splitlines() == ["own"]
