"""Checks of what individual steps ask for: registry values, domain joins, files, waits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from vmprep.problems import Severity
from vmprep.spec.checks import Doc, Finding, check, shown
from vmprep.spec.load import JsonPath

_DWORD_MAX, _QWORD_MAX = 2**32 - 1, 2**64 - 1
# Patterns as text: re compiles (and caches) them on first use, not at import.
_HEX = r"^([0-9A-Fa-f]{2})*$"


@check("registry-value", "spec", "roleConfig")
def registry_value(doc: Doc) -> Iterator[Finding]:
    """A registry value must fit its type, or the agent fails at first boot."""
    for path, step in doc.steps():
        if "registry" not in step:
            continue
        reg = step["registry"]
        where = (*path, "registry", "value")
        if reg["state"] == "absent":
            continue
        if "value" not in reg:
            yield Finding((*path, "registry"), f"a {reg['type']} value needs `value`")
            continue
        problem = _registry_problem(reg["type"], reg["value"])
        if problem:
            yield Finding(where, f"{reg['type']} {problem}")


def _registry_problem(kind: str, value: Any) -> str | None:
    if isinstance(value, dict):  # a secret reference: a string, known only later
        return None if kind in ("REG_SZ", "REG_EXPAND_SZ") else "cannot come from a secret"
    if kind in ("REG_DWORD", "REG_QWORD"):
        top = _DWORD_MAX if kind == "REG_DWORD" else _QWORD_MAX
        if not isinstance(value, int) or not 0 <= value <= top:
            return f"needs a whole number from 0 to {top}"
    elif kind in ("REG_SZ", "REG_EXPAND_SZ") and not isinstance(value, str):
        return "needs a string (quote it)"
    elif kind == "REG_MULTI_SZ" and not isinstance(value, list):
        return "needs a list of strings"
    elif kind == "REG_BINARY" and not (isinstance(value, str) and re.match(_HEX, value)):
        return "needs hexadecimal bytes, e.g. '0a1b2c'"
    return None


_DNS_LABEL = r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$"
_DN_PART = r"(?i)^(OU|CN|DC)=[^=]+$"
_DN_SPECIAL = frozenset('\\"+;<>#')  # RFC 4514 section 2.4 (https://www.rfc-editor.org/rfc/rfc4514)


@check("join-domain", "spec", "roleConfig")
def join_domain(doc: Doc) -> Iterator[Finding]:
    """The domain is a DNS or NetBIOS domain name; `ou` an LDAP DN such as OU=Web,DC=corp,DC=com."""
    for path, step in doc.steps():
        if "join_domain" not in step:
            continue
        join = step["join_domain"]
        domain = join["domain"]
        if len(domain) > 253 or not all(re.match(_DNS_LABEL, label) for label in domain.split(".")):
            msg = f"domain {domain!r} is not a domain name like corp.example.com"
            yield Finding((*path, "join_domain", "domain"), msg)
        if "." not in domain and len(domain) > 15:
            msg = f"domain {domain!r} is longer than 15 characters, too long for a NetBIOS name"
            yield Finding((*path, "join_domain", "domain"), msg, hint="write its DNS name")
        ou = join.get("ou")
        if ou is not None and any(c in ou for c in _DN_SPECIAL):
            # An escaped or quoted RDN (`OU=a\,DC=evil`, `OU="x,y"`), a multi-valued one (`+`)
            # or `;` would make the DN name another object than the one it seems to.
            msg = f"ou {ou!r} holds an escape, quote, '+', ';', '<', '>' or '#'"
            yield Finding((*path, "join_domain", "ou"), msg, hint="write a plain OU=...,DC=... DN")
        elif ou is not None and not all(_rdn_ok(part.strip()) for part in ou.split(",")):
            msg = f"ou {ou!r} is not an LDAP distinguished name like 'OU=Web,DC=corp,DC=com'"
            yield Finding((*path, "join_domain", "ou"), msg, hint="leave it out for the default")


def _rdn_ok(rdn: str) -> bool:
    """`OU=Web`: a known type, `=`, a value without another `=` or padding spaces."""
    return (
        re.match(_DN_PART, rdn) is not None and rdn.split("=", 1)[1].strip() == rdn.split("=", 1)[1]
    )


@check("file-content", "spec", "roleConfig")
def file_content(doc: Doc) -> Iterator[Finding]:
    """`encoding: base64` content must decode, or the agent fails writing the file."""
    import base64
    import binascii

    for path, step in doc.steps():
        file = step.get("file")
        if not file or file["encoding"] != "base64" or not isinstance(file["content"], str):
            continue
        try:
            base64.b64decode(file["content"], validate=True)
        except (binascii.Error, ValueError) as exc:
            msg = f"content is not valid base64 ({exc})"
            yield Finding((*path, "file", "content"), msg, hint="or use encoding: utf-8")


@check("wait-for", "spec", "roleConfig")
def wait_for(doc: Doc) -> Iterator[Finding]:
    """A tcp port from 1 to 65535; an http target that is an http(s) URL with a host."""
    from vmprep.spec.urls import url_problem

    for path, step in doc.steps():
        target = step.get("wait_for", {})
        if "tcp" in target and not 1 <= int(target["tcp"].rsplit(":", 1)[1]) <= 65535:
            msg = f"port in {target['tcp']!r} is not from 1 to 65535"
            yield Finding((*path, "wait_for", "tcp"), msg)
        if "http" in target:
            problem = url_problem(target["http"], schemes=("http", "https"))
            if problem:
                msg = f"{shown(target['http'])} {problem}"
                yield Finding((*path, "wait_for", "http"), msg)


MAX_DURATION = 365 * 86400  # a year: anything longer is a typo (or 1e308), not a timeout


@check("duration", "spec", "roleConfig")
def duration(doc: Doc) -> Iterator[Finding]:
    """Every duration (timeouts, delays, intervals) is at most a year."""
    from vmprep.protocol.durations import parse_duration

    for path, value in _at(doc.data, (), _duration_paths(doc.kind)):
        try:
            seconds = parse_duration(value)
        except ValueError:
            continue  # the schema says so
        if seconds > MAX_DURATION:
            msg = f"the duration {str(value)[:40]!s} is longer than a year ({MAX_DURATION} s)"
            yield Finding(path, msg, hint="write it in s, m, h or d, e.g. 30m")


Pattern = tuple["str | None", ...]  # a path with None for "any list index or key"


@cache
def _duration_paths(kind: str) -> tuple[Pattern, ...]:
    """Where the schema puts durations, found once: walking the schema beside every document
    cost more than the rest of this check."""
    from vmprep.spec.schema import runtime_schema

    found: list[Pattern] = []

    def walk(node: Any, path: Pattern, depth: int) -> None:
        if not isinstance(node, dict) or depth > 12:
            return
        if node.get("x-ref") == "duration":
            found.append(path)
            return
        for branch in node.get("anyOf", []) + node.get("oneOf", []):
            walk(branch, path, depth + 1)
        for key, sub in node.get("properties", {}).items():
            walk(sub, (*path, key), depth + 1)
        for more in ("items", "additionalProperties"):
            if isinstance(node.get(more), dict):
                walk(node[more], (*path, None), depth + 1)

    walk(runtime_schema("roleConfig" if kind == "roleConfig" else None), (), 0)
    return tuple(dict.fromkeys(found))


def _at(
    value: Any, path: JsonPath, patterns: tuple[Pattern, ...]
) -> Iterator[tuple[JsonPath, Any]]:
    for pattern in patterns:
        yield from _follow(value, path, pattern)


def _follow(value: Any, path: JsonPath, pattern: Pattern) -> Iterator[tuple[JsonPath, Any]]:
    if not pattern:
        yield path, value
        return
    head, rest = pattern[0], pattern[1:]
    if head is None:
        items = (
            enumerate(value)
            if isinstance(value, list)
            else (value.items() if isinstance(value, dict) else ())
        )
        for key, item in items:
            yield from _follow(item, (*path, key), rest)
    elif isinstance(value, dict) and head in value:
        yield from _follow(value[head], (*path, head), rest)


@check("env-self-reference", "spec", "roleConfig")
def env_self_reference(doc: Doc) -> Iterator[Finding]:
    """`Path: '%Path%;C:\\tools'` is stored as written: a variable never expands itself, so
    the old Path (System32 with it) is gone from the next process on."""
    for path, step in doc.steps():
        env = step.get("env")
        if not env or not isinstance(env.get("value"), str):
            continue
        name, value = env["name"], env["value"]
        itself = f"%{name}%".casefold()
        if itself not in value.casefold():
            continue
        rest = ";".join(e for e in value.split(";") if e.strip() and e.casefold() != itself)
        hint = f"use mode: append (or prepend) and value: '{rest}'" if rest else None
        msg = f"the value of {name} refers to %{name}% itself, which is never expanded"
        yield Finding((*path, "env", "value"), msg, hint=hint)


@check("env-mode", "spec", "roleConfig")
def env_mode(doc: Doc) -> Iterator[Finding]:
    """append/prepend/remove edit the entries of a list variable: they need a value."""
    for path, step in doc.steps():
        env = step.get("env")
        if not env or env.get("mode", "set") == "set":
            continue
        if env.get("state") == "absent":
            yield Finding((*path, "env", "mode"), f"mode {env['mode']} needs state: present")
        elif "value" not in env:
            yield Finding((*path, "env"), f"mode {env['mode']} needs `value` (the entries)")


@check("cmd-code-page", "spec", "roleConfig")
def cmd_code_page(doc: Doc) -> Iterator[Finding]:
    """cmd.exe reads a batch file in the OEM code page of the system locale: a character it
    lacks is mangled, so the agent refuses the step. For a spec the locale is known."""
    from vmprep.protocol.codepage import oem_code_page, outside

    code_page = None
    locale = doc.data.get("setup", {}).get("locale") if doc.kind == "spec" else None
    if isinstance(locale, dict):
        locale = locale.get("system") or locale.get("ui")
    if isinstance(locale, str):
        code_page = oem_code_page(locale)
    for path, step in doc.steps():
        script = step.get("cmd")
        if not isinstance(script, str) or script.isascii():
            continue
        if code_page is None:
            where = f"locale {locale}" if isinstance(locale, str) else "the image's system locale"
            msg = "the cmd script has non-ASCII characters; whether cmd.exe can read them "
            msg += f"depends on the OEM code page of {where}: the agent refuses it if not"
            yield Finding((*path, "cmd"), msg, Severity.WARNING, hint=_CMD_HINT)
            continue
        missing = outside(script, code_page)
        if missing:
            shown = ", ".join(repr(c) for c in missing[:5])
            msg = f"cmd.exe reads the script in code page {code_page} (system locale {locale}), "
            msg += f"which lacks {shown}"
            yield Finding((*path, "cmd"), msg, hint=_CMD_HINT)


_CMD_HINT = "use a powershell step for text outside the code page (PowerShell reads Unicode)"
