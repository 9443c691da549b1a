"""Windows Firewall rule groups: the display names people write -> the group ids Windows wants.

Networking-MPSSVC-Svc's `FirewallGroup/Group` "must be the Group ID associated with the firewall
group" (Microsoft's Unattended Windows Setup Reference, networking-mpssvc-svc-firewallgroups;
its example is `@FirewallAPI.dll,-28752` for Remote Desktop). Display names are localized and
are not accepted there, so render maps the well-known English names (matched case-insensitively)
to their ids and passes through anything that already is a resource id (it starts with `@`, e.g.
`@FirewallAPI.dll,-28502`); `vmprep validate` refuses any other name (`firewall-group`), listing
these names. The table lives in spec so that validate and render share it.

Ids as `Get-NetFirewallRule` reports them in the `Group` property on Windows Server / Windows 10+.
"""

from __future__ import annotations

GROUP_IDS: dict[str, str] = {
    "Core Networking": "@FirewallAPI.dll,-25000",
    "File and Printer Sharing": "@FirewallAPI.dll,-28502",
    "Network Discovery": "@FirewallAPI.dll,-32752",
    "Performance Logs and Alerts": "@FirewallAPI.dll,-34752",
    "Remote Desktop": "@FirewallAPI.dll,-28752",
    "Remote Event Log Management": "@FirewallAPI.dll,-29252",
    "Remote Scheduled Tasks Management": "@FirewallAPI.dll,-33252",
    "Remote Service Management": "@FirewallAPI.dll,-29502",
    "Remote Volume Management": "@FirewallAPI.dll,-34501",
    "Windows Defender Firewall Remote Management": "@FirewallAPI.dll,-30002",
    "Windows Firewall Remote Management": "@FirewallAPI.dll,-30002",  # the pre-2016 name
    "Windows Management Instrumentation (WMI)": "@FirewallAPI.dll,-34251",
    "Windows Remote Management": "@FirewallAPI.dll,-30267",
    "Windows Remote Management (Compatibility)": "@FirewallAPI.dll,-30252",
}

_BY_FOLDED = {name.casefold(): group for name, group in GROUP_IDS.items()}


def group_id(name: str) -> str | None:
    """The group id for a spec key, or None when it is neither a known name nor an id."""
    if name.startswith("@") and len(name) > 1:
        return name
    return _BY_FOLDED.get(name.strip().casefold())


def known_groups_hint() -> str:
    return f"use one of {', '.join(GROUP_IDS)}, or a group id such as @FirewallAPI.dll,-28752"
