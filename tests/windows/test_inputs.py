"""Deploy-time inputs under the Windows CPython (issue #20): one rendered image takes its role
from a fake Azure IMDS on 127.0.0.1 (the agent's endpoint override), and a Hyper-V KVP value
the host pushed is read from the Wine registry."""

from __future__ import annotations

import json

import pytest

from tests.agent.net.conftest import Reply, Server
from tests.windows.bench import Prefix, spec

INPUTS = (
    "  inputs:\n"
    "    sources: [hyperv-kvp, azure-tags]\n"
    "    keys:\n"
    "      role: {values: [web, sql], required: true}\n"
    "  phone_home:\n"
    "    url: https://cfg.example.com/v1/config/{role}/{instance_id}\n"
    "    role: web\n"
    "    trusted_keys: ['ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=']\n"
)
STEP = "    - {id: sql-only, registry: {key: 'HKLM\\SOFTWARE\\Bench', name: Role, value: sql}, when: {role: sql}}\n"


def render(prefix: Prefix, base: str) -> dict:
    r = prefix.render(spec("bench-inputs", STEP) + INPUTS)
    cfg = r.agent_json
    cfg["endpoints"] = {"azure-imds": base}
    # phone home to the same loopback server: 404 there is "nothing for this instance"
    cfg["phone_home"].update(
        url=[f"{base}/v1/config/{{role}}/{{instance_id}}"],
        allow_insecure_http=True,
        retry={"attempts": 1, "initial": "100ms", "max": "100ms"},
    )
    cfg["identity"] = ["smbios-uuid"]
    prefix.write(r.config, json.dumps(cfg))
    prefix.run_agent()
    state = json.loads(prefix.agent("status", "--config", r.config, "--format", "json").stdout)
    return state


@pytest.mark.slow
def test_the_role_comes_from_a_loopback_imds(prefix: Prefix) -> None:
    imds = Server()
    try:
        compute = {"tagsList": [{"name": "vmprep-role", "value": "sql"}], "userData": ""}
        imds.route(
            "/metadata/instance/compute?api-version=2021-02-01",
            Reply(200, json.dumps(compute).encode()),
        )
        state = render(prefix, imds.url(""))
    finally:
        imds.close()
    assert state["inputs"]["role"] == {"value": "sql", "source": "azure-tags"}
    assert state["state"] == "done", state
    assert prefix.reg_query("HKLM\\SOFTWARE\\Bench", "Role") == {"Role": ("REG_SZ", "sql")}
    assert imds.requests[0].headers["metadata"] == "true"
    assert imds.requests[1].path.startswith("/v1/config/sql/")  # the deploy-time role


@pytest.mark.slow
def test_a_hyperv_kvp_value_comes_first(prefix: Prefix) -> None:
    prefix.wine(
        "reg.exe",
        "add",
        "HKLM\\SOFTWARE\\Microsoft\\Virtual Machine\\External",
        "/v",
        "vmprep-role",
        "/t",
        "REG_SZ",
        "/d",
        "web",
        "/f",
    ).check(0)
    imds = Server()
    try:
        state = render(prefix, imds.url(""))
    finally:
        imds.close()
    assert state["inputs"]["role"] == {"value": "web", "source": "hyperv-kvp"}
    # decided before the IMDS was asked: the only request is the config fetch, for `web`
    assert [r.path.split("/")[3] for r in imds.requests] == ["web"]
    assert not prefix.reg_query("HKLM\\SOFTWARE\\Bench", "Role")
