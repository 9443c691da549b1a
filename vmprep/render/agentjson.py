"""agent.json: the agent's settings and baked-in steps, plain JSON (docs/internals.md)."""

from __future__ import annotations

import copy
import json
from typing import Any

from vmprep import __version__
from vmprep.render.secrets import SecretRef
from vmprep.spec import Spec

FORMAT = 1
ANSWER_FILES = [
    "C:\\Windows\\Panther\\unattend.xml",
    "C:\\Windows\\System32\\Sysprep\\unattend.xml",
]


def agent_settings(
    spec: Spec,
    refs: list[SecretRef],
    values: dict[str, str],
    runtime: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The agent.json object. `refs` (all under `agent`) stay as written, so the steps keep
    the schema's shape; the values of the env/file ones go into the top-level `secrets` map
    under `env:NAME` / `file:<path as written>`, where the agent looks them up. `runtime`
    ({"python": ..., "bundled": ...}) is the interpreter SetupComplete.cmd starts: the agent
    registers its startup task with it."""
    agent = copy.deepcopy(spec.agent)
    secrets = {ref.name: values[ref.name] for ref in refs if ref.kind != "secret"}
    phone_home = agent.get("phone_home")
    if phone_home is not None and isinstance(phone_home["url"], str):
        phone_home["url"] = [phone_home["url"]]
    return {
        "format": FORMAT,
        "vmprep_version": __version__,
        "image": {key: spec.image[key] for key in ("name", "os", "architecture")},
        "install_dir": agent["install_dir"],
        **({"runtime": runtime} if runtime is not None else {}),
        "identity": agent["identity"],
        "variables": agent["variables"],
        "keep_answer_files": agent["keep_answer_files"],
        "answer_files": list(ANSWER_FILES),
        "log_level": agent["log_level"],
        "phone_home": phone_home,
        "steps": agent["steps"],
        "secrets": dict(sorted(secrets.items())),
    }


def render_agent_json(settings: dict[str, Any]) -> bytes:
    """UTF-8 JSON; raises UnicodeEncodeError for text that is not valid Unicode."""
    return (json.dumps(settings, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
