"""`vmprep plan` (issue 16): the agent's own run, dry, for every example; what it shows
matches what the agent does end to end; plans compare with --diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.agent.firstboot import APP_01, ENV
from tests.conftest import ROOT
from vmprep.cli import main
from vmprep.plan.build import Facts, build_plan

EXAMPLES = sorted(
    p for d in ("", "platforms", "packer") for p in (ROOT / "examples" / d).glob("*.yaml")
)
CONFIGS = ROOT / "examples" / "configs"


def plan_of(example: Path, **kw):
    return build_plan(example, config_repo=CONFIGS, **kw)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_example_has_a_plan(example: Path):
    facts = Facts(instance_id=APP_01, inputs={"role": "web"})
    plan = plan_of(example, facts=facts)
    assert plan["format"] == 1
    assert plan["result"] in ("done", "failed", "halted")
    for step in plan["steps"]:
        assert step["decision"] in (
            "runs",
            "skipped (when)",
            "decided at boot",
            "runs and fails",
            "not reached",
        )
    json.dumps(plan)  # the JSON form


def test_the_domain_joined_example_names_and_joins_in_one_call_and_one_restart():
    plan = plan_of(ROOT / "examples/domain-joined.yaml", facts=Facts(instance_id=APP_01))
    assert (plan["result"], plan["problems"]) == ("done", [])
    assert plan["restarts"]["count"] == 1
    scripts = [c.get("script", "") for s in plan["steps"] for c in s["commands"]]
    joins = [s for s in scripts if "Add-Computer" in s]
    assert len(joins) == 1
    assert "-NewName 'APP-01' -Options JoinWithNewName,AccountCreate" in joins[0]
    secrets = {s["name"]: s["from"] for s in plan["secrets"]}
    assert secrets["join_user"] == secrets["join_password"] == "phone-home"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    from tests.server.conftest import ServeProcess
    from vmprep.server.keys import write_keypair

    tmp = tmp_path_factory.mktemp("serve")
    key = write_keypair(tmp / "key")
    args = ["--configs", str(CONFIGS), "--data-dir", str(tmp / "data")]
    server = ServeProcess([*args, "--key", str(tmp / "key.pem"), "--poll", "0"], env=ENV)
    server.start()
    yield server.url, key.public_form
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_plan_shows_what_the_agent_does_end_to_end(example: Path, tmp_path, served):
    """The same example through the e2e harness (a real `vmprep serve`, the agent recording
    its processes): the same processes, with the same command lines and scripts."""
    from tests.agent.firstboot import cannot_run_here, first_boot, rendered_config

    config = rendered_config(example, tmp_path, *served)
    why = cannot_run_here(json.loads(config.read_text())["steps"])
    if why:
        pytest.skip(f"{example.name}: the end-to-end harness cannot run it here: {why}")
    agent = first_boot(config, tmp_path / "state")
    # the harness's deployment says role `sql` where the spec lets the platform choose
    plan = plan_of(example, facts=Facts(instance_id=APP_01, inputs={"role": "sql"}))
    assert (agent["state"], plan["result"]) == ("done", "done")

    def normal(text: str) -> str:  # the harness joins argv with spaces, the plan quotes
        return text if "\n" in text else " ".join(text.replace('"', "").split())

    done = [
        normal(c["script"] or " ".join(c["argv"]))
        for c in agent["calls"]
        if "schtasks" not in c["argv"][0].lower()
    ]
    planned = [
        normal(c.get("script") or c["command_line"])
        for s in plan["steps"]
        for c in s["commands"]
        if c["command_line"].split(" ", 1)[0] not in ("set", "write", "download", "wait")
    ] + [normal(r["command_line"]) for r in plan["restarts"]["requests"]]
    assert sorted(planned) == sorted(done)
    assert plan["restarts"]["count"] == agent["restarts"]


def test_a_role_chosen_at_deploy_time_is_decided_at_boot_without_facts():
    plan = plan_of(ROOT / "examples/one-image-many-roles.yaml")
    assert plan["instance"]["role_decided_at_boot"] is True
    sql = next(s for s in plan["steps"] if s["id"] == "sql-firewall")
    assert sql["decision"] == "decided at boot"
    with_facts = plan_of(
        ROOT / "examples/one-image-many-roles.yaml", facts=Facts(inputs={"role": "sql"})
    )
    sql = next(s for s in with_facts["steps"] if s["id"] == "sql-firewall")
    assert sql["decision"] == "runs"
    assert "netsh.exe advfirewall" in sql["commands"][0]["command_line"]


def test_no_secret_value_reaches_a_plan(monkeypatch):
    monkeypatch.setenv("VMPREP_ADMIN_PASSWORD", "Very-Secret-Admin-1")
    out = json.dumps(plan_of(ROOT / "examples/domain-joined.yaml", facts=Facts(instance_id=APP_01)))
    assert "Very-Secret-Admin-1" not in out
    assert "<secret:" not in out or "Very-Secret" not in out


def test_cli_text_json_and_diff(tmp_path):
    runner = CliRunner()
    spec = ROOT / "examples/web-role.yaml"
    text = runner.invoke(main, ["plan", str(spec), "--config-repo", str(CONFIGS)])
    assert text.exit_code == 0, text.output
    assert "steps, in the order the agent runs them:" in text.stdout
    old = tmp_path / "old.json"
    result = runner.invoke(main, ["plan", str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    old.write_text(result.stdout)
    changed = tmp_path / "spec.yaml"
    changed.write_text(
        spec.read_text().replace("  steps:\n", "  steps:\n    - {id: extra, cmd: 'echo hi'}\n", 1)
    )
    new = tmp_path / "new.json"
    new.write_text(runner.invoke(main, ["plan", str(changed), "--format", "json"]).stdout)
    same = runner.invoke(main, ["plan", "--diff", str(old), str(old)])
    assert (same.exit_code, same.stdout) == (0, "")
    diff = runner.invoke(main, ["plan", "--diff", str(old), str(new)])
    assert diff.exit_code == 1
    assert "+ step baked:extra: runs" in diff.stdout.splitlines()
    both = runner.invoke(main, ["plan", str(spec), "--diff", str(old), str(new)])
    assert both.exit_code == 2


def test_bad_facts_and_not_a_plan_are_input_errors(tmp_path):
    runner = CliRunner()
    facts = tmp_path / "facts.yaml"
    facts.write_text("instance_id: [1]\n")
    r = runner.invoke(main, ["plan", str(ROOT / "examples/minimal.yaml"), "--facts", str(facts)])
    assert r.exit_code == 1
    assert "instance_id must be text" in r.stderr
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    r = runner.invoke(main, ["plan", "--diff", str(junk), str(junk)])
    assert r.exit_code == 1
    assert "not a plan" in r.stderr


def test_a_bundled_runtime_needs_no_zip_to_plan(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nimage: {name: e}\nsetup: {administrator: {password: {env: P}}}\n"
        "agent:\n  runtime: {embedded: {zip: absent/python-3.13.2-embed-amd64.zip,"
        " sha256: 'aa" + "0" * 62 + "'}}\n"
    )
    plan = build_plan(spec)
    assert plan["result"] == "done"


def test_the_plan_says_which_attestation_config_fetches_carry():
    web = ROOT / "examples/web-role.yaml"
    assert plan_of(web)["instance"]["attestation"] == "off"  # platform generic
    on_aws = plan_of(web, platform="aws")
    assert on_aws["instance"]["attestation"] == "aws-iid"
    from vmprep.plan.text import render_text

    assert ", attestation aws-iid" in render_text(on_aws).splitlines()[0]
    assert "attestation" not in render_text(plan_of(web)).splitlines()[0]
