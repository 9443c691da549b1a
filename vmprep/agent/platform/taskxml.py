"""The startup task as Task Scheduler XML (`schtasks /Create /XML <file> /TN vmprep-agent /F`).

`schtasks /Create /SC ONSTART` leaves Task Scheduler's defaults in place: priority 7 (below
normal: "Priority levels 7 and 8 are used for background tasks"), no start on battery and a
stop when the machine goes on battery, and a 72-hour execution time limit. The XML states
every setting instead:

- a boot trigger (`BootTrigger`), run as LocalSystem (`S-1-5-18`) with `HighestAvailable`;
- `Priority` 5: normal process priority ("levels 4, 5, and 6 are used for interactive tasks")
  https://learn.microsoft.com/windows/win32/taskschd/tasksettings-priority
- `DisallowStartIfOnBatteries` / `StopIfGoingOnBatteries` false (both default to true)
  https://learn.microsoft.com/windows/win32/taskschd/taskschedulerschema-settingstype-complextype
- `ExecutionTimeLimit` `PT0S`: "A value of PT0S will enable the task to run indefinitely"
  https://learn.microsoft.com/windows/win32/taskschd/taskschedulerschema-executiontimelimit-settingstype-element
- `MultipleInstancesPolicy` `IgnoreNew`, `AllowStartOnDemand` true (`launch` uses `/Run`).

Built with ElementTree; written as UTF-16 with a byte order mark and an encoding declaration
that says so, the form Task Scheduler exports.
Schema: https://learn.microsoft.com/windows/win32/taskschd/task-scheduler-schema
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"
LOCAL_SYSTEM = "S-1-5-18"
PRIORITY = 5
# CreateProcess: the executable's path is at most MAX_PATH (260) characters, the whole command
# line at most 32,767 including the terminating null.
# https://learn.microsoft.com/windows/win32/api/processthreadsapi/nf-processthreadsapi-createprocessw
MAX_COMMAND = 259
MAX_COMMAND_LINE = 32_766

SETTINGS: tuple[tuple[str, str], ...] = (
    ("MultipleInstancesPolicy", "IgnoreNew"),
    ("DisallowStartIfOnBatteries", "false"),
    ("StopIfGoingOnBatteries", "false"),
    ("AllowHardTerminate", "true"),
    ("StartWhenAvailable", "false"),
    ("RunOnlyIfNetworkAvailable", "false"),
    ("AllowStartOnDemand", "true"),
    ("Enabled", "true"),
    ("Hidden", "false"),
    ("RunOnlyIfIdle", "false"),
    ("WakeToRun", "false"),
    ("ExecutionTimeLimit", "PT0S"),
    ("Priority", str(PRIORITY)),
)


def task_action(argv: list[str]) -> tuple[str, str]:
    """The task's `Command` and `Arguments` for an argv: the interpreter parses its arguments
    by the C runtime's rules, which `list2cmdline` writes."""
    return argv[0], subprocess.list2cmdline(argv[1:])


def command_problem(command: str, arguments: str) -> str | None:
    """Why this action cannot be a startup task, or None."""
    if len(command) > MAX_COMMAND:
        return (
            f"the interpreter path is {len(command)} characters; Windows starts a program "
            f"from a path of at most {MAX_COMMAND}"
        )
    line = len(command) + 3 + len(arguments)  # the quoted command, a blank, the arguments
    if line > MAX_COMMAND_LINE:
        return (
            f"the task's command line would be {line} characters; Windows allows {MAX_COMMAND_LINE}"
        )
    if "%" in command or "%" in arguments:
        # Task Scheduler expands %VARIABLES% in an Exec action's Command and Arguments.
        return "a path contains '%', which Task Scheduler would expand as an environment variable"
    if '"' in command or "\x00" in command + arguments:
        return "the interpreter path contains a quote or NUL character"
    return None


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{NS}}}{tag}")
    element.text = text
    return element


def task_xml(command: str, arguments: str, working_dir: str, description: str) -> bytes:
    """The task definition, UTF-16 with BOM. Raises ValueError for an action it cannot hold."""
    why = command_problem(command, arguments)
    if why is not None:
        raise ValueError(why)
    ET.register_namespace("", NS)
    task = ET.Element(f"{{{NS}}}Task", {"version": "1.2"})
    info = ET.SubElement(task, f"{{{NS}}}RegistrationInfo")
    _text(info, "Description", description)
    triggers = ET.SubElement(task, f"{{{NS}}}Triggers")
    boot = ET.SubElement(triggers, f"{{{NS}}}BootTrigger")
    _text(boot, "Enabled", "true")
    principals = ET.SubElement(task, f"{{{NS}}}Principals")
    principal = ET.SubElement(principals, f"{{{NS}}}Principal", {"id": "Author"})
    _text(principal, "UserId", LOCAL_SYSTEM)
    _text(principal, "RunLevel", "HighestAvailable")
    settings = ET.SubElement(task, f"{{{NS}}}Settings")
    for tag, value in SETTINGS[:6]:
        _text(settings, tag, value)
    idle = ET.SubElement(settings, f"{{{NS}}}IdleSettings")
    _text(idle, "StopOnIdleEnd", "false")
    _text(idle, "RestartOnIdle", "false")
    for tag, value in SETTINGS[6:]:
        _text(settings, tag, value)
    actions = ET.SubElement(task, f"{{{NS}}}Actions", {"Context": "Author"})
    exec_ = ET.SubElement(actions, f"{{{NS}}}Exec")
    _text(exec_, "Command", command)
    if arguments:
        _text(exec_, "Arguments", arguments)
    _text(exec_, "WorkingDirectory", working_dir)
    body = ET.tostring(task, encoding="unicode")
    text = '<?xml version="1.0" encoding="UTF-16"?>\r\n' + body
    return b"\xff\xfe" + text.encode("utf-16-le")
