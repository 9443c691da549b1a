"""examples/domain-joined.yaml under Wine with the Windows CPython, recording powershell.exe
and shutdown.exe, against a real `vmprep serve` on 127.0.0.1 over examples/configs: the
secrets its baked steps ask for are delivered, it is named before it is joined — exactly one
`Add-Computer … -NewName` call — and the whole first boot costs ONE restart.

What the test machine changes in the rendered agent.json: the service's address and key, and
the identity source (a loopback Azure IMDS answering the vmId of a listed `app` instance)."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.agent.firstboot import APP_01, ENV
from tests.conftest import EXAMPLES
from tests.server.conftest import ServeProcess
from tests.windows.bench import Prefix, split_windows
from vmprep.server.keys import write_keypair


@pytest.fixture
def imds() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"compute": {"vmId": APP_01}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def script_of(cmdline: str) -> str:
    argv = split_windows(cmdline)
    if "-EncodedCommand" not in argv:
        return ""
    return base64.b64decode(argv[argv.index("-EncodedCommand") + 1]).decode("utf-16-le")


@pytest.mark.slow
def test_domain_joined_names_before_it_joins_in_one_restart(
    prefix: Prefix, imds: str, tmp_path: Path
) -> None:
    key = write_keypair(tmp_path / "key")
    args = ["--configs", str(EXAMPLES / "configs"), "--data-dir", str(tmp_path / "data")]
    serve = ServeProcess([*args, "--key", str(tmp_path / "key.pem"), "--poll", "0"], env=ENV)
    serve.start()
    try:
        r = prefix.render(EXAMPLES / "domain-joined.yaml", env=ENV)
        cfg = r.agent_json
        cfg["phone_home"].update(
            url=[f"{serve.url}/v1/config/{{role}}/{{instance_id}}"],
            report_url=f"{serve.url}/v1/report/{{instance_id}}",
            trusted_keys=[key.public_form],
            allow_insecure_http=True,
            retry={"attempts": 5, "initial": "100ms", "max": "300ms"},
        )
        cfg["identity"] = ["azure-imds"]
        cfg["endpoints"] = {"azure-imds": imds}
        prefix.write(r.config, json.dumps(cfg))
        prefix.install_stubs(["gpupdate.exe"])
        # The overlay render lays on C: holds `Windows\...` beside the prefix's `windows\`
        # (a case-sensitive file system): Wine resolves C:\Windows\System32 in the former.
        gpupdate = prefix.host("C:\\Windows\\System32\\gpupdate.exe")
        gpupdate.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(prefix.stub_exe, gpupdate)
        prefix.stub("powershell.exe", [3010, 0])  # the join asks for a restart; then 0
        prefix.stub("sc.exe", [0], stdout="STATE              : 4  RUNNING")

        first = prefix.run_agent()
        assert first.returncode == 2, first.stderr[-3000:]  # restarting
        assert len(prefix.records("shutdown.exe")) == 1
        second = prefix.run_agent()
        assert second.returncode == 0, second.stderr[-3000:]
    finally:
        serve.stop()

    status = prefix.agent("status", "--config", r.config, "--format", "json").check(0)
    assert json.loads(status.stdout)["state"] == "done", status.stdout
    assert len(prefix.records("shutdown.exe")) == 1  # ONE restart for the whole first boot
    calls = prefix.records("powershell.exe")
    scripts = [script_of(c["cmdline"]) for c in calls]
    joins = [s for s in scripts if "Add-Computer" in s]
    assert len(joins) == 1
    assert "-NewName 'APP-01' -Options JoinWithNewName,AccountCreate" in joins[0]
    assert not [s for s in scripts if "Rename-Computer -NewName 'APP-01' -Force" in s]
    join_env = calls[scripts.index(joins[0])]["env"]
    assert f"VMPREP_JOIN_USER={ENV['VMPREP_JOIN_USER']}" in join_env  # delivered by serve
    assert f"VMPREP_JOIN_PASSWORD={ENV['VMPREP_JOIN_PASSWORD']}" in join_env
    assert all(ENV["VMPREP_JOIN_PASSWORD"] not in c["cmdline"] for c in calls)
    user = calls[next(i for i, s in enumerate(scripts) if "New-LocalUser" in s)]
    assert f"VMPREP_USER_PASSWORD={ENV['VMPREP_SVC_APP_PASSWORD']}" in user["env"]
    assert len(prefix.records("gpupdate.exe")) == 1
