"""The plan as data (docs/plan.md "JSON"): assembled from render's result and the agent's dry
run. Stable keys and order, so that `vmprep plan --diff` and a plain `diff` can compare two."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmprep.plan.build import Facts
    from vmprep.plan.dryrun import DryRun
    from vmprep.render.build import RenderResult
    from vmprep.spec import Spec

MAY_RESTART = {
    "rename_computer": "always (a new name takes effect at a restart)",
    "join_domain": "always (the membership takes effect at a restart)",
    "reboot": "always",
    "windows_feature": "when Windows asks for it",
    "msi": "when the package asks for it (3010)",
    "powershell": "when the script exits 3010 or 3011",
    "cmd": "when the script exits 3010 or 3011",
    "exec": "when the program exits 3010 or 3011",
}


def assemble(
    spec: Spec,
    result: RenderResult,
    agent_json: dict[str, Any],
    document: dict[str, Any] | None,
    run: DryRun,
    facts: Facts,
    config_repo: Path | None,
) -> dict[str, Any]:
    from vmprep.agent.restarts import timing
    from vmprep.agent.stepcheck import step_kind

    known_vars = {*agent_json["variables"], *(document or {}).get("variables", {})}
    known_vars |= set(run.state.get("inputs") or {})
    role_known = not _role_at_boot(agent_json, facts)
    records = run.state.get("steps", {})
    steps = []
    for source, step in run_order(agent_json["steps"], (document or {}).get("steps", [])):
        key = f"{source}:{step['id']}"
        rec = records.get(key) or {}
        kind = step_kind(step)
        at_boot = _decided_at_boot(step.get("when"), known_vars, role_known)
        status = rec.get("status", "not reached")
        commands = [
            {"boot": c.boot, "command_line": c.command_line, "env": c.env}
            | ({"script": c.script} if c.script else {})
            for c in run.commands
            if c.step == key
        ]
        steps.append(
            {
                "id": step["id"],
                "source": source,
                "kind": kind,
                "when": step.get("when"),
                "decision": "decided at boot" if at_boot else _decision(status),
                "status": status,
                "commands": commands,
                "timeout": step.get("timeout"),
                "retries": int(step.get("retries", 0)),
                "may_restart": MAY_RESTART.get(kind, "no"),
                "restart_timing": timing(step, kind, "continue")
                if kind in MAY_RESTART and kind != "reboot"
                else None,
                "reboot_budget": int(step.get("reboot_budget", 3)),
                "restarts": int(rec.get("reboots", 0)),
            }
        )
    restarts = [
        {"boot": c.boot, "step": c.step, "command_line": c.command_line}
        for c in run.commands
        if c.argv and c.argv[0].lower().rsplit("\\", 1)[-1] == "shutdown.exe"
    ]
    plan = {
        "format": 1,
        "spec": spec.path.name,
        "platform": result.manifest.get("platform"),
        "instance": {
            "instance_id": facts.instance_id,
            "computer_name": facts.computer_name,
            "role": (agent_json.get("phone_home") or {}).get("role"),
            "role_decided_at_boot": not role_known,
            # The evidence config fetches carry (docs/attestation.md); off without phone-home.
            "attestation": (agent_json.get("phone_home") or {}).get("attestation") or "off",
            "inputs": run.state.get("inputs") or {},
        },
        "result": run.state.get("state"),
        "error": run.state.get("error"),
        "restarts": {"count": len(restarts), "boots": run.boots, "requests": restarts},
        "steps": steps,
        "secrets": _secrets(spec, agent_json, document),
        "answer_file": _answer_file(result),
        "problems": _problems(steps, run, document, config_repo, agent_json),
        "notes": notes(config_repo, agent_json),
    }
    return plan


def run_order(
    baked: list[dict[str, Any]], remote: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """The order the agent runs steps in: the baked ones, with the document's at the
    `phone_home` step (or after the last baked step when there is none)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for step in baked:
        out.append(("baked", step))
        if "phone_home" in step:
            out += [("remote", s) for s in remote]
    if not any("phone_home" in s for s in baked):
        out += [("remote", s) for s in remote]
    return out


def _decision(status: str) -> str:
    return {"done": "runs", "skipped": "skipped (when)", "failed": "runs and fails"}.get(
        status, status
    )


def _role_at_boot(agent_json: dict[str, Any], facts: Facts) -> bool:
    role_input = ((agent_json.get("inputs") or {}).get("keys") or {}).get("role") or {}
    return bool(role_input) and "role" not in facts.inputs and not role_input.get("default")


def _decided_at_boot(cond: dict[str, Any] | None, known: set[str], role_known: bool) -> bool:
    if not cond:
        return False
    if "role" in cond and not role_known:
        return True
    return any(name not in known for name in (cond.get("variables") or {}))


def _secrets(
    spec: Spec, agent_json: dict[str, Any], document: dict[str, Any] | None
) -> list[dict[str, str]]:
    from vmprep.render import secrets as render_secrets

    out: list[dict[str, str]] = []
    for ref in render_secrets.find_refs(spec):
        if ref.kind == "secret":
            continue
        where = "the answer file" if ref.path[0] == "setup" else "agent.json"
        out.append({"name": ref.name, "from": f"{ref.kind} at render", "stored_in": where})
    delivered = set((document or {}).get("secrets", {}))
    for name in agent_json.get("baked_secrets") or []:
        source = "phone-home" if document is None or name in delivered else "NOT delivered"
        out.append({"name": name, "from": source, "stored_in": "memory only"})
    others = sorted(delivered - set(agent_json.get("baked_secrets") or []))
    out += [{"name": n, "from": "phone-home", "stored_in": "memory only"} for n in others]
    return out


def _answer_file(result: RenderResult) -> dict[str, list[dict[str, str]]]:
    passes: dict[str, list[dict[str, str]]] = {}
    for s in result.settings:
        passes.setdefault(s.pass_name, []).append(
            {"component": s.component, "setting": s.setting, "value": s.value}
        )
    return passes


def _problems(
    steps: list[dict[str, Any]],
    run: DryRun,
    document: dict[str, Any] | None,
    config_repo: Path | None,
    agent_json: dict[str, Any],
) -> list[str]:
    problems: list[str] = []
    error = run.state.get("error")
    if run.state.get("state") in ("failed", "halted") and error:
        problems.append(f"the run ends {run.state['state']}: {error['code']}: {error['message']}")
    for step in steps:
        if step["status"] == "not reached" and step["decision"] != "decided at boot":
            problems.append(f"step {step['id']} ({step['source']}) is never reached")
        if step["restarts"] > step["reboot_budget"]:
            problems.append(
                f"step {step['id']} restarts {step['restarts']} times, over its reboot_budget"
            )
    if document is not None and config_repo is not None:
        missing = set(agent_json.get("baked_secrets") or []) - set(document.get("secrets", {}))
        problems += [
            f"secret {name!r}: the baked steps need it and the role does not declare it "
            "(the service answers 409)"
            for name in sorted(missing)
        ]
    return problems


def notes(config_repo: Path | None, agent_json: dict[str, Any]) -> list[str]:
    if config_repo is None and agent_json.get("phone_home"):
        return [
            (
                "no --config-repo: the role's own steps are not planned; the secrets the "
                "baked steps ask for are assumed delivered"
            )
        ]
    return []
