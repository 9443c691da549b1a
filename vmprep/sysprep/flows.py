"""How `vmprep sysprep --generalize` runs on each platform (`PlatformRules.sysprep_flow`).

- sysprep (generic, hyperv, vmware): our answer file next to sysprep.exe, `/unattend:`.
- sysprep-no-answer-file (azure): no answer file at all ("custom answer files are not
  supported", learn.microsoft.com/azure/virtual-machines/generalize); leftover answer files
  are removed (backed up, restored on failure); `sysprep /generalize /oobe /quit /quiet`.
- ec2launch (aws): our executeScript task is merged into EC2Launch v2's agent-config.yml the way
  its docs show (`ec2launch get-agent-config --format json`, edit, write, `ec2launch validate`),
  then `ec2launch sysprep --clean` resets its state and runs Sysprep with its own answer file
  (docs.aws.amazon.com/AWSEC2/latest/WindowsGuide/ec2launch-v2-settings.html).
- gcesysprep (gce): the first-boot task is registered with `schtasks /Create /XML`, then
  `GCESysprep -NoShutdown` runs Sysprep with Google's answer file
  (github.com/GoogleCloudPlatform/compute-image-windows, gce/sysprep/sysprep.ps1).

Every flow ends the same way: vmprep polls ImageState and shuts down itself (packer#5385).
Nothing here runs a spec value: the commands are fixed, the paths are vmprep's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmprep.errors import PreflightError
from vmprep.spec.platforms import GCE_TASK_FILE, GCE_TASK_NAME, PlatformRules
from vmprep.sysprep.platform import Platform, windows_path
from vmprep.sysprep.probes import POWERSHELL

EC2LAUNCH_EXE = "Program Files/Amazon/EC2Launch/EC2Launch.exe"
AGENT_CONFIG = "ProgramData/Amazon/EC2Launch/config/agent-config.yml"
POWERSHELL_EXE = "Windows/System32/WindowsPowerShell/v1.0/powershell.exe"
SYSPREP_EXE = "Windows/System32/Sysprep/sysprep.exe"
# Answer files Windows would find before (or instead of) the cloud's own (how-configuration-
# passes-work: the implicit search order); removed on platforms without one of ours.
LEFTOVER_ANSWER_FILES = (
    "Windows/Panther/unattend*.xml",
    "Windows/Panther/Unattend/unattend.xml",
    "Windows/Panther/Unattend/autounattend.xml",
    "Windows/System32/Sysprep/unattend.xml",
)
GCESYSPREP = "GCESysprep -NoShutdown"


@dataclass
class FlowPlan:
    """What a flow adds to the generic plan."""

    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)  # more overlay files (agent-config)
    remove: list[str] = field(default_factory=list)  # drive-relative files to back up and delete
    before: list[list[str]] = field(default_factory=list)  # run after install, before sysprep
    undo: list[list[str]] = field(default_factory=list)  # run when sysprep fails


def default_tool(platform: Platform, rules: PlatformRules) -> Path:
    """What runs Sysprep on this platform (`--sysprep-exe` overrides it)."""
    rel = {"ec2launch": EC2LAUNCH_EXE, "gcesysprep": POWERSHELL_EXE}.get(
        rules.sysprep_flow, SYSPREP_EXE
    )
    path = platform.root / rel
    from vmprep.sysprep.winhost import WindowsPlatform, sysnative

    return sysnative(path) if isinstance(platform, WindowsPlatform) else path


def leftover_answer_files(root: Path) -> list[str]:
    from fnmatch import fnmatch

    found = []
    for pattern in LEFTOVER_ANSWER_FILES:
        folder, _, name = pattern.rpartition("/")
        base = root / folder
        if base.is_dir():
            found += [
                f"{folder}/{p.name}"
                for p in base.iterdir()
                if p.is_file() and fnmatch(p.name.casefold(), name.casefold())
            ]
    return sorted(set(found))


def plan_flow(
    platform: Platform,
    rules: PlatformRules,
    tool: Path,
    sysprep: dict[str, Any],
    overlay: dict[str, bytes],
) -> FlowPlan:
    """The command and the extra changes of a no-answer-file flow (not `sysprep`)."""
    remove = leftover_answer_files(platform.root)
    if rules.sysprep_flow == "sysprep-no-answer-file":
        argv = [str(tool), "/generalize", "/oobe", "/quit", "/quiet"]
        if sysprep.get("vm_mode"):
            argv.append("/mode:vm")  # only when asked: redeployable on the same hypervisor only
        return FlowPlan(argv, remove=remove)
    if rules.sysprep_flow == "ec2launch":
        task = _overlay_file(overlay, "ec2launch-task.json")
        config = merge_agent_config(_agent_config(platform, tool), json.loads(task))
        files = {AGENT_CONFIG: (json.dumps(config, indent=2) + "\n").encode("utf-8")}
        return FlowPlan(
            [str(tool), "sysprep", "--clean"],
            files=files,
            remove=remove,
            before=[[str(tool), "validate"]],
        )
    if rules.sysprep_flow == "gcesysprep":
        rel = next(r for r in overlay if r.endswith("/" + GCE_TASK_FILE))
        xml = windows_path(platform, rel)
        create = ["schtasks.exe", "/Create", "/TN", GCE_TASK_NAME, "/XML", xml, "/F"]
        delete = ["schtasks.exe", "/Delete", "/TN", GCE_TASK_NAME, "/F"]
        argv = [str(tool), *POWERSHELL[1:], GCESYSPREP]
        return FlowPlan(argv, remove=remove, before=[create], undo=[delete])
    raise ValueError(f"no flow for {rules.sysprep_flow}")  # a bug


def _overlay_file(overlay: dict[str, bytes], name: str) -> bytes:
    return next(data for rel, data in overlay.items() if rel.endswith("/" + name))


def _agent_config(platform: Platform, tool: Path) -> dict[str, Any]:
    result = platform.run([str(tool), "get-agent-config", "--format", "json"], timeout=120)
    try:
        config = json.loads(result.stdout) if result.returncode == 0 else None
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict) or not isinstance(config.get("config"), list):
        raise PreflightError(
            f"`EC2Launch.exe get-agent-config --format json` gave no configuration "
            f"({result.returncode}): {(result.stderr or result.stdout).strip()[:200]}",
            hint="is EC2Launch v2 installed and its agent-config.yml valid (`ec2launch validate`)?",
        )
    return config


def merge_agent_config(config: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """`config` with our executeScript input in the postReady stage (a task appears once per
    stage, so an existing executeScript gets our input added; a second run replaces ours)."""
    merged: dict[str, Any] = json.loads(json.dumps(config))
    stages = merged["config"]
    stage = next((s for s in stages if str(s.get("stage", "")).casefold() == "postready"), None)
    if stage is None:
        stage = {"stage": "postReady", "tasks": []}
        stages.append(stage)
    tasks = stage.setdefault("tasks", [])
    ours = task["inputs"][0]
    existing = next((t for t in tasks if t.get("task") == "executeScript"), None)
    if existing is None:
        tasks.insert(0, task)
        return merged
    inputs = existing.setdefault("inputs", [])
    inputs[:] = [i for i in inputs if i.get("content") != ours["content"]] + [ours]
    return merged
