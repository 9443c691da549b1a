"""Checks that follow from `image.platform` and the Windows edition (rules in `platforms`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vmprep.problems import Severity
from vmprep.spec.checks import Doc, Finding, check, dotted
from vmprep.spec.platforms import ANSWER_FILE_ONLY, PLATFORMS, platform_of

# Sysprep options a cloud's own Sysprep wrapper (EC2Launch, GCESysprep) decides by itself.
_WRAPPED_SYSPREP = {
    ("sysprep", "generalize"): True,
    ("sysprep", "oobe"): True,
    ("sysprep", "vm_mode"): False,
}
_SKIP_MACHINE_OOBE = "https://learn.microsoft.com/windows-hardware/customize/desktop/unattend/microsoft-windows-shell-setup-oobe-skipmachineoobe"
_CLIENT_ADMIN = "https://learn.microsoft.com/windows-hardware/customize/desktop/unattend/microsoft-windows-shell-setup-useraccounts-localaccounts"


def _written(doc: Doc, path: tuple[str, ...]) -> bool:
    node: Any = doc.raw
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


@check("platform-setting")
def platform_setting(doc: Doc) -> Iterator[Finding]:
    """A setting the platform owns, or one only an answer file carries where vmprep writes none.

    The rules (and their sources) are in `vmprep.spec.platforms` and docs/platforms/."""
    rules = platform_of(doc.data)
    yield from _foreign_input_sources(doc, rules.name)
    yield from _foreign_attestation(doc, rules.name)
    if rules.answer_file:
        return
    name = rules.name
    for path, owner in rules.owned.items():
        if _written(doc, path):
            msg = f"{dotted(path)} is set by the platform on {name}, not by the image"
            hint = f"remove it: on {rules.title} it comes from {owner} (docs/platforms/{name}.md)"
            yield Finding(path, msg, hint=hint)
    for path, what in ANSWER_FILE_ONLY.items():
        if _written(doc, path):
            msg = f"{dotted(path)} cannot apply on {name}: {what}, and vmprep writes none there"
            hint = f"remove it, or set it with an agent step (docs/platforms/{name}.md)"
            yield Finding(path, msg, hint=hint)
    locale = doc.data.get("setup", {}).get("locale")
    if isinstance(locale, dict) and set(locale) - {"system"} and _written(doc, ("setup", "locale")):
        msg = (
            f"on {name} the agent applies only the system locale (Set-WinSystemLocale); "
            "ui, user and input belong to each user profile and are not applied"
        )
        hint = (
            f"write the system locale as setup.locale: {{system: ...}} (docs/platforms/{name}.md)"
        )
        yield Finding(("setup", "locale"), msg, Severity.WARNING, hint)
    for step_path, step in doc.steps():
        if step["id"].casefold().startswith("platform."):
            msg = f"step id {step['id']!r} is in the name space of the steps render adds on {name}"
            yield Finding(
                (*step_path, "id"), msg, hint="choose an id that does not start with 'platform.'"
            )
    if rules.sysprep_flow in ("ec2launch", "gcesysprep"):
        for path, fixed in _WRAPPED_SYSPREP.items():
            node = doc.data.get("sysprep", {})
            if _written(doc, path) and node.get(path[-1]) != fixed:
                tool = "EC2Launch v2" if rules.sysprep_flow == "ec2launch" else "GCESysprep"
                msg = f"{dotted(path)} is decided by {tool} on {name}"
                yield Finding(path, msg, hint=f"remove it (docs/platforms/{name}.md)")


def _foreign_input_sources(doc: Doc, name: str) -> Iterator[Finding]:
    """`agent.inputs.sources` naming another platform's metadata (`aws-tags` on azure)."""
    if name == "generic":
        return
    sources = doc.data.get("agent", {}).get("inputs", {}).get("sources", [])
    for index, source in enumerate(sources):
        owner = source.split("-", 1)[0]
        if owner in PLATFORMS and owner != name:
            msg = f"input source {source!r} is {PLATFORMS[owner].title}'s; this image is for {name}"
            hint = f"use the {name} sources (docs/inputs.md), or image.platform: generic"
            yield Finding(("agent", "inputs", "sources", index), msg, Severity.WARNING, hint)


# The platform each attestation kind works on (docs/attestation.md).
ATTESTATION_CLOUD = {"azure-imds": "azure", "aws-iid": "aws", "gce-iit": "gce"}
_CLOUD_NAME = {"azure": "Azure", "aws": "AWS", "gce": "Google Compute Engine"}


def _foreign_attestation(doc: Doc, name: str) -> Iterator[Finding]:
    """`agent.phone_home.attestation` naming another cloud's evidence (`aws-iid` on azure):
    the instances' metadata service does not give it, and no config fetch would succeed."""
    kind = (doc.phone_home or {}).get("attestation")
    if doc.phone_home and (kind == "gce-iit" or (kind in (None, "auto") and name == "gce")):
        yield from _gce_identity(doc)
    cloud = ATTESTATION_CLOUD.get(kind or "")
    if cloud is None or cloud == name:
        return
    msg = (
        f"attestation {kind!r} is evidence only {_CLOUD_NAME[cloud]}'s metadata service gives; "
        f"this image is for {name}"
    )
    mine = {c: k for k, c in ATTESTATION_CLOUD.items()}.get(name)
    hint = (
        f"use auto (here: {mine}), or image.platform: {cloud}"
        if mine
        else f"set image.platform: {cloud} if the instances run there, or attestation: 'off' (quoted: YAML reads a bare off as false)"
    )
    yield Finding(("agent", "phone_home", "attestation"), msg, Severity.WARNING, hint)


def _gce_identity(doc: Doc) -> Iterator[Finding]:
    """GCE attestation vouches for the numeric instance id: the instance id in the URL must be
    that one, from `gce-metadata`, not the SMBIOS UUID or a MAC (render puts `gce-metadata`
    first on gce when `agent.identity` is left unset)."""
    written = (doc.raw.get("agent") or {}).get("identity") if isinstance(doc.raw, dict) else None
    if not isinstance(written, list):
        return
    order = [s for s in written if s in ("gce-metadata", "smbios-uuid", "mac")]
    if order[:1] != ["gce-metadata"]:
        msg = (
            "with GCE attestation the instance id must be GCE's numeric id (gce-metadata): "
            "the service compares it with the identity token's instance_id"
        )
        hint = "put gce-metadata before smbios-uuid and mac in agent.identity"
        yield Finding(("agent", "identity"), msg, Severity.WARNING, hint)


@check("deprecated-setting")
def deprecated_setting(doc: Doc) -> Iterator[Finding]:
    """`SkipMachineOOBE` is deprecated; with it, ProtectYourPC and NetworkLocation are ignored."""
    oobe = doc.data.get("setup", {}).get("oobe", {})
    if oobe.get("skip_machine_oobe") and platform_of(doc.data).answer_file:
        msg = (
            "setup.oobe.skip_machine_oobe is deprecated by Microsoft; with it set, Windows "
            "ignores protect_your_pc and network_location"
        )
        hint = (
            "remove it: the default OOBE settings (hide_eula, hide_*_screen(s), "
            f"protect_your_pc, network_location) already make OOBE silent ({_SKIP_MACHINE_OOBE})"
        )
        yield Finding(("setup", "oobe", "skip_machine_oobe"), msg, Severity.WARNING, hint)


@check("client-admin-account")
def client_admin_account(doc: Doc) -> Iterator[Finding]:
    """Windows 10/11 disable the built-in Administrator on a clean install: setting its password
    is not enough, the answer file needs a local account in Administrators (or an automatic
    logon as Administrator, which enables it)."""
    image = doc.data["image"]
    if image["os"] not in ("windows-10", "windows-11") or not platform_of(doc.data).answer_file:
        return
    setup = doc.data.get("setup", {})
    accounts = setup.get("accounts", [])
    if "administrator" not in setup and not accounts:
        return  # oobe-account says what is missing
    admins = [a for a in accounts if any(g.casefold() == "administrators" for g in a["groups"])]
    logon = setup.get("auto_logon", {}).get("user", "").casefold() == "administrator"
    if admins or logon:
        return
    msg = (
        f"{image['os']} disables the built-in Administrator: the image needs a local account "
        "in the Administrators group"
    )
    hint = (
        "add one to setup.accounts, e.g. {name: ops, groups: [Administrators], password: "
        f"{{env: VMPREP_OPS_PASSWORD}}}}}} ({_CLIENT_ADMIN})"
    )
    yield Finding(("setup",), msg, hint=hint)
