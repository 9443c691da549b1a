"""What `vmprep render` writes is what the agent reads: every example's agent.json loads, its
steps pass the agent's structural check, and the Windows platform can run every one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmprep.agent.config import load_config
from vmprep.agent.platform.winplatform import WindowsPlatform
from vmprep.agent.stepcheck import check_steps, step_kind
from vmprep.render import render
from vmprep.spec import load_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("spec_path", EXAMPLES, ids=lambda p: p.name)
def test_rendered_agent_json_is_what_the_agent_reads(
    spec_path: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("VMPREP_ADMIN_PASSWORD", "Adm1n-Passw0rd!")
    monkeypatch.setenv("VMPREP_FLEET_TOKEN", "fleet-token")
    result = render(load_spec(spec_path))
    (name,) = [n for n in result.files if n.endswith("/agent.json")]
    path = tmp_path / "agent.json"
    path.write_bytes(result.files[name])
    cfg = load_config(path)
    assert check_steps(cfg.steps) == []
    platform = WindowsPlatform(tmp_path, cfg.platform_options, cfg.os)
    for step in cfg.steps:
        kind = step_kind(step)
        assert platform.unsupported(kind, step[kind]) is None
    if cfg.phone_home is not None and "token" in cfg.phone_home:
        ref = cfg.phone_home["token"]
        assert set(ref) == {"secret"}
        assert ref["secret"] in cfg.secrets
    raw = json.loads(result.files[name])
    assert raw["format"] == 1
