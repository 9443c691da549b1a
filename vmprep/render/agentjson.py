"""agent.json: the agent's settings and baked-in steps, plain JSON (docs/internals.md)."""

from __future__ import annotations

import copy
import json
from typing import Any, cast

from vmprep import __version__
from vmprep.render.paths import CACHED_ANSWER_FILES
from vmprep.render.secrets import SecretRef
from vmprep.spec import Spec
from vmprep.spec.rules_secrets import phone_home_secrets

FORMAT = 1


def agent_settings(
    spec: Spec,
    refs: list[SecretRef],
    values: dict[str, str],
    baked: list[dict[str, Any]] | None = None,
    runtime: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The agent.json object. `refs` (all under `agent`) stay as written, so the steps keep
    the schema's shape; the values of the env/file ones go into the top-level `secrets` map
    under `env:NAME` / `file:<path as written>`, where the agent looks them up. `baked` are the
    platform's steps (vmprep.render.platformsteps), run before the spec's own. `runtime`
    ({"python": ..., "bundled": ...}) is the interpreter SetupComplete.cmd starts: the agent
    registers its startup task with it.

    `image.platform` is always present (the agent treats a missing one as `generic`)."""
    agent = cast("dict[str, Any]", copy.deepcopy(spec.agent))  # rewritten below
    secrets = {ref.name: values[ref.name] for ref in refs if ref.kind != "secret"}
    phone_home = agent.get("phone_home")
    if phone_home is not None:
        if isinstance(phone_home["url"], str):
            phone_home["url"] = [phone_home["url"]]
        phone_home["attestation"] = attestation_kind(phone_home, spec.image["platform"])
    return {
        "format": FORMAT,
        "vmprep_version": __version__,
        "image": {key: spec.image[key] for key in ("name", "os", "architecture", "platform")},
        "install_dir": agent["install_dir"],
        **({"runtime": runtime} if runtime is not None else {}),
        "identity": identity_sources(spec),
        "variables": agent["variables"],
        **({"inputs": agent["inputs"]} if agent.get("inputs") else {}),  # docs/inputs.md
        "keep_answer_files": agent["keep_answer_files"],
        "answer_files": list(CACHED_ANSWER_FILES),
        "delete_answer_files": answer_files_deleted_at(spec),
        "log_level": agent["log_level"],
        "phone_home": phone_home,
        "steps": [*(baked or []), *agent["steps"]],
        "secrets": dict(sorted(secrets.items())),
        # What the baked steps take from phone-home: the agent asks for these names with
        # every fetch (the Vmprep-Secrets header, docs/protocol.md).
        "baked_secrets": sorted(phone_home_secrets(agent["steps"])),
    }


def identity_sources(spec: Spec) -> list[str]:
    """`agent.identity`; left unset on GCE, `gce-metadata` first: the service compares a GCE
    identity token's numeric `instance_id` with the URL's id (docs/attestation.md), and
    GCE's SMBIOS UUID is not that number."""
    sources: list[str] = list(spec.agent["identity"])
    written = "identity" in (spec.loaded.data.get("agent") or {})
    if spec.image["platform"] == "gce" and not written and "gce-metadata" not in sources:
        sources.insert(0, "gce-metadata")
    return sources


def attestation_kind(phone_home: dict[str, Any], platform: str) -> str:
    """`phone_home.attestation` with `auto` resolved from `image.platform` (docs/spec.md):
    agent.json says exactly what the agent sends."""
    from vmprep.agent.config import ATTESTATION_BY_PLATFORM

    setting = str(phone_home.get("attestation", "auto"))
    if setting == "auto":
        return ATTESTATION_BY_PLATFORM.get(platform, "off")
    return setting


def answer_files_deleted_at(spec: Spec) -> str:
    """When the agent deletes the answer files: as it starts ("launch"), or when its run is
    done ("done") if the first logon after Setup still reads them (AutoLogon and
    FirstLogonCommands are oobeSystem settings Windows acts on at that logon). docs/agent.md"""
    setup = spec.setup
    if "auto_logon" in setup or setup.get("first_logon_commands"):
        return "done"
    return "launch"


def render_agent_json(settings: dict[str, Any]) -> bytes:
    """UTF-8 JSON; raises UnicodeEncodeError for text that is not valid Unicode."""
    return (json.dumps(settings, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
