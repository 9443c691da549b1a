"""Secrets: warn about every one that would be stored inside the image, refuse the impossible.

DESIGN.md principle 2: the image holds no secret it does not need. Passwords in `setup` land in
the answer file; secret references in baked steps and the phone-home token land in agent.json.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from vmprep.problems import Severity
from vmprep.spec.checks import Doc, Finding, check, step_kind
from vmprep.spec.load import JsonPath
from vmprep.spec.schema import runtime_schema

UNATTEND = "C:\\Windows\\Panther\\unattend.xml"
REMOTE_JOIN_SECRETS = ("join_user", "join_password")
_CREDENTIAL_HEADERS = ("authorization", "cookie", "token", "key", "secret", "password")


def secret_refs(
    value: Any, path: JsonPath, node: dict[str, Any] | None = None
) -> Iterator[tuple[JsonPath, dict[str, str]]]:
    """Every secret reference inside schema-valid `value`, found by the schema, not by shape:
    an env var or header that happens to be named `secret` is not one. `node` is the
    runtime_schema node of `value` (default: a step)."""
    if node is None:
        node = runtime_schema("step")
    if not isinstance(value, (dict, list)):
        return
    if node.get("x-ref") == "secretRef":
        if isinstance(value, dict):
            yield path, value
        return
    for branch in node.get("anyOf", []) + node.get("oneOf", []):
        if branch.get("type") == ("object" if isinstance(value, dict) else "array"):
            yield from secret_refs(value, path, branch)
            return
    if isinstance(value, dict):
        props, more = node.get("properties", {}), node.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, more)
            if isinstance(sub, dict):
                yield from secret_refs(item, (*path, key), sub)
    elif isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            yield from secret_refs(item, (*path, i), node["items"])


def phone_home_secrets(steps: list[dict[str, Any]]) -> set[str]:
    """The secret names schema-valid steps take from phone-home: {secret: NAME} refs, and
    join_domain's `remote` pair. For baked steps, render writes them to agent.json
    (`baked_secrets`) and the agent asks for them with every fetch (docs/protocol.md)."""
    used = {
        ref["secret"]
        for i, step in enumerate(steps)
        for _, ref in secret_refs(step, (i,))
        if "secret" in ref
    }
    if any(s.get("join_domain", {}).get("credentials") == "remote" for s in steps):
        used.update(REMOTE_JOIN_SECRETS)
    return used


def _describe(ref: dict[str, str]) -> str:
    kind, name = next(iter(ref.items()))
    return f"{{{kind}: {name}}}"


@check("secret-in-image")
def secret_in_image(doc: Doc) -> Iterator[Finding]:
    setup = doc.data.get("setup", {})
    agent = doc.data["agent"]
    kept = agent["keep_answer_files"]
    where = (
        "agent.keep_answer_files is true, so it stays there"
        if kept
        else "the agent deletes the answer file after first boot, but the image keeps it"
    )
    at_first_boot = " at first boot with a local_user step whose password is {secret: name}"
    at_first_boot += " from phone-home"
    # OOBE needs the administrator password (oobe-account): rotate it, do not leave it out.
    rotate = f"{where}; rotate it{at_first_boot}"
    leave_out = f"{where}; or leave it out and set it{at_first_boot}"
    passwords: list[tuple[JsonPath, str, str]] = []
    if "administrator" in setup:
        path: JsonPath = ("setup", "administrator", "password")
        passwords.append((path, "the administrator password", rotate))
    for i, account in enumerate(setup.get("accounts", [])):
        if "password" in account:
            what = f"the password of account {account['name']!r}"
            passwords.append((("setup", "accounts", i, "password"), what, leave_out))
    if "password" in setup.get("auto_logon", {}):
        path = ("setup", "auto_logon", "password")
        passwords.append((path, "the auto-logon password", leave_out))
    for path, what, hint in passwords:
        msg = f"{what} will be stored in {UNATTEND} inside the image (Base64, not encrypted)"
        yield Finding(path, msg, Severity.WARNING, hint=hint)
    agent_json = f"{agent['install_dir']}\\agent.json"
    token = (doc.phone_home or {}).get("token")
    if token and "secret" not in token:
        msg = f"the phone-home token {_describe(token)} will be stored in {agent_json}"
        hint = "that is how the agent authenticates: use a fleet token that can only fetch"
        yield Finding(("agent", "phone_home", "token"), msg, Severity.WARNING, hint=hint)
    for step_path, step in doc.steps():
        for path, ref in secret_refs(step, step_path):
            if "secret" in ref:
                continue
            msg = f"{_describe(ref)} will be stored in {agent_json} inside the image"
            hint = (
                "use credentials: remote"
                if "join_domain" in step
                else "deliver it at first boot instead: {secret: name} from phone-home"
            )
            yield Finding(path, msg, Severity.WARNING, hint=hint)
        yield from _plain_credentials(step_path, step)


def _plain_credentials(path: JsonPath, step: dict[str, Any]) -> Iterator[Finding]:
    if "download" not in step:
        return
    dl = step["download"]
    try:
        has_user = urlsplit(dl["url"]).username is not None
    except ValueError:
        has_user = False
    if has_user:
        msg = "the download url holds a user name or password, which the image would keep"
        hint = "pass it in a header whose value is {secret: name}"
        yield Finding((*path, "download", "url"), msg, Severity.WARNING, hint=hint)
    for name, value in dl.get("headers", {}).items():
        if isinstance(value, str) and any(w in name.lower() for w in _CREDENTIAL_HEADERS):
            msg = f"header {name!r} holds a credential in plain text, which the image would keep"
            yield Finding(
                (*path, "download", "headers", name),
                msg,
                Severity.WARNING,
                hint="write {secret: name} and deliver it through phone-home",
            )


@check("secret-ref", "spec", "roleConfig")
def secret_ref(doc: Doc) -> Iterator[Finding]:
    """Secret references that nothing can resolve."""
    if doc.kind == "spec":
        setup_node = runtime_schema()["properties"]["setup"]
        for path, ref in secret_refs(doc.data.get("setup", {}), ("setup",), setup_node):
            if "secret" in ref:
                msg = f"{_describe(ref)} cannot be used in setup: unattend.xml is written by render"
                yield Finding(path, msg, hint="use {env: NAME} or {file: path}")
        token = (doc.phone_home or {}).get("token", {})
        if "secret" in token:
            msg = "the phone-home token cannot come from phone-home itself"
            yield Finding(("agent", "phone_home", "token"), msg, hint="use {env: NAME}")
    defined = _defined_secrets(doc)
    fetched = False  # baked steps run before phone-home unless a phone_home step comes first
    for step_path, step in doc.steps():
        fetched = fetched or "phone_home" in step
        needed = [
            (path, ref["secret"]) for path, ref in secret_refs(step, step_path) if "secret" in ref
        ]
        if step_kind(step) == "join_domain" and step["join_domain"]["credentials"] == "remote":
            cred = (*step_path, "join_domain", "credentials")
            needed += [(cred, name) for name in REMOTE_JOIN_SECRETS]
        for path, name in needed:
            if doc.kind == "spec" and not doc.phone_home:
                msg = f"secret {name!r} is delivered by phone-home, but agent.phone_home is not set"
                yield Finding(path, msg, hint="configure agent.phone_home")
            elif doc.kind == "spec" and not fetched:
                # This step fails at first boot: the agent fetches the config (and its secrets)
                # after the baked steps, unless a phone_home step comes first.
                msg = f"secret {name!r} is not there yet: baked steps run before phone-home"
                hint = "put a `phone_home: {}` step before this one"
                yield Finding(path, msg, hint=hint)
            elif defined is not None and name not in defined:
                msg = f"secret {name!r} is not defined in this file's secrets"
                yield Finding(path, msg, hint=f"add it under secrets: {{{name}: {{env: NAME}}}}")


def _defined_secrets(doc: Doc) -> set[str] | None:
    if doc.kind == "spec":
        return None  # the config service decides; nothing to compare with here
    names = set(doc.data.get("secrets", {}))
    for instance in doc.data.get("instances", []):
        names |= set(instance.get("secrets", {}))
    return names
