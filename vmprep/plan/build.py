"""`vmprep plan`: what a new instance will do at first boot, without Windows (docs/plan.md).

`build_plan` renders the spec as `render` does (every secret a `<secret:NAME>` placeholder,
nothing read), builds the document the config service would send (from `--config-repo`, the
way `vmprep serve` merges a role and an instance's entry), and runs the agent itself over
both, dry (vmprep.plan.dryrun). The plan is the agent's record of that run — steps, the
exact command lines, restarts — plus what render knows (answer-file settings, the first-boot
hook, where each secret comes from) and the problems the run reveals. JSON output is the
format `vmprep plan --diff` compares (`FORMAT`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmprep.errors import InputError

FORMAT = 1


@dataclass(frozen=True)
class Facts:
    """What only the instance knows, given for the plan (`--facts FILE`)."""

    instance_id: str = "plan-instance"
    computer_name: str = "WIN-PLAN"
    mac: str | None = None
    platform: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)


def load_facts(path: Path | None) -> Facts:
    if path is None:
        return Facts()
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the facts: {exc}") from None
    if data is None:
        return Facts()
    known = {"instance_id", "computer_name", "mac", "platform", "variables", "inputs"}
    if not isinstance(data, dict) or set(data) - known:
        raise InputError(
            f"{path}: facts are a mapping of {', '.join(sorted(known))}",
            hint="e.g. {instance_id: 4f2c..., variables: {site: fra1}, inputs: {role: sql}}",
        )
    for name in ("variables", "inputs"):
        if not isinstance(data.get(name, {}), dict):
            raise InputError(f"{path}: {name} must be a mapping")
    for name in ("instance_id", "computer_name", "mac", "platform"):
        if name in data and not isinstance(data[name], str):
            raise InputError(f"{path}: {name} must be text")
    return Facts(**data)


def build_plan(
    spec_path: Path,
    *,
    facts: Facts | None = None,
    config_repo: Path | None = None,
    role: str | None = None,
    python: str | None = None,
    platform: str | None = None,
) -> dict[str, Any]:
    import json

    from vmprep.plan.document import planned_document, unknown_document
    from vmprep.plan.dryrun import dry_run
    from vmprep.render import render
    from vmprep.spec import load_spec

    facts = facts or Facts()
    spec = load_spec(spec_path)
    chosen = platform or facts.platform
    if chosen is not None:
        from vmprep.spec.platforms import PLATFORMS

        if chosen not in PLATFORMS:
            raise InputError(f"platform {chosen!r} is not one of {', '.join(PLATFORMS)}")
        spec.data["image"]["platform"] = chosen
    if python is None and "embedded" in spec.agent["runtime"]:
        # The bundled interpreter's place on the image: a plan needs no copy of the zip.
        from vmprep.spec.embedded import interpreter_path

        python = interpreter_path(spec.agent["install_dir"])
    result = render(spec, python, placeholders=True, platform="win32")
    agent_json = json.loads(next(v for k, v in result.files.items() if k.endswith("agent.json")))
    agent_json["variables"] = {**agent_json["variables"], **facts.variables}
    ph = agent_json.get("phone_home")
    role_input = "role" in ((agent_json.get("inputs") or {}).get("keys") or {})
    decided_role = (
        role or (facts.inputs.get("role") if role_input else None) or (ph or {}).get("role")
    )
    if ph is not None and decided_role:
        ph["role"] = decided_role
    if agent_json.get("inputs"):
        agent_json["inputs"]["sources"] = ["file"]  # the facts stand in for the platform
    document = None
    wanted = agent_json.get("baked_secrets") or []
    if ph is not None and decided_role:
        if config_repo is not None:
            document = planned_document(config_repo, decided_role, facts, wanted)
        else:  # the role's own steps are unknown: only the secrets the baked steps ask for
            document = unknown_document(decided_role, wanted)
    run = dry_run(
        agent_json,
        document,
        instance_id=facts.instance_id,
        computer_name=facts.computer_name,
        mac=facts.mac,
        inputs=_inputs(agent_json, facts),
    )
    from vmprep.plan.report import assemble

    return assemble(spec, result, agent_json, document, run, facts, config_repo)


def _inputs(agent_json: dict[str, Any], facts: Facts) -> dict[str, Any] | None:
    """The deploy-time inputs as the facts give them (defaults for the rest)."""
    decl = agent_json.get("inputs")
    if not decl:
        return None
    decided: dict[str, Any] = {}
    for key, rule in decl["keys"].items():
        if key in facts.inputs:
            decided[key] = {"value": str(facts.inputs[key]), "source": "facts"}
        elif rule.get("default") is not None:
            decided[key] = {"value": rule["default"], "source": "default"}
    return decided
