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


def agent_settings(spec: Spec, refs: list[SecretRef], values: dict[str, str]) -> dict[str, Any]:
    """The agent.json object: `refs` (all under `agent`) become `{"secret": name}`; the values
    of the env/file ones go into the top-level `secrets` map."""
    agent = copy.deepcopy(spec.agent)
    doc: dict[str, Any] = {"agent": agent}
    secrets: dict[str, str] = {}
    for ref in refs:
        _replace(doc, ref.path, {"secret": ref.name})
        if ref.kind != "secret":
            secrets[ref.name] = values[ref.name]
    phone_home = agent.get("phone_home")
    if phone_home is not None and isinstance(phone_home["url"], str):
        phone_home["url"] = [phone_home["url"]]
    return {
        "format": FORMAT,
        "vmprep_version": __version__,
        "image": {key: spec.image[key] for key in ("name", "os", "architecture")},
        "install_dir": agent["install_dir"],
        "identity": agent["identity"],
        "variables": agent["variables"],
        "keep_answer_files": agent["keep_answer_files"],
        "answer_files": list(ANSWER_FILES),
        "log_level": agent["log_level"],
        "phone_home": phone_home,
        "steps": agent["steps"],
        "secrets": dict(sorted(secrets.items())),
    }


def _replace(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def render_agent_json(settings: dict[str, Any]) -> bytes:
    """UTF-8 JSON; raises UnicodeEncodeError for text that is not valid Unicode."""
    return (json.dumps(settings, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
