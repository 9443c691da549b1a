"""The startup task's XML (issue #9): checked against Microsoft's Task Scheduler schema facts.

Sources: settingsType (https://learn.microsoft.com/windows/win32/taskschd/taskschedulerschema-settingstype-complextype),
Priority (.../tasksettings-priority), ExecutionTimeLimit
(.../taskschedulerschema-executiontimelimit-settingstype-element).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from vmprep.agent.platform import taskxml as t

NS = {"t": t.NS}
PY = "C:\\Program Files\\Python312\\python.exe"
ARGV = [PY, "-I", "-S", "C:\\Program Data\\vm&prep\\agent.pyz", "run", "--config", "C:\\x\\a.json"]
# Every child settingsType allows (xs:all, each at most once).
SETTINGS_TYPE = {
    "AllowStartOnDemand", "RestartOnFailure", "MultipleInstancesPolicy",
    "DisallowStartIfOnBatteries", "StopIfGoingOnBatteries", "AllowHardTerminate",
    "StartWhenAvailable", "NetworkProfileName", "RunOnlyIfNetworkAvailable", "WakeToRun",
    "Enabled", "Hidden", "DeleteExpiredTaskAfter", "IdleSettings", "NetworkSettings",
    "ExecutionTimeLimit", "Priority", "RunOnlyIfIdle", "UseUnifiedSchedulingEngine",
    "DisallowStartOnRemoteAppSession", "MaintenanceSettings", "Volatile",
}  # fmt: skip


def parsed() -> ET.Element:
    data = t.task_xml(*t.task_action(ARGV), "C:\\ProgramData\\vmprep", "the agent")
    assert data[:2] == b"\xff\xfe"  # UTF-16 little endian with a byte order mark
    text = data[2:].decode("utf-16-le")
    assert text.startswith('<?xml version="1.0" encoding="UTF-16"?>')
    return ET.fromstring(text)


def test_a_boot_trigger_running_as_local_system_with_highest_privileges() -> None:
    task = parsed()
    assert (task.tag, task.get("version")) == (f"{{{t.NS}}}Task", "1.2")
    assert task.findtext("t:Triggers/t:BootTrigger/t:Enabled", namespaces=NS) == "true"
    principal = task.find("t:Principals/t:Principal", NS)
    assert principal is not None
    assert principal.findtext("t:UserId", namespaces=NS) == "S-1-5-18"  # LocalSystem
    assert principal.findtext("t:RunLevel", namespaces=NS) == "HighestAvailable"
    actions = task.find("t:Actions", NS)
    assert actions is not None
    assert actions.get("Context") == principal.get("id")


def test_normal_priority_no_battery_conditions_no_time_limit() -> None:
    settings = parsed().find("t:Settings", NS)
    assert settings is not None
    tags = [child.tag.split("}")[1] for child in settings]
    assert set(tags) <= SETTINGS_TYPE
    assert len(tags) == len(set(tags))
    value = {tag: settings.findtext(f"t:{tag}", namespaces=NS) for tag in tags}
    assert value["Priority"] == "5"  # 4-6: NORMAL_PRIORITY_CLASS; the default 7 is below normal
    assert value["DisallowStartIfOnBatteries"] == "false"  # default true
    assert value["StopIfGoingOnBatteries"] == "false"  # default true
    assert value["ExecutionTimeLimit"] == "PT0S"  # indefinitely; the default is 72 hours
    assert value["AllowStartOnDemand"] == "true"  # `launch` starts it with schtasks /Run
    assert value["MultipleInstancesPolicy"] == "IgnoreNew"
    assert value["RunOnlyIfIdle"] == value["RunOnlyIfNetworkAvailable"] == "false"


def test_the_action_keeps_paths_with_spaces_and_xml_special_characters() -> None:
    exec_ = parsed().find("t:Actions/t:Exec", NS)
    assert exec_ is not None
    assert exec_.findtext("t:Command", namespaces=NS) == PY
    assert exec_.findtext("t:Arguments", namespaces=NS) == (
        '-I -S "C:\\Program Data\\vm&prep\\agent.pyz" run --config C:\\x\\a.json'
    )
    assert exec_.findtext("t:WorkingDirectory", namespaces=NS) == "C:\\ProgramData\\vmprep"


@pytest.mark.parametrize(
    ("command", "arguments", "why"),
    [
        ("C:\\" + "p" * 257 + ".exe", "", "at most 259"),
        (PY, "x" * 32_740, "Windows allows 32766"),
        ("C:\\%TEMP%\\python.exe", "", "expand as an environment variable"),
        (PY, "--config C:\\100%\\a.json", "expand as an environment variable"),
    ],
)
def test_commands_windows_cannot_start_are_refused(command: str, arguments: str, why: str) -> None:
    problem = t.command_problem(command, arguments)
    assert problem is not None
    assert why in problem
    with pytest.raises(ValueError, match=why):
        t.task_xml(command, arguments, "C:\\", "d")
    assert t.command_problem(PY, "-I run") is None
