"""The agent under the Windows CPython against a real `vmprep serve` on 127.0.0.1 with TLS and
a fleet token (issue #10, group 2): SetupComplete.cmd -> launch -> the startup task fetches
the signed document over HTTPS (trusting the service's CA from agent.json's ca_bundle), runs
its steps, reports, and `status --wait` sees `done`; the service's store has the report."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest

from tests.server.conftest import ServeProcess
from tests.server.test_serve_process import _self_signed
from tests.windows.bench import Prefix, spec
from vmprep.server.keys import write_keypair
from vmprep.server.service import hash_token
from vmprep.server.store import SqliteStore

FLEET = "bench-fleet-token"
SITE_KEY = "bench-site-k3y"
ROLE = {
    "version": 1,
    "kind": "RoleConfig",
    "role": "web",
    "variables": {"site": "contoso"},
    "secrets": {"site_key": {"env": "BENCH_SITE_KEY"}},
    "steps": [
        {
            "id": "site",
            "registry": {"key": "HKLM\\SOFTWARE\\Bench", "name": "Site", "value": "contoso"},
        },
        {"id": "banner", "file": {"path": "C:\\Remote\\banner.txt", "content": "hello contoso"}},
        {
            "id": "keyed",
            "exec": {
                "argv": ["C:\\windows\\system32\\net.exe", "use"],
                "env": {"SITE_KEY": {"secret": "site_key"}},
            },
        },
    ],
}


@pytest.mark.slow
def test_launch_fetches_over_tls_with_the_fleet_token_and_reports(
    prefix: Prefix, tmp_path: Path
) -> None:
    configs = tmp_path / "configs" / "roles"
    configs.mkdir(parents=True)
    (configs / "web.yaml").write_text(json.dumps(ROLE))
    key = write_keypair(tmp_path / "key")
    cert, tls_key = _self_signed(tmp_path)
    (tmp_path / "tokens").write_text(f"fleet {hash_token(FLEET)}\n")
    data = tmp_path / "data"
    args = ["--configs", str(tmp_path / "configs"), "--data-dir", str(data), "--poll", "0"]
    args += ["--key", str(tmp_path / "key.pem"), "--tokens", str(tmp_path / "tokens")]
    args += ["--certfile", str(cert), "--keyfile", str(tls_key)]
    serve = ServeProcess(args, env={"BENCH_SITE_KEY": SITE_KEY})
    serve.url = serve.url.replace("http://", "https://")
    serve.start_kwargs = {"verify": ssl.create_default_context(cafile=str(cert))}
    serve.start()
    try:
        r = prefix.render(spec("bench-phone"))
        ca = r.install_dir + "\\service-ca.pem"
        prefix.write(ca, cert.read_bytes())
        cfg = r.agent_json
        cfg["phone_home"] = {
            "url": [f"{serve.url}/v1/config/{{role}}/{{instance_id}}"],
            "role": "web",
            "trusted_keys": [key.public_form],
            "token": {"secret": "env:VMPREP_FLEET_TOKEN"},
            "ca_bundle": ca,
            "report_url": f"{serve.url}/v1/report/{{instance_id}}",
            "timeout": "10s",
            "retry": {"attempts": 5, "initial": "100ms", "max": "300ms"},
        }
        cfg["secrets"] = {**cfg.get("secrets", {}), "env:VMPREP_FLEET_TOKEN": FLEET}
        cfg["identity"] = ["smbios-uuid"]
        prefix.write(r.config, json.dumps(cfg))
        prefix.setupcomplete().check(0)
        prefix.run_task(timeout=180).check(0)
        waited = prefix.agent("status", "--config", r.config, "--wait", "--timeout", "1m")
        assert waited.returncode == 0, waited.output
    finally:
        serve.stop()

    state = json.loads(prefix.agent("status", "--config", r.config, "--format", "json").stdout)
    assert state["state"] == "done", state
    assert prefix.reg_query("HKLM\\SOFTWARE\\Bench", "Site") == {"Site": ("REG_SZ", "contoso")}
    assert prefix.read_text("C:\\Remote\\banner.txt") == "hello contoso"
    (net,) = prefix.records("net.exe")
    assert f"SITE_KEY={SITE_KEY}" in net["env"]
    assert all(SITE_KEY not in rec["cmdline"] for rec in prefix.records())
    assert all(FLEET not in rec["cmdline"] for rec in prefix.records())
    store = SqliteStore(data)
    try:
        (row,) = store.instances()
        view = store.instance(row["instance_id"])
    finally:
        store.close()
    assert view is not None, "no report reached the service"
    assert view["instance"]["state"] == "done"
    assert SITE_KEY not in json.dumps(view)
    logs = "".join(
        p.read_text(errors="replace") for p in prefix.find(r.install_dir + "\\logs").iterdir()
    )
    assert SITE_KEY not in logs
    assert FLEET not in logs
