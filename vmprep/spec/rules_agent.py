"""Checks of `agent` and of steps: what the first-boot agent would trip over at run time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from vmprep.problems import Severity
from vmprep.protocol.keys import raw_public_key
from vmprep.spec.checks import Doc, Finding, check, quoted, shown, step_kind
from vmprep.spec.load import JsonPath
from vmprep.spec.schema import os_names
from vmprep.spec.urls import header_problem, url_problem
from vmprep.spec.winpath import program_problem
from vmprep.spec.winrules import (
    cmd_special_chars,
    setupcomplete_path_problem,
    windows_path_problem,
)

PLACEHOLDERS = ("role", "instance_id", "computer_name", "mac")
NEEDS_REBOOT = ("reboot", "rename_computer", "join_domain")
_PLACEHOLDER = r"\{([^{}]*)\}"  # compiled by re on first use
_PYTHON_EXAMPLE = "'C:\\Program Files\\Python312\\python.exe'"


@check("unique-step-ids", "spec", "roleConfig")
def unique_step_ids(doc: Doc) -> Iterator[Finding]:
    seen: dict[tuple[Any, ...], set[str]] = {}
    for path, step in doc.steps():
        # A role config's instance steps run after its role-wide steps: one id space each.
        scope = seen.setdefault(path[:-2] if path[0] == "instances" else (), set())
        if path[0] == "instances":
            scope |= {s["id"].casefold() for s in doc.data.get("steps", [])}
        key = step["id"].casefold()  # ids name state files on Windows: case does not count
        if key in scope:
            yield Finding((*path, "id"), f"step id {step['id']!r} is used twice")
        scope.add(key)


@check("when", "spec", "roleConfig")
def when(doc: Doc) -> Iterator[Finding]:
    from vmprep.spec.rules_inputs import declared_roles, role_can_be

    deployed = declared_roles(doc) if doc.kind == "spec" else None
    if doc.kind == "spec":
        role = (doc.phone_home or {}).get("role")
        known_vars = set(doc.data.get("agent", {}).get("variables", {}))
        known_vars |= set((doc.data["agent"].get("inputs") or {}).get("keys") or {}) - {"role"}
    else:
        role = doc.data["role"]
        known_vars = set(doc.data.get("variables", {}))
        for instance in doc.data.get("instances", []):
            known_vars |= set(instance.get("variables", {}))
    remote_vars = False  # after a phone_home step, the config document's variables count too
    for path, step in doc.steps():
        remote_vars = remote_vars or "phone_home" in step
        cond = step.get("when")
        if not cond:
            continue
        where = (*path, "when")
        roles = _as_list(cond.get("role"))
        if roles and role is None:
            msg = "when.role can never match: agent.phone_home.role is not set"
            yield Finding((*where, "role"), msg, hint="set agent.phone_home.role")
        elif roles and deployed is not None:  # the role is decided at deploy time
            if not any(role_can_be(doc, r) for r in roles):
                msg = (
                    f"when.role {_j(map(quoted, roles))} never matches a role that "
                    "agent.inputs.keys.role allows"
                )
                yield Finding((*where, "role"), msg, Severity.WARNING)
        elif roles and role not in roles:
            msg = f"when.role {_j(map(quoted, roles))} never matches: the role here is {role!r}"
            yield Finding((*where, "role"), msg)
        oses = _as_list(cond.get("os"))
        unknown = [os for os in oses if os not in os_names()]
        for os in unknown:
            yield Finding((*where, "os"), f"when.os {os!r} is not one of: {_j(os_names())}")
        if doc.kind == "spec" and oses and not unknown and doc.data["image"]["os"] not in oses:
            msg = f"when.os never matches this image ({doc.data['image']['os']})"
            yield Finding((*where, "os"), msg, Severity.WARNING)
        for name in cond.get("variables", {}):
            if name not in known_vars and not (doc.kind == "spec" and remote_vars):
                where_defined = "agent.variables" if doc.kind == "spec" else "variables"
                msg = f"when.variables.{name} is not defined in {where_defined}"
                yield Finding(
                    (*where, "variables", name), msg, hint=f"define it in {where_defined}"
                )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _j(items: Any) -> str:
    return ", ".join(items)


@check("download", "spec", "roleConfig")
def download(doc: Doc) -> Iterator[Finding]:
    """The URL by the one URL rule (https only, no user-info, A-label hosts); header names are
    tokens and values hold no control character."""
    for path, step in doc.steps():
        if "download" not in step:
            continue
        url = step["download"]["url"]
        problem = url_problem(url, schemes=("https", "http"))
        if problem:
            yield Finding((*path, "download", "url"), f"download url {shown(url)} {problem}")
        elif urlsplit(url).scheme != "https":
            yield Finding(
                (*path, "download", "url"),
                f"download url {shown(url)} is not https",
                hint="serve it over https; the sha256 check alone does not keep it private",
            )
        for name, value in step["download"].get("headers", {}).items():
            problem = header_problem(name, value)
            if problem:
                where = (*path, "download", "headers", name)
                yield Finding(where, f"header {shown(name)} {problem}")


@check("phone-home-url")
def phone_home_url(doc: Doc) -> Iterator[Finding]:
    home = doc.phone_home
    if not home:
        return
    base: JsonPath = ("agent", "phone_home")
    urls = home["url"] if isinstance(home["url"], list) else [home["url"]]
    targets = [
        ((*base, "url", i) if isinstance(home["url"], list) else (*base, "url"), u)
        for i, u in enumerate(urls)
    ]
    if "report_url" in home:
        targets.append(((*base, "report_url"), home["report_url"]))
    for path, template in targets:
        names = re.findall(_PLACEHOLDER, template)
        unknown = [n for n in names if n not in PLACEHOLDERS]
        filled = re.sub(_PLACEHOLDER, "x", template)
        if unknown:
            msg = f"unknown placeholder {{{unknown[0]}}} in {template!r}"
            yield Finding(path, msg, hint=f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
            continue
        if "{" in filled or "}" in filled:
            yield Finding(path, f"unbalanced '{{' or '}}' in {template!r}")
            continue
        problem = url_problem(filled, schemes=("https", "http"))
        if problem:
            hint = "put the credential in agent.phone_home.token" if "@" in problem else None
            yield Finding(path, f"{shown(template)} {problem}", hint=hint)
        elif urlsplit(filled).scheme == "http" and not home["allow_insecure_http"]:
            msg = f"{template!r} is plain http: the token and secrets would travel in clear"
            yield Finding(path, msg, hint="use https (or set allow_insecure_http: true for a lab)")
        elif urlsplit(filled).scheme == "http":
            msg = f"{template!r} is plain http (allowed by allow_insecure_http)"
            yield Finding(path, msg, Severity.WARNING, hint="never use plain http in production")
    if "metadata_url" in home:
        path = (*base, "metadata_url")
        problem = url_problem(home["metadata_url"], schemes=("https", "http"))
        if problem:
            yield Finding(path, f"metadata_url {shown(home['metadata_url'])} {problem}")
        else:
            msg = "metadata_url replaces the cloud's own metadata service for attestation"
            hint = "leave it unset on a public cloud: it is for tests and private clouds"
            yield Finding(path, msg, Severity.WARNING, hint=hint)


@check("phone-home", "spec", "roleConfig")
def phone_home_steps(doc: Doc) -> Iterator[Finding]:
    count = 0
    for path, step in doc.steps():
        if "phone_home" not in step:
            continue
        count += 1
        if doc.kind == "roleConfig":
            yield Finding(path, "a phone_home step cannot come from the config service itself")
        elif not doc.phone_home:
            msg = "a phone_home step needs agent.phone_home"
            yield Finding(path, msg, hint="configure agent.phone_home, or remove the step")
        elif count > 1:
            yield Finding(path, "only one phone_home step is allowed")


@check("trusted-key")
def trusted_key(doc: Doc) -> Iterator[Finding]:
    keys = (doc.phone_home or {}).get("trusted_keys", [])
    seen: set[bytes] = set()
    for i, key in enumerate(keys):
        path = ("agent", "phone_home", "trusted_keys", i)
        raw = raw_public_key(key)
        if raw is None:
            yield Finding(
                path,
                f"trusted key {key[:60]!r} is not 'ed25519:' and the standard base64 of 32 bytes",
                hint="copy the public key that `vmprep keygen` printed",
            )
        elif raw in seen:
            yield Finding(path, "this trusted key is listed twice")
        else:
            seen.add(raw)


@check("windows-path", "spec", "roleConfig")
def windows_path(doc: Doc) -> Iterator[Finding]:
    """Every path field, by the one rule in vmprep.spec.winpath (UNC only where it is read)."""
    for path, value, unc, file in _paths(doc):
        problem = windows_path_problem(value, unc=unc, file=file)
        if problem:
            yield Finding(path, f"{shown(value)} {problem}")
    for path, step in doc.steps():
        argv = step.get("exec", {}).get("argv")
        if not argv or not isinstance(argv[0], str):
            continue
        program = argv[0]
        problem = program_problem(program)
        if problem:
            yield Finding((*path, "exec", "argv", 0), f"program {shown(program)} {problem}")


# (field, UNC allowed, names a file): see vmprep.spec.winpath for why UNC is allowed where.
_STEP_PATHS = {
    "download": ("to", False, True),
    "file": ("path", False, True),
    "msi": ("path", True, True),
    "exec": ("cwd", False, False),
    "wait_for": ("path", True, False),
}


def _paths(doc: Doc) -> Iterator[tuple[JsonPath, str, bool, bool]]:
    agent = doc.data.get("agent", {})
    if doc.kind == "spec":
        yield ("agent", "install_dir"), agent["install_dir"], False, False
        if "python" in agent["runtime"]:
            yield ("agent", "runtime", "python"), agent["runtime"]["python"], False, True
        if doc.phone_home and "ca_bundle" in doc.phone_home:
            yield ("agent", "phone_home", "ca_bundle"), doc.phone_home["ca_bundle"], False, True
    for path, step in doc.steps():
        kind = step_kind(step)
        if kind in _STEP_PATHS:
            field, unc, file = _STEP_PATHS[kind]
            if isinstance(step[kind], dict) and isinstance(step[kind].get(field), str):
                yield (*path, kind, field), step[kind][field], unc, file
        if kind == "download" and isinstance(step[kind].get("ca_bundle"), str):
            yield (*path, kind, "ca_bundle"), step[kind]["ca_bundle"], False, True


@check("cmd-unsafe-path")
def cmd_unsafe_path(doc: Doc) -> Iterator[Finding]:
    """install_dir and the interpreter are the two values SetupComplete.cmd holds."""
    agent = doc.data["agent"]
    for key, value in (
        ("install_dir", agent["install_dir"]),
        ("python", agent["runtime"].get("python")),
    ):
        if value is None or windows_path_problem(value):
            continue  # not absolute: the windows-path check says so
        path = ("agent", key) if key == "install_dir" else ("agent", "runtime", key)
        hint = "SetupComplete.cmd launches the agent from this path"
        bad = cmd_special_chars(value)
        if bad:
            shown = ", ".join(repr(c) if c.isprintable() else f"U+{ord(c):04X}" for c in bad)
            msg = f"{quoted(value)} contains {shown}, which cmd.exe treats specially"
            yield Finding(path, msg, hint=hint)
            continue
        problem = setupcomplete_path_problem(value)
        if problem:
            yield Finding(path, f"{quoted(value)} {problem}", hint=hint)
        elif key == "install_dir" and value[:2].upper() != "C:":
            msg = f"{quoted(value)} must be on the system drive C: (render writes a C: overlay)"
            yield Finding(path, msg)


@check("reboot-budget", "spec", "roleConfig")
def reboot_budget(doc: Doc) -> Iterator[Finding]:
    for path, step in doc.steps():
        kind = step_kind(step)
        budget = step["reboot_budget"]
        if kind in NEEDS_REBOOT and budget == 0:
            msg = f"a {kind} step reboots, but its reboot_budget is 0"
            yield Finding((*path, "reboot_budget"), msg, hint="leave reboot_budget at its default")
        if kind == "reboot" and step["run"] == "every_boot":
            msg = "a reboot step with run: every_boot reboots on every boot, forever"
            yield Finding((*path, "run"), msg, hint="use run: once_per_instance")
        if budget > 10:
            msg = f"reboot_budget {budget} lets a reboot loop run for a long time"
            yield Finding((*path, "reboot_budget"), msg, Severity.WARNING, hint="3 is the default")


_STEP_PLACEHOLDER = r"\{([A-Za-z_][A-Za-z0-9_]*)\}"  # as the agent fills them
_BUILT_IN_NAMES = {"role", "instance_id"}


@check("placeholder", "spec", "roleConfig")
def placeholder(doc: Doc) -> Iterator[Finding]:
    """`rename_computer` names: every {name} is a variable the agent knows when the step runs
    (agent.variables, role, instance_id; the config document's after a phone_home step)."""
    if doc.kind == "spec":
        known = set(doc.data["agent"]["variables"]) | _BUILT_IN_NAMES
        known |= set((doc.data["agent"].get("inputs") or {}).get("keys") or {})
        where_defined = "agent.variables"
    else:
        known = set(doc.data["variables"]) | _BUILT_IN_NAMES
        for instance in doc.data["instances"]:
            known |= set(instance.get("variables", {}))
        where_defined = "variables"
    fetched = False
    for path, step in doc.steps():
        fetched = fetched or "phone_home" in step
        if "rename_computer" not in step or (doc.kind == "spec" and fetched):
            continue
        name = step["rename_computer"]["name"]
        for unknown in sorted(set(re.findall(_STEP_PLACEHOLDER, name)) - known):
            msg = f"placeholder {{{unknown}}} in {name!r} is not a known variable"
            hint = f"define it in {where_defined}"
            if doc.kind == "spec":
                hint += ", or put a `phone_home: {}` step first to use the config's variables"
            yield Finding((*path, "rename_computer", "name"), msg, hint=hint)


@check("runtime")
def runtime(doc: Doc) -> Iterator[Finding]:
    """One interpreter: python (on the image) or embedded (bundled). Without either, render
    fails off Windows (the same code as render's)."""
    runtime = doc.data["agent"]["runtime"]
    if "python" in runtime and "embedded" in runtime:
        msg = "agent.runtime has both python and embedded; the agent runs on one interpreter"
        hint = "keep python (installed on the image) or embedded (bundled with the agent)"
        yield Finding(("agent", "runtime", "embedded"), msg, hint=hint)
    elif "python" not in runtime and "embedded" not in runtime:
        msg = "agent.runtime.python is not set: render off Windows fails, on Windows it uses the "
        msg += "interpreter vmprep runs under, which may not exist on the image"
        hint = "set agent.runtime.python to python.exe on the image, e.g. " + _PYTHON_EXAMPLE
        hint += ", or bundle one with agent.runtime.embedded (docs/runtime.md)"
        yield Finding(("agent", "runtime"), msg, Severity.WARNING, hint=hint)
