"""`render --explain`: what goes where and which spec line produced it, read off the render
result (`render(..., placeholders=True)`: no secret is resolved, nothing is written) so that
the explanation cannot drift from what `render` writes."""

from __future__ import annotations

from dataclasses import dataclass

from vmprep.render import secrets
from vmprep.render.build import UNATTEND, RenderResult
from vmprep.render.hooks import hook_script
from vmprep.render.platformsteps import platform_steps
from vmprep.render.tree import MANIFEST
from vmprep.spec import Spec
from vmprep.spec.load import JsonPath
from vmprep.spec.platforms import EC2LAUNCH_TASK_FILE, GCE_TASK_FILE, GCE_TASK_NAME, platform_of


@dataclass(frozen=True)
class Row:
    target: str  # Windows path of the file
    what: str  # the setting or key
    value: str
    source: str  # "12:5 setup.timezone", "default setup.timezone", "fixed", "--python"


def explain(spec: Spec, result: RenderResult) -> list[Row]:
    """The rows of `render --explain` for `result`, rendered from `spec`."""
    launch, bundled = result.launch, result.runtime
    refs = {ref.path: ref for ref in secrets.find_refs(spec)}
    rules = platform_of(spec.data)
    unattend = _target(UNATTEND)
    where = _source(spec, ("image", "platform"))
    rows = [
        Row("(first boot)", f"platform {rules.name}", line, where)
        for line in rules.flow(spec.agent["install_dir"])
    ]
    for s in result.settings:
        value = f"encoded {refs[s.source].describe()}" if s.source in refs else s.value
        component = s.component.removeprefix("Microsoft-Windows-")
        what = f"{s.pass_name} {component}/{s.setting}"
        rows.append(Row(unattend, what, value, _source(spec, s.source)))
    cmd = hook_script(rules, launch.install_dir)
    runtime: JsonPath = ("agent", "runtime", "python")
    if launch.python_source == "agent.runtime.embedded":
        runtime = ("agent", "runtime", "embedded")
    spec_key = launch.python_source in ("agent.runtime.python", "agent.runtime.embedded")
    python_source = _source(spec, runtime) if spec_key else ""
    rows.append(Row(cmd, "interpreter", launch.python, python_source or launch.python_source))
    rows.append(
        Row(cmd, "install_dir", launch.install_dir, _source(spec, ("agent", "install_dir")))
    )
    if launch.chain is not None:
        rows.append(Row(cmd, "chained script", launch.chain, "--chain-setupcomplete"))
    base = f"C:\\{launch.install_dir[3:]}"
    if rules.hook == "ec2launch-task":
        task = "executeScript, postReady, frequency once, runAs localSystem: calls the launcher"
        rows.append(Row(f"{base}\\{EC2LAUNCH_TASK_FILE}", "EC2Launch v2 task", task, where))
    elif rules.hook == "startup-task":
        task = f"{GCE_TASK_NAME}: at boot, SYSTEM, priority 5; runs the launcher, then goes"
        rows.append(Row(f"{base}\\{GCE_TASK_FILE}", "scheduled task", task, where))
    vendored = ", ".join(f"{k} {v}" for k, v in result.manifest["vendored"].items())
    version = result.manifest["vmprep_version"]
    rows.append(Row(f"{base}\\agent.pyz", "agent", f"vmprep {version}; {vendored}", "fixed"))
    if bundled is not None:
        source = python_source or launch.python_source
        rows.append(Row(f"{base}\\python", "bundled runtime", bundled.details(), source))
    agent_json = f"{base}\\agent.json"
    for key in ("identity", "variables", "keep_answer_files", "log_level", "phone_home"):
        if key in spec.agent:
            value = _short(spec.agent[key])
            rows.append(Row(agent_json, key, value, _source(spec, ("agent", key))))
    rows.extend(
        Row(agent_json, step["id"], step["description"], where)
        for step in platform_steps(spec, rules)
    )
    for index, step in enumerate(spec.agent["steps"]):
        path: JsonPath = ("agent", "steps", index)
        rows.append(Row(agent_json, f"steps[{index}]", step["id"], _source(spec, path)))
    rows.extend(
        Row(agent_json, f"secrets[{ref.name}]", "***", _source(spec, ref.path))
        for ref in refs.values()
        if ref.path[0] == "agent" and ref.kind != "secret"
    )
    rows.append(Row("(not installed)", MANIFEST, "files, sha256, sizes", "fixed"))
    return rows


def _target(overlay: str) -> str:
    return "C:\\" + overlay.replace("/", "\\")


def _source(spec: Spec, path: JsonPath | None) -> str:
    if path is None:
        return "fixed"
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    if path not in spec.loaded.marks:
        return f"default {dotted}"
    line, column = spec.position(path)
    return f"{line}:{column} {dotted}"


def _short(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(str(k) for k in value) + "}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)
