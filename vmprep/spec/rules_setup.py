"""Checks of `image` and `setup`: what Windows Setup would refuse or misread in unattend.xml."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vmprep.problems import Severity
from vmprep.spec.checks import Doc, Finding, check, dotted, shown, step_kind
from vmprep.spec.load import JsonPath
from vmprep.spec.winrules import (
    computer_name_problem,
    identifier_problem,
    locale_problem,
    windows_time_zones,
    windows_zone_for_iana,
    xml_unsafe_chars,
)

# Which architectures each OS ships for. Windows Server is 64-bit only since 2008 R2 and has
# no Arm64 release before 2025; Windows 11 has no 32-bit edition.
OS_ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "windows-server-2016": ("amd64",),
    "windows-server-2019": ("amd64",),
    "windows-server-2022": ("amd64",),
    "windows-server-2025": ("amd64", "arm64"),
    "windows-10": ("amd64", "x86", "arm64"),
    "windows-11": ("amd64", "arm64"),
}
_ACCOUNT_FORBIDDEN = set('"/[]:|<>+=;,?*%@\\')


@check("computer-name", "spec", "roleConfig")
def computer_name(doc: Doc) -> Iterator[Finding]:
    name = doc.data.get("setup", {}).get("computer_name")
    if isinstance(name, str):
        problem = computer_name_problem(name)
        if problem:
            yield Finding(("setup", "computer_name"), f"computer name {shown(name)} {problem}")
    for path, step in doc.steps():
        if "rename_computer" in step:
            new = step["rename_computer"]["name"]
            # Resolve what is known now (variables, the role); a placeholder known only at
            # first boot counts as one letter, and the agent checks the filled-in name again.
            filled = _fill(new, _known_values(doc, path))
            problem = computer_name_problem(filled) if new != "*" else "is '*', not a name"
            if problem:
                msg = f"rename_computer name {shown(new)}"
                msg += f" {problem}" if filled == new else f" (as {shown(filled)}) {problem}"
                yield Finding((*path, "rename_computer", "name"), msg)


def _known_values(doc: Doc, path: JsonPath) -> dict[str, str]:
    if doc.kind == "spec":
        values = dict(doc.data.get("agent", {}).get("variables", {}))
        role = (doc.phone_home or {}).get("role")
    else:
        values = dict(doc.data.get("variables", {}))
        if path[0] == "instances":
            values.update(doc.data["instances"][path[1]].get("variables", {}))
        role = doc.data.get("role")
    if role is not None:
        values.setdefault("role", role)
    return {k: str(v) for k, v in values.items()}  # as the agent's StepContext.fill


def _fill(template: str, values: dict[str, str]) -> str:
    """`{name}` -> its value, or `a` when it is known only at first boot."""
    import re

    return re.sub(_PLACEHOLDER, lambda m: values.get(m.group(1), "a"), template)


_PLACEHOLDER = r"\{([A-Za-z_][A-Za-z0-9_]*)\}"  # as the agent fills them


@check("timezone")
def timezone(doc: Doc) -> Iterator[Finding]:
    tz = doc.data.get("setup", {}).get("timezone")
    if not isinstance(tz, str):
        return
    zones = windows_time_zones()
    base = tz.removesuffix("_dstoff")  # "<id>_dstoff" turns daylight saving off
    if base in zones:
        return
    path = ("setup", "timezone")
    windows_id = windows_zone_for_iana(tz)
    if windows_id:
        msg = f"time zone {tz!r} is an IANA name; Windows needs its own time zone ID"
        yield Finding(path, msg, hint=f"write '{windows_id}'")
        return
    import difflib  # only on the error path

    same_case = [z for z in zones if z.casefold() == base.casefold()]
    close = same_case or difflib.get_close_matches(base, list(zones), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "see `tzutil /l` on Windows for the IDs"
    yield Finding(path, f"time zone {tz!r} is not a Windows time zone ID", hint=hint)


@check("locale")
def locale(doc: Doc) -> Iterator[Finding]:
    value = doc.data.get("setup", {}).get("locale")
    if isinstance(value, str):
        problem = locale_problem(value)
        if problem:
            yield Finding(("setup", "locale"), f"locale {problem}")
        return
    for key, tag in (value or {}).items():
        problem = locale_problem(tag, input_locale=key == "input")
        if problem:
            yield Finding(("setup", "locale", key), f"locale.{key} {problem}")


@check("os-architecture")
def os_architecture(doc: Doc) -> Iterator[Finding]:
    image = doc.data["image"]
    allowed = OS_ARCHITECTURES.get(image["os"], ())
    if allowed and image["architecture"] not in allowed:
        msg = f"{image['os']} does not exist for {image['architecture']}"
        yield Finding(("image", "architecture"), msg, hint=f"it ships for {', '.join(allowed)}")


@check("xml-characters")
def xml_characters(doc: Doc) -> Iterator[Finding]:
    """Strings that go into unattend.xml must be representable in XML 1.0."""
    for path, text in _strings(doc.data.get("setup", {}), ("setup",)):
        bad = xml_unsafe_chars(text)
        if bad:
            codes = ", ".join(f"U+{ord(c):04X}" for c in bad)
            msg = f"{dotted(path)} contains {codes}, which unattend.xml (XML 1.0) cannot hold"
            yield Finding(path, msg)


def _strings(value: Any, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, (*path, key))
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


@check("account-name")
def account_name(doc: Doc) -> Iterator[Finding]:
    """Local account names: no `"/[]:|<>+=;,?*%@`, not NONE, at most 20 characters, unique."""
    seen: dict[str, str] = {}
    names: list[tuple[JsonPath, str]] = [
        (("setup", "accounts", i, "name"), a["name"])
        for i, a in enumerate(doc.data.get("setup", {}).get("accounts", []))
    ]
    names += [
        ((*path, "local_user", "name"), step["local_user"]["name"])
        for path, step in doc.steps()
        if step_kind(step) == "local_user"
    ]
    for path, name in names:
        bad = sorted({c for c in name if c in _ACCOUNT_FORBIDDEN or ord(c) < 32})
        confusing = identifier_problem(name)
        if bad:
            yield Finding(path, f"account name {name!r} contains {', '.join(map(repr, bad))}")
        elif confusing:
            yield Finding(path, f"account name {name!r} {confusing}")
        elif name.upper() == "NONE" or name.strip(". ") == "":
            yield Finding(path, f"{name!r} cannot be an account name")
        elif len(name) > 20:
            yield Finding(path, f"account name {name!r} is longer than 20 characters")
        if path[0] == "setup":
            if name.casefold() in seen:
                yield Finding(path, f"account {name!r} is defined twice (names ignore case)")
            seen[name.casefold()] = name


@check("account-group")
def account_group(doc: Doc) -> Iterator[Finding]:
    """unattend.xml joins an account's groups with ';', so a group name cannot contain one."""
    for i, account in enumerate(doc.data.get("setup", {}).get("accounts", [])):
        for n, group in enumerate(account["groups"]):
            where = ("setup", "accounts", i, "groups", n)
            if ";" in group:
                msg = f"group name {group!r} contains ';', which separates groups in Windows"
                yield Finding(where, msg)
            elif problem := _group_problem(group):
                yield Finding(where, f"group name {group!r} {problem}")


# Group names: none of " / \ [ ] : | < > + = ; , ? * @, at most 256 characters (as local
# account names, longer: https://learn.microsoft.com/en-us/previous-versions/windows/it-pro/windows-2000-server/bb726984(v=technet.10)).
_GROUP_FORBIDDEN = frozenset('"/\\[]:|<>+=;,?*@')


def _group_problem(group: str) -> str | None:
    bad = sorted(set(group) & _GROUP_FORBIDDEN)
    if bad:
        return f"contains {', '.join(map(repr, bad))}"
    if len(group) > 256:
        return "is longer than 256 characters"
    if not group.strip(". "):
        return "is only dots and spaces"
    return identifier_problem(group)


@check("auto-logon")
def auto_logon(doc: Doc) -> Iterator[Finding]:
    """An automatic logon needs a password: its own, the administrator's, or the account's."""
    setup = doc.data.get("setup", {})
    logon = setup.get("auto_logon")
    if not logon:
        return
    user = logon["user"].casefold()
    accounts = {a["name"].casefold(): a for a in setup.get("accounts", [])}
    path = ("setup", "auto_logon", "user")
    if user != "administrator" and user not in accounts:
        msg = f"auto_logon user {logon['user']!r} is neither Administrator nor in setup.accounts"
        yield Finding(path, msg, Severity.WARNING)
    has_password = (
        "password" in logon
        or (user == "administrator" and "administrator" in setup)
        or "password" in accounts.get(user, {})
    )
    if not has_password:
        msg = f"automatic logon as {logon['user']!r} needs a password"
        hint = "set setup.auto_logon.password, or log on as an account that has one"
        yield Finding(path, msg, hint=hint)


@check("first-logon-commands")
def first_logon_commands(doc: Doc) -> Iterator[Finding]:
    """FirstLogonCommands Order runs from 1 to 500, and render adds one command to an automatic
    logon with count 1 (Windows adds 1 to LogonCount; the fix-up sets it back)."""
    setup = doc.data.get("setup", {})
    fixup = "auto_logon" in setup and setup["auto_logon"]["count"] == 1
    if fixup and len(setup.get("first_logon_commands", [])) >= 500:
        msg = (
            "at most 499 first logon commands fit (Windows allows 500, one is taken by the "
            "automatic logon fix-up)"
        )
        yield Finding(("setup", "first_logon_commands"), msg)


@check("oobe-account")
def oobe_account(doc: Doc) -> Iterator[Finding]:
    """OOBE stops for a human without an account to finish with: Windows Server asks for the
    administrator password ("Customize settings"), Windows 10/11 asks to create a user unless
    the answer file sets the administrator password or adds a local account."""
    setup = doc.data.get("setup", {})
    if "administrator" in setup:  # its password is required by the schema
        return
    from vmprep.spec.platforms import platform_of

    if not platform_of(doc.data).answer_file:
        return  # the cloud's own answer file finishes OOBE (platform-setting)
    os = doc.data["image"]["os"]
    server = os.startswith("windows-server")
    if not server and setup.get("accounts"):
        return
    if server:
        msg = f"OOBE on {os} stops to ask for the administrator password: none is set"
    else:
        msg = f"OOBE on {os} stops to ask for a user account: no administrator password is set "
        msg += "and setup.accounts is empty"
    hint = (
        "set setup.administrator.password (e.g. {env: VMPREP_ADMIN_PASSWORD}); it is stored "
        "obfuscated in the answer file, which the agent deletes after first boot; rotate it at "
        "first boot with a local_user step whose password is {secret: name} from phone-home"
    )
    yield Finding(("setup",), msg, hint=hint)  # or the top of the file, without `setup`


@check("firewall-group")
def firewall_group(doc: Doc) -> Iterator[Finding]:
    """`setup.firewall_groups` keys are known group names or `@` group ids, each group once."""
    from vmprep.spec import firewall

    seen: dict[str, str] = {}
    for name in doc.data.get("setup", {}).get("firewall_groups", {}):
        path = ("setup", "firewall_groups", name)
        group = firewall.group_id(name)
        if group is None:
            msg = f"unknown firewall group {name!r}"
            yield Finding(path, msg, hint=firewall.known_groups_hint())
        elif group in seen:
            yield Finding(path, f"firewall group {name!r} is the same group as {seen[group]!r}")
        else:
            seen[group] = name
