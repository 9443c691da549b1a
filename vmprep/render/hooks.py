"""The first-boot hook of each platform: which file starts the agent, and where it goes.

The launcher itself is always `render_setupcomplete`'s fixed script (three checked paths, no
other spec value). What differs is who runs it (`PlatformRules.hook`, sources in
`vmprep.spec.platforms` and docs/platforms/):

- setupcomplete: Windows runs `C:\\Windows\\Setup\\Scripts\\SetupComplete.cmd`;
- setupcomplete2: Azure's own SetupComplete.cmd CALLs `C:\\Windows\\OEM\\SetupComplete2.cmd`;
- ec2launch-task: an EC2Launch v2 `executeScript` task (merged into its agent-config.yml by
  `vmprep sysprep`) runs `<install_dir>\\firstboot.cmd`;
- startup-task: a scheduled task registered by `vmprep sysprep` before GCESysprep runs
  `<install_dir>\\firstboot.cmd` at boot.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from vmprep.render import paths
from vmprep.render.paths import overlay_path
from vmprep.render.setupcomplete import render_setupcomplete
from vmprep.spec.platforms import (
    AZURE_SETUPCOMPLETE2,
    EC2LAUNCH_TASK_FILE,
    FIRSTBOOT_CMD,
    GCE_TASK_FILE,
    GCE_TASK_NAME,
    PlatformRules,
)

SETUPCOMPLETE = paths.windows_path(paths.SETUPCOMPLETE)
TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"


def hook_script(rules: PlatformRules, install_dir: str) -> str:
    """The Windows path of the script that starts the agent on this platform."""
    if rules.hook == "setupcomplete":
        return SETUPCOMPLETE
    if rules.hook == "setupcomplete2":
        return AZURE_SETUPCOMPLETE2
    return f"{install_dir}\\{FIRSTBOOT_CMD}"


def hook_files(
    rules: PlatformRules, python: str, install_dir: str, chain: str | None
) -> dict[str, bytes]:
    """Overlay path -> bytes of the hook files (the launcher and what makes the platform run it)."""
    script = hook_script(rules, install_dir)
    name = script.rsplit("\\", 1)[1]
    task = GCE_TASK_NAME if rules.hook == "startup-task" else None
    launcher = render_setupcomplete(python, install_dir, chain, name=name, delete_task=task)
    files = {overlay_path(script): launcher}
    if rules.hook == "ec2launch-task":
        files[overlay_path(f"{install_dir}\\{EC2LAUNCH_TASK_FILE}")] = ec2launch_task(script)
    elif rules.hook == "startup-task":
        files[overlay_path(f"{install_dir}\\{GCE_TASK_FILE}")] = startup_task_xml(script)
    return files


def ec2launch_task(script: str) -> bytes:
    """The `executeScript` task for EC2Launch v2's postReady stage (ec2launch-v2-settings:
    frequency `once` runs again after `ec2launch sysprep` resets `.run-once`; `detach` keeps a
    slow launcher from holding up the tasks after it). `script` is a checked path."""
    task = {
        "task": "executeScript",
        "inputs": [
            {
                "frequency": "once",
                "type": "batch",
                "runAs": "localSystem",
                "detach": True,
                "content": f'call "{script}"',
            }
        ],
    }
    return (json.dumps(task, indent=2) + "\n").encode("ascii")


def startup_task_xml(script: str) -> bytes:
    """A Task Scheduler 1.2 definition: at boot, as SYSTEM, normal priority (5), no battery
    conditions, one hour at most (the launcher returns within seconds). UTF-16 with a BOM, as
    `schtasks /Create /XML` reads it. Schema: learn.microsoft.com/windows/win32/taskschd/
    task-scheduler-schema; priority: .../taskschd/tasksettings-priority."""
    ET.register_namespace("", TASK_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        element = ET.SubElement(parent, f"{{{TASK_NS}}}{tag}")
        element.text = text
        return element

    task = ET.Element(f"{{{TASK_NS}}}Task", {"version": "1.2"})
    info = sub(task, "RegistrationInfo")
    sub(info, "Description", "vmprep: start the first-boot agent (registered by vmprep sysprep)")
    sub(info, "URI", f"\\{GCE_TASK_NAME}")
    triggers = sub(task, "Triggers")
    boot = sub(triggers, "BootTrigger")
    sub(boot, "Enabled", "true")
    principal = sub(sub(task, "Principals"), "Principal")
    principal.set("id", "System")
    sub(principal, "UserId", "S-1-5-18")
    sub(principal, "RunLevel", "HighestAvailable")
    settings = sub(task, "Settings")
    for tag, text in (
        ("MultipleInstancesPolicy", "IgnoreNew"),
        ("DisallowStartIfOnBatteries", "false"),
        ("StopIfGoingOnBatteries", "false"),
        ("AllowHardTerminate", "true"),
        ("StartWhenAvailable", "true"),
        ("Enabled", "true"),
        ("ExecutionTimeLimit", "PT1H"),
        ("Priority", "5"),
    ):
        sub(settings, tag, text)
    actions = sub(task, "Actions")
    actions.set("Context", "System")
    sub(sub(actions, "Exec"), "Command", script)
    ET.indent(task)
    text = '<?xml version="1.0" encoding="UTF-16"?>\n' + ET.tostring(task, encoding="unicode")
    return (text + "\n").replace("\n", "\r\n").encode("utf-16")
