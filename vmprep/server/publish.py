"""`vmprep publish`: every role's and instance's signed document as static files.

Layout (docs/protocol.md "Static hosting"): `<base>/v1/config/<role>/_role` (role-wide),
`<base>/v1/config/<role>/<instance_id>` (an `instances:` entry matched by instance_id) and
`<base>/v1/config/<role>/<mac>` (matched by MAC, for a `{mac}` URL), each with a `.sig`
sidecar. Computer-name globs cannot be looked up statically and are skipped (reported).
All documents of one run share one serial: the publish time in seconds, and at least one more
than the serial of the tree being replaced, so serials only grow from run to run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from vmprep.errors import InputError, UsageError
from vmprep.render.tree import write_dir
from vmprep.server.documents import ROLE_TARGET, build_content, digest_key, document_bytes
from vmprep.server.keys import SigningKey
from vmprep.server.repo import Override, load_repository
from vmprep.server.store import Issue

MANIFEST = ".vmprep-publish.json"


@dataclass
class Published:
    out: Path
    serial: int
    documents: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _previous_serial(out: Path) -> int:
    """The serial of the tree at `out` (0 when none); refuse to replace anything else."""
    if not out.exists():
        return 0
    if not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    manifest = out / MANIFEST
    if not manifest.is_file():
        if any(out.iterdir()):
            raise UsageError(
                f"{out} is not empty and was not written by `vmprep publish`; refusing to replace it"
            )
        return 0
    try:
        serial = json.loads(manifest.read_text(encoding="utf-8"))["serial"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{manifest}: unreadable ({exc})") from None
    if not isinstance(serial, int):
        raise InputError(f"{manifest}: unreadable serial")
    return serial


def _base_parts(base: str) -> list[str]:
    parts = [p for p in base.strip("/").split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise UsageError(f"--base {base!r} must not contain . or .. segments")
    return parts


def publish(
    configs: Path,
    keys: list[SigningKey],
    out: Path,
    *,
    base: str = "",
    allow_secrets: bool = False,
    now: float | None = None,
) -> Published:
    files, result = build(
        configs, keys, _previous_serial(out), base=base, allow_secrets=allow_secrets, now=now
    )
    result.out = out
    write_dir(files, out, private=False, tag="publish")
    return result


def build(
    configs: Path,
    keys: list[SigningKey],
    previous_serial: int,
    *,
    base: str = "",
    allow_secrets: bool = False,
    now: float | None = None,
) -> tuple[dict[str, bytes], Published]:
    """Every file of the tree (relative path -> bytes, the manifest included), in memory."""
    repo = load_repository(configs)
    attested = [r for _, r in sorted(repo.roles.items()) if r.attestation == "required"]
    if attested:
        listed = ", ".join(f"{r.file} (role {r.name!r})" for r in attested)
        raise InputError(
            f"attestation: required cannot be kept by static files: {listed}. A web server "
            "hands a file to any client; only `vmprep serve` verifies an instance's cloud "
            "attestation before it answers (docs/attestation.md)",
            hint="serve these roles with `vmprep serve`, or set `attestation: optional` or "
            "`off` for a static tree",
        )
    issued = int(time.time() if now is None else now)
    serial = max(issued, previous_serial + 1)
    dkey = digest_key(keys)
    result = Published(Path(), serial)
    files: dict[str, bytes] = {}
    for name, role in sorted(repo.roles.items()):
        targets: list[tuple[str, Override | None, str | None]] = [(ROLE_TARGET, None, None)]
        for override in role.overrides:
            if override.kind == "name":
                result.skipped.append(f"{role.file}: computer-name pattern {override.pattern!r}")
            else:
                instance_id = override.pattern if override.kind == "instance_id" else None
                targets.append((override.pattern, override, instance_id))
        for path_name, ov, iid in targets:
            # Every declared secret: a static tree cannot tell which ones an agent's baked
            # steps ask for (docs/protocol.md, "Secrets for baked steps").
            content = build_content(role, ov, iid, dkey, wanted=None)
            if content.secrets and not allow_secrets:
                raise InputError(
                    f"{role.file}: the {name}/{path_name} document holds secrets, and static "
                    "files cannot keep them to TLS and a fleet token",
                    hint="serve secrets with `vmprep serve`, or pass --allow-secrets when the "
                    "store is private",
                )
            body = document_bytes(content, Issue(serial, serial, issued, issued + role.ttl))
            rel = "/".join([*_base_parts(base), "v1", "config", name, path_name])
            files[rel] = body
            files[rel + ".sig"] = "".join(k.entry(body) + "\n" for k in keys).encode("ascii")
            result.documents.append(rel)
    manifest = {
        "serial": serial,
        "published_at": issued,
        "key_ids": [k.key_id for k in keys],
        "documents": result.documents,
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files, result
