"""`vmprep serve`'s attestation options: refused when wrong before anything starts, and a real
server that verifies an attested role's fetches with the anchors it was given."""

from __future__ import annotations

import httpx

from tests.attestation_fakes import aws_identity, aws_rsa2048
from tests.server.attestation_setup import clouds, header, write_anchors
from tests.server.conftest import write_repo
from vmprep.server.keys import write_keypair

ROLE = """\
version: 1
kind: RoleConfig
role: dc
attestation: required
variables: {site: attested}
"""


def _args(tmp_path, *extra: str) -> list[str]:
    configs = write_repo(tmp_path / "configs")
    (configs / "roles" / "dc.yaml").write_text(ROLE)
    write_keypair(tmp_path / "k")
    return ["serve", "--configs", str(configs), "--key", str(tmp_path / "k.pem"),
            "--data-dir", str(tmp_path / "data"), "--poll", "0", *extra]  # fmt: skip


def test_an_audience_that_is_not_https_is_a_usage_error(run_vmprep, tmp_path):
    r = run_vmprep(*_args(tmp_path, "--attestation-audience", "http://cfg.example.com"), expect=2)
    assert "'http://cfg.example.com' is not an https:// URL" in r.stderr
    assert not (tmp_path / "data").exists()


def test_an_empty_anchors_directory_is_an_input_error(run_vmprep, tmp_path):
    (tmp_path / "anchors").mkdir()
    r = run_vmprep(*_args(tmp_path, "--attestation-anchors", str(tmp_path / "anchors")), expect=1)
    assert "no azure/, aws/ or gce/ directory of trust anchors" in r.stderr
    assert not (tmp_path / "data").exists()


def test_a_real_server_serves_an_attested_role_only_to_an_attested_instance(
    tmp_path, serve_process
):
    anchors = write_anchors(tmp_path / "anchors")
    args = _args(tmp_path, "--attestation-anchors", str(anchors))[1:]
    server = serve_process(args).start()
    url = server.url + "/v1/config/dc/i-0abc"
    r = httpx.get(url)
    assert (r.status_code, r.headers["vmprep-error"]) == (401, "attestation-required")
    evidence = header(
        "aws-iid", aws_rsa2048(aws_identity(instance_id="i-0abc"), clouds().aws_signer)
    )
    r = httpx.get(url, headers=evidence)
    assert r.status_code == 200
    assert r.json()["variables"] == {"site": "attested"}
    assert httpx.get(server.url + "/v1/config/web/i-0abc").status_code == 200  # role off
    log = server.output()
    assert "role 'dc' has no attestation_allow" in log
    assert "attestation refused: attestation-required for dc/i-0abc" in log
