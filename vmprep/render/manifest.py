"""manifest.json: what goes where. Deterministic: no timestamps, no absolute local paths."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vmprep import __version__

FORMAT = 1


def build_manifest(
    files: dict[str, bytes],
    targets: dict[str, str],
    spec_name: str,
    spec_sha256: str,
    vendored: dict[str, str],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "vmprep_version": __version__,
        "spec": {"name": spec_name, "sha256": spec_sha256},
        "vendored": dict(sorted(vendored.items())),
        "files": [
            {
                "path": path,
                "target": targets[path],
                "sha256": hashlib.sha256(files[path]).hexdigest(),
                "size": len(files[path]),
            }
            for path in sorted(files)
        ],
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
