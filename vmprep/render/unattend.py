"""unattend.xml: the spec's `setup` and `sysprep` sections as a Windows answer file.

Every component, setting and pass is one the Unattended Windows Setup Reference lists for that
pass (docs/render.md; https://learn.microsoft.com/en-us/windows-hardware/customize/desktop/unattend/).
Values only ever reach the file through ElementTree, so they are escaped by construction.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vmprep.render.errors import RenderError, problem
from vmprep.render.xmlbuild import AnswerFile, Setting
from vmprep.spec import Spec, firewall
from vmprep.spec.load import JsonPath

if TYPE_CHECKING:
    from vmprep.spec.types import SetupSectionOobe, SysprepSection

# The documented fix-up for LogonCount (Windows adds one to any LogonCount above 0): reset the
# remaining count during the first automatic logon. Fixed text, no spec value in it.
AUTOLOGON_FIXUP = (
    'reg add "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon" '
    "/v AutoLogonCount /t REG_DWORD /d 0 /f"
)
MAX_FIRST_LOGON_COMMANDS = 500  # Order is "an integer from 1 through 500"

# (spec path of a secret reference) -> its resolved value
Passwords = Callable[[JsonPath], str]


def encode_password(password: str, suffix: str) -> str:
    """Windows' `PlainText=false` form: base64 of UTF-16LE(password + setting name).

    Obfuscation only: anyone can decode it. The agent deletes the answer files after first boot.
    """
    return base64.b64encode((password + suffix).encode("utf-16-le")).decode("ascii")


def render_unattend(spec: Spec, passwords: Passwords) -> tuple[bytes, list[Setting]]:
    """The answer file and the settings it holds; raises RenderError for unrenderable values."""
    xml = AnswerFile(spec, spec.image["architecture"])
    _generalize(xml, spec.sysprep)
    _specialize(xml, spec)
    _oobe_system(xml, spec, passwords)
    if xml.problems:
        raise RenderError(xml.problems, hint="validate the spec: `vmprep validate SPEC`")
    return xml.to_bytes(), xml.settings


def _generalize(xml: AnswerFile, sysprep: SysprepSection) -> None:
    pnp = xml.component("generalize", "Microsoft-Windows-PnpSysprep")
    persist = sysprep["persist_device_installs"]
    xml.value(pnp, "PersistAllDeviceInstalls", persist, ("sysprep", "persist_device_installs"))
    spp = xml.component("generalize", "Microsoft-Windows-Security-SPP")
    skip = "1" if sysprep["skip_rearm"] else "0"
    xml.value(spp, "SkipRearm", skip, ("sysprep", "skip_rearm"))


def _specialize(xml: AnswerFile, spec: Spec) -> None:
    setup = spec.setup
    shell = xml.component("specialize", "Microsoft-Windows-Shell-Setup")
    xml.value(shell, "ComputerName", setup["computer_name"], ("setup", "computer_name"))
    xml.value(shell, "CopyProfile", setup["copy_profile"], ("setup", "copy_profile"))
    if "product_key" in setup:
        xml.value(shell, "ProductKey", setup["product_key"], ("setup", "product_key"))
    if "organization" in setup:
        xml.value(shell, "RegisteredOrganization", setup["organization"], ("setup", "organization"))
    if "owner" in setup:
        xml.value(shell, "RegisteredOwner", setup["owner"], ("setup", "owner"))
    xml.value(shell, "TimeZone", setup["timezone"], ("setup", "timezone"))

    spp_ux = xml.component("specialize", "Microsoft-Windows-Security-SPP-UX")
    skip = setup["skip_auto_activation"]
    xml.value(spp_ux, "SkipAutoActivation", skip, ("setup", "skip_auto_activation"))

    rdp = setup["remote_desktop"]
    lsm = xml.component("specialize", "Microsoft-Windows-TerminalServices-LocalSessionManager")
    enabled = ("setup", "remote_desktop", "enabled")
    xml.value(lsm, "fDenyTSConnections", not rdp["enabled"], enabled)
    if rdp["enabled"]:
        name = "Microsoft-Windows-TerminalServices-RDP-WinStationExtensions"
        ext = xml.component("specialize", name)
        nla = "1" if rdp["network_level_auth"] else "0"
        xml.value(ext, "UserAuthentication", nla, ("setup", "remote_desktop", "network_level_auth"))

    if setup["firewall_groups"]:
        _firewall(xml, spec)


def _firewall(xml: AnswerFile, spec: Spec) -> None:
    svc = xml.component("specialize", "Networking-MPSSVC-Svc")
    groups = xml.group(svc, "FirewallGroups")
    seen: dict[str, str] = {}
    for index, (name, active) in enumerate(spec.setup["firewall_groups"].items(), start=1):
        path: JsonPath = ("setup", "firewall_groups", name)
        group = firewall.group_id(name)
        if group is None:  # validate refuses it first (the same code)
            message = f"unknown firewall group {name!r}: {firewall.known_groups_hint()}"
            xml.problems.append(problem(spec, path, "firewall-group", message))
            continue
        if group in seen:
            message = f"firewall group {name!r} is the same group as {seen[group]!r}"
            xml.problems.append(problem(spec, path, "firewall-group", message))
            continue
        seen[group] = name
        item = xml.group(groups, "FirewallGroup", key=_firewall_key(name, index))
        xml.value(item, "Active", active, path)
        xml.value(item, "Group", group, path)
        xml.value(item, "Profile", "all", None)


def _firewall_key(name: str, index: int) -> str:
    """A stable `wcm:keyValue`: the display name without spaces, or `Group<n>` for a raw id."""
    if name.startswith("@"):
        return f"Group{index}"
    return "".join(c for c in name if c.isascii() and c.isalnum())


def _oobe_system(xml: AnswerFile, spec: Spec, passwords: Passwords) -> None:
    setup = spec.setup
    intl = xml.component("oobeSystem", "Microsoft-Windows-International-Core")
    locale = setup["locale"]
    if isinstance(locale, str):
        values = {"input": locale, "system": locale, "ui": locale, "user": locale}
        paths: dict[str, JsonPath] = dict.fromkeys(values, ("setup", "locale"))
    else:
        ui = locale["ui"]
        values = {
            "input": locale.get("input", ui),
            "system": locale.get("system", ui),
            "ui": ui,
            "user": locale.get("user", ui),
        }
        paths = {key: ("setup", "locale", key if key in locale else "ui") for key in values}
    for key, tag in (
        ("input", "InputLocale"),
        ("system", "SystemLocale"),
        ("ui", "UILanguage"),
        ("user", "UserLocale"),
    ):
        xml.value(intl, tag, values[key], paths[key])

    shell = xml.component("oobeSystem", "Microsoft-Windows-Shell-Setup")
    if "auto_logon" in setup:
        _auto_logon(xml, shell, spec, passwords)
    _first_logon_commands(xml, shell, spec)
    _oobe(xml, shell, setup["oobe"])
    xml.value(shell, "TimeZone", setup["timezone"], ("setup", "timezone"))
    if "administrator" in setup or setup["accounts"]:
        _user_accounts(xml, shell, spec, passwords)


def _password(
    xml: AnswerFile,
    parent: Any,
    tag: str,
    suffix: str,
    source: JsonPath,
    passwords: Passwords,
) -> None:
    element = xml.group(parent, tag)
    xml.value(element, "Value", encode_password(passwords(source), suffix), source, shown="***")
    xml.value(element, "PlainText", False, None)


def _auto_logon(xml: AnswerFile, shell: Any, spec: Spec, passwords: Passwords) -> None:
    auto = spec.setup["auto_logon"]
    source = _auto_logon_password(spec)
    if source is None:
        message = (
            f"automatic logon as {auto['user']!r} needs a password: set "
            "setup.auto_logon.password, or log on as the administrator or a listed account "
            "that has one"
        )
        xml.problems.append(problem(spec, ("setup", "auto_logon", "user"), "auto-logon", message))
        return
    element = xml.group(shell, "AutoLogon")
    _password(xml, element, "Password", "Password", source, passwords)
    xml.value(element, "Enabled", True, ("setup", "auto_logon"))
    # Windows adds one to LogonCount: N-1 gives N logons; 1 plus the fix-up command gives one.
    count = auto["count"]
    xml.value(element, "LogonCount", max(count - 1, 1), ("setup", "auto_logon", "count"))
    xml.value(element, "Username", auto["user"], ("setup", "auto_logon", "user"))


def _auto_logon_password(spec: Spec) -> JsonPath | None:
    setup = spec.setup
    auto = setup["auto_logon"]
    if "password" in auto:
        return ("setup", "auto_logon", "password")
    user = auto["user"].casefold()
    if user == "administrator" and "administrator" in setup:
        return ("setup", "administrator", "password")
    for index, account in enumerate(setup["accounts"]):
        if account["name"].casefold() == user and "password" in account:
            return ("setup", "accounts", index, "password")
    return None


def _first_logon_commands(xml: AnswerFile, shell: Any, spec: Spec) -> None:
    commands = spec.setup["first_logon_commands"]
    fixup = "auto_logon" in spec.setup and spec.setup["auto_logon"]["count"] == 1
    if not commands and not fixup:
        return
    if len(commands) + fixup > MAX_FIRST_LOGON_COMMANDS:
        message = (
            f"at most {MAX_FIRST_LOGON_COMMANDS - fixup} first logon commands fit "
            "(Windows allows 500, one is taken by the automatic logon fix-up)"
        )
        path: JsonPath = ("setup", "first_logon_commands")
        xml.problems.append(problem(spec, path, "first-logon-commands", message))
        return
    element = xml.group(shell, "FirstLogonCommands")
    order = 1
    if fixup:
        item = xml.group(element, "SynchronousCommand", key="")
        xml.value(item, "CommandLine", AUTOLOGON_FIXUP, ("setup", "auto_logon", "count"))
        xml.value(item, "Description", "vmprep: end automatic logon after one logon", None)
        xml.value(item, "Order", order, None)
        xml.value(item, "RequiresUserInput", False, None)
        order += 1
    for index, command in enumerate(commands):
        path = ("setup", "first_logon_commands", index)
        item = xml.group(element, "SynchronousCommand", key="")
        xml.value(item, "CommandLine", command["command"], (*path, "command"))
        if "description" in command:
            xml.value(item, "Description", command["description"], (*path, "description"))
        xml.value(item, "Order", order, path)
        xml.value(item, "RequiresUserInput", command["requires_user_input"], path)
        order += 1


def _oobe(xml: AnswerFile, shell: Any, oobe: SetupSectionOobe) -> None:
    element = xml.group(shell, "OOBE")
    for key, tag, value in (  # each key spelled out, so that mypy checks it
        ("hide_eula", "HideEULAPage", oobe["hide_eula"]),
        ("hide_local_account_screen", "HideLocalAccountScreen", oobe["hide_local_account_screen"]),
        (
            "hide_online_account_screens",
            "HideOnlineAccountScreens",
            oobe["hide_online_account_screens"],
        ),
        ("hide_wireless_setup", "HideWirelessSetupInOOBE", oobe["hide_wireless_setup"]),
        ("network_location", "NetworkLocation", oobe["network_location"]),
        ("protect_your_pc", "ProtectYourPC", oobe["protect_your_pc"]),
    ):
        xml.value(element, tag, value, ("setup", "oobe", key))
    if oobe["skip_machine_oobe"]:  # deprecated: written only when asked for (validate warns)
        xml.value(element, "SkipMachineOOBE", True, ("setup", "oobe", "skip_machine_oobe"))


def _user_accounts(xml: AnswerFile, shell: Any, spec: Spec, passwords: Passwords) -> None:
    setup = spec.setup
    element = xml.group(shell, "UserAccounts")
    if "administrator" in setup:
        source: JsonPath = ("setup", "administrator", "password")
        _password(xml, element, "AdministratorPassword", "AdministratorPassword", source, passwords)
    if not setup["accounts"]:
        return
    accounts = xml.group(element, "LocalAccounts")
    for index, account in enumerate(setup["accounts"]):
        path: JsonPath = ("setup", "accounts", index)
        item = xml.group(accounts, "LocalAccount", key="")
        if "password" in account:
            _password(xml, item, "Password", "Password", (*path, "password"), passwords)
        if "description" in account:
            xml.value(item, "Description", account["description"], (*path, "description"))
        if "display_name" in account:
            xml.value(item, "DisplayName", account["display_name"], (*path, "display_name"))
        for group_index, group in enumerate(account["groups"]):
            if ";" in group:
                message = f"group name {group!r} contains ';', which separates groups in Windows"
                group_path = (*path, "groups", group_index)
                xml.problems.append(problem(spec, group_path, "account-group", message))
        xml.value(item, "Group", ";".join(account["groups"]), (*path, "groups"))
        xml.value(item, "Name", account["name"], (*path, "name"))
