"""What preflight asks Windows through PowerShell: one fixed script, one JSON answer.

One PowerShell start costs about a second, so every query preflight needs runs in one script
(`facts_argv`) whose sections fail independently (`{"error": "..."}`). No spec value is ever
part of a script; package names from the machine are checked against a strict pattern before
`remove_appx_argv` quotes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vmprep.sysprep.platform import CommandResult

POWERSHELL = (
    "powershell.exe",
    "-NoLogo",
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-Command",
)

# Azure's agents: sysprep racing them leaves IMAGE_STATE_UNDEPLOYABLE (hashicorp/packer#9261).
AZURE_AGENT_SERVICES = ("RdAgent", "WindowsAzureGuestAgent")
# Google's guest agent (github.com/GoogleCloudPlatform/guest-agent): the `gce-agents` check.
GCE_AGENT_SERVICES = ("GCEAgent",)
CLOUD_AGENT_SERVICES = (*AZURE_AGENT_SERVICES, *GCE_AGENT_SERVICES)

FACTS_SCRIPT = "\n".join(
    [
        "$ErrorActionPreference = 'Stop'",
        "[Console]::OutputEncoding = [Text.Encoding]::UTF8",
        "$r = [ordered]@{}",
        # AppX: installed for a user, not provisioned for all users (what sysprep refuses).
        "try {",
        "  $prov = @{}",
        "  Get-AppxProvisionedPackage -Online | ForEach-Object { $prov[$_.DisplayName] = 1 }",
        "  $r.appx = @(Get-AppxPackage -AllUsers | Where-Object {",
        "    -not $_.IsFramework -and -not $_.NonRemovable -and $_.SignatureKind -ne 'System'",
        "    -and -not $prov.ContainsKey($_.Name) } | ForEach-Object {",
        "    [pscustomobject]@{ name = $_.Name; full_name = $_.PackageFullName;",
        "      users = @($_.PackageUserInformation | ForEach-Object {",
        "        [string]$_.UserSecurityId.Username }) } })",
        "} catch { $r.appx = @{ error = $_.Exception.Message } }",
        # BitLocker / device encryption of the OS volume.
        "try {",
        "  $v = Get-CimInstance -Namespace 'root/cimv2/Security/MicrosoftVolumeEncryption'"
        + " -ClassName Win32_EncryptableVolume -Filter \"DriveLetter='$env:SystemDrive'\"",
        "  if ($null -eq $v) { $r.bitlocker = @{ present = $false } } else {",
        "    $c = Invoke-CimMethod -InputObject $v -MethodName GetConversionStatus",
        "    $p = Invoke-CimMethod -InputObject $v -MethodName GetProtectionStatus",
        "    $r.bitlocker = @{ present = $true; conversion_status = [int]$c.ConversionStatus;",
        "      percent = [double]$c.EncryptionPercentage;"
        + " protection_status = [int]$p.ProtectionStatus } }",
        "} catch [Microsoft.Management.Infrastructure.CimException] {",
        "  $r.bitlocker = @{ present = $false }",
        "} catch { $r.bitlocker = @{ error = $_.Exception.Message } }",
        "try {",
        "  $s = Get-CimInstance -ClassName SoftwareLicensingService",
        "  $r.rearm = @{ remaining = [int]$s.RemainingWindowsReArmCount }",
        "} catch { $r.rearm = @{ error = $_.Exception.Message } }",
        "try {",
        "  $cs = Get-CimInstance -ClassName Win32_ComputerSystem",
        "  $r.domain = @{ part_of_domain = [bool]$cs.PartOfDomain; domain = [string]$cs.Domain }",
        "} catch { $r.domain = @{ error = $_.Exception.Message } }",
        "try {",
        "  $r.services = @(Get-Service -Name "
        + ",".join(CLOUD_AGENT_SERVICES)
        + " -ErrorAction SilentlyContinue | ForEach-Object {",
        "    [pscustomobject]@{ name = $_.Name; status = [string]$_.Status } })",
        "} catch { $r.services = @{ error = $_.Exception.Message } }",
        # Azure needs DHCP on every adapter (prepare-for-upload-vhd-image).
        "try {",
        "  $r.dhcp = @(Get-CimInstance -ClassName Win32_NetworkAdapterConfiguration"
        + " -Filter 'IPEnabled=True' | ForEach-Object {",
        "    [pscustomobject]@{ adapter = [string]$_.Description; dhcp = [bool]$_.DHCPEnabled } })",
        "} catch { $r.dhcp = @{ error = $_.Exception.Message } }",
        "ConvertTo-Json -InputObject $r -Depth 6 -Compress",
    ]
)

# PackageFullName: Name_Version_Arch_ResourceId_PublisherId, letters, digits, . - _ and ~.
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_~]{2,200}$")


class ProbeError(Exception):
    """A query could not be answered; preflight reports the check as not verified."""


@dataclass(frozen=True)
class AppxPackage:
    name: str
    full_name: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class BitLocker:
    present: bool
    conversion_status: int = 0  # 0 FullyDecrypted, 1 FullyEncrypted, 2..5 in progress/paused
    percent: float = 0.0
    protection_status: int = 0  # 0 off, 1 on, 2 unknown

    @property
    def decrypted(self) -> bool:
        return not self.present or (self.conversion_status == 0 and self.percent == 0)


def facts_argv() -> list[str]:
    return [*POWERSHELL, FACTS_SCRIPT]


def remove_appx_argv(packages: Sequence[AppxPackage]) -> list[str]:
    lines = ["$ErrorActionPreference = 'Stop'"]
    for package in packages:
        if not _PACKAGE_NAME.match(package.full_name):
            raise ProbeError(f"refusing to pass an unexpected package name: {package.full_name!r}")
        lines.append(f"Remove-AppxPackage -AllUsers -Package '{package.full_name}'")
    return [*POWERSHELL, "; ".join(lines)]


def parse_facts(result: CommandResult) -> dict[str, Any]:
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ProbeError(
            f"PowerShell exited with {result.returncode}" + (f": {detail[-1]}" if detail else "")
        )
    try:
        data = json.loads(result.stdout.strip() or "null")
    except json.JSONDecodeError as exc:
        raise ProbeError(f"PowerShell printed something that is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProbeError("PowerShell did not print a JSON object")
    return data


def _section(facts: dict[str, Any], name: str) -> Any:
    if name not in facts:
        raise ProbeError(f"no {name!r} in the answer")
    value = facts[name]
    if isinstance(value, dict) and "error" in value:
        raise ProbeError(f"{name}: {value['error']}")
    return value


def _as_list(value: Any) -> list[Any]:
    # ConvertTo-Json may unwrap a one-element array; accept both shapes.
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_appx(facts: dict[str, Any]) -> list[AppxPackage]:
    packages = []
    for item in _as_list(_section(facts, "appx")):
        if not isinstance(item, dict) or not isinstance(item.get("full_name"), str):
            raise ProbeError(f"appx: unexpected entry {item!r}")
        users = tuple(str(u) for u in _as_list(item.get("users")) if u)
        packages.append(AppxPackage(str(item.get("name", "")), item["full_name"], users))
    return sorted(packages, key=lambda p: p.full_name.casefold())


def parse_bitlocker(facts: dict[str, Any]) -> BitLocker:
    value = _section(facts, "bitlocker")
    if not isinstance(value, dict):
        raise ProbeError(f"bitlocker: unexpected answer {value!r}")
    if not value.get("present"):
        return BitLocker(present=False)
    try:
        return BitLocker(
            True,
            int(value["conversion_status"]),
            float(value.get("percent", 0)),
            int(value.get("protection_status", 0)),
        )
    except (KeyError, TypeError, ValueError):
        raise ProbeError(f"bitlocker: unexpected answer {value!r}") from None


def parse_rearm(facts: dict[str, Any]) -> int:
    value = _section(facts, "rearm")
    if not isinstance(value, dict) or not isinstance(value.get("remaining"), int):
        raise ProbeError(f"rearm: unexpected answer {value!r}")
    return int(value["remaining"])


def parse_domain(facts: dict[str, Any]) -> str | None:
    """The domain when the machine is joined to one, else None."""
    value = _section(facts, "domain")
    if not isinstance(value, dict):
        raise ProbeError(f"domain: unexpected answer {value!r}")
    return str(value.get("domain") or "?") if value.get("part_of_domain") else None


def parse_dhcp(facts: dict[str, Any]) -> list[str]:
    """The IP-enabled adapters without DHCP (a static address)."""
    static = []
    for item in _as_list(_section(facts, "dhcp")):
        if not isinstance(item, dict):
            raise ProbeError(f"dhcp: unexpected entry {item!r}")
        if not item.get("dhcp"):
            static.append(str(item.get("adapter") or "?"))
    return static


def parse_services(facts: dict[str, Any]) -> dict[str, str]:
    """Present cloud agent services -> their status (`Running`, `Stopped`, ...)."""
    services = {}
    for item in _as_list(_section(facts, "services")):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ProbeError(f"services: unexpected entry {item!r}")
        services[item["name"]] = str(item.get("status", ""))
    return services
