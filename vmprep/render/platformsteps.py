"""On a platform without an answer file of ours, the `setup` settings a user still needs (time
zone, locale, Remote Desktop, firewall groups) become baked agent steps, run first at first boot.

Only settings written in the spec become steps: a default is left to the platform (Azure, EC2
and Compute Engine set their own time zone and locale). Every value here has been checked by
validate (a Windows time zone ID, a locale name, a known firewall group or an `@` id) and goes
into an argv, a registry value or a single-quoted PowerShell literal whose characters are
checked again below. Command lines and their sources: docs/platforms/README.md.
"""

from __future__ import annotations

import re
from typing import Any

from vmprep.render.errors import fail
from vmprep.spec import Spec, firewall
from vmprep.spec.defaults import apply_defaults
from vmprep.spec.platforms import PlatformRules

PREFIX = "platform."  # baked step ids; validate keeps user steps out of this name space
TZUTIL = "C:\\Windows\\System32\\tzutil.exe"
TERMINAL_SERVER = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server"
RDP_TCP = TERMINAL_SERVER + "\\WinStations\\RDP-Tcp"
# What may stand inside a PowerShell single-quoted literal here: no quote of any kind
# (PowerShell also closes a literal at U+2018..U+201B), no backtick, no control character.
_PS_LITERAL = re.compile(r"[A-Za-z0-9@.,:;_ ()+\-]{1,200}")


def platform_steps(spec: Spec, rules: PlatformRules) -> list[dict[str, Any]]:
    """The baked steps for `rules`, defaults filled in like the spec's own steps."""
    if not rules.agent_applies_setup:
        return []
    marks = spec.loaded.marks
    setup = spec.setup
    steps: list[dict[str, Any]] = []
    if ("setup", "timezone") in marks:
        steps.append(
            {
                "id": PREFIX + "timezone",
                "description": "setup.timezone (tzutil /s)",
                "exec": {"argv": [TZUTIL, "/s", setup["timezone"]]},
            }
        )
    if ("setup", "locale") in marks:
        locale = setup["locale"]
        system = locale if isinstance(locale, str) else locale.get("system", locale["ui"])
        literal = _literal(spec, ("setup", "locale"), system)
        script = (
            f"$want = '{literal}'\n"
            "if ((Get-WinSystemLocale).Name -ne $want) {\n"
            "  Set-WinSystemLocale -SystemLocale $want\n"
            "  exit 3010\n"
            "}\n"
        )
        steps.append(
            {
                "id": PREFIX + "locale",
                "description": "setup.locale: the system locale (a reboot when it changes)",
                "powershell": script,
            }
        )
    if ("setup", "remote_desktop") in marks:
        rdp = setup["remote_desktop"]
        steps.append(
            _dword("rdp", TERMINAL_SERVER, "fDenyTSConnections", 0 if rdp["enabled"] else 1)
        )
        if rdp["enabled"]:
            nla = 1 if rdp["network_level_auth"] else 0
            steps.append(_dword("rdp-nla", RDP_TCP, "UserAuthentication", nla))
    for index, (name, active) in enumerate(setup["firewall_groups"].items()):
        path = ("setup", "firewall_groups", name)
        group = firewall.group_id(name)
        if group is None:  # validate refuses it first (the same code)
            raise fail(spec, path, "firewall-group", f"unknown firewall group {name!r}")
        verb = "Enable" if active else "Disable"
        steps.append(
            {
                "id": f"{PREFIX}firewall-{index + 1}",
                "description": f"setup.firewall_groups: {verb.lower()} {name}",
                "powershell": f"{verb}-NetFirewallRule -Group '{_literal(spec, path, group)}'\n",
            }
        )
    filled = apply_defaults({"version": 1, "image": {"name": "x"}, "agent": {"steps": steps}})
    result: list[dict[str, Any]] = filled["agent"]["steps"]
    return result


def _dword(suffix: str, key: str, name: str, value: int) -> dict[str, Any]:
    return {
        "id": PREFIX + suffix,
        "description": f"setup.remote_desktop: {name} = {value}",
        "registry": {"key": key, "name": name, "type": "REG_DWORD", "value": value},
    }


def _literal(spec: Spec, path: tuple[str, ...], text: str) -> str:
    if not _PS_LITERAL.fullmatch(text):
        message = f"{text!r} cannot be passed to PowerShell safely"
        raise fail(spec, path, "platform-setting", message)
    return text
