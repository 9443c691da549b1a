"""The client side of `vmprep status`: fetch `/v1/instances` and shape the rows (stdlib only)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from vmprep.errors import ExternalToolError, UsageError
from vmprep.protocol.timestamps import parse_rfc3339

COLUMNS = ("instance", "role", "serial", "state", "done", "failed", "last report")


def fetch_instances(server: str, token: str | None, *, timeout: float = 10) -> list[dict[str, Any]]:
    if not server.startswith(("http://", "https://")):
        raise UsageError(f"--server {server!r} must be an http:// or https:// URL")
    url = server.rstrip("/") + "/v1/instances"
    headers = {"Accept": "application/json", "User-Agent": "vmprep-status"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.loads(response.read(64 * 1024 * 1024))
    except urllib.error.HTTPError as exc:
        reason = _error_text(exc)
        hint = (
            "pass the admin token with --token or VMPREP_ADMIN_TOKEN"
            if exc.code in (401, 403)
            else None
        )
        if exc.code == 403 and "no admin token is configured" in reason:  # app.py's answer
            hint = "start `vmprep serve` with --tokens FILE holding an `admin <sha256>` line"
        raise ExternalToolError(f"{url}: HTTP {exc.code}: {reason}", hint=hint) from None
    except (urllib.error.URLError, OSError) as exc:
        why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ExternalToolError(f"{url}: cannot connect: {why}") from None
    except ValueError:
        raise ExternalToolError(f"{url}: the answer is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("instances"), list):
        raise ExternalToolError(f"{url}: the answer has no instances list")
    return data["instances"]  # type: ignore[no-any-return]


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read(65536))["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return str(exc.reason)


def age(iso: str | None, now: float) -> str:
    if not iso:
        return "-"
    seconds = max(0, int(now - parse_rfc3339(iso)))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _role(inst: dict[str, Any]) -> str:
    """The role, and where it came from when a deploy-time input chose it (docs/inputs.md)."""
    role = str(inst.get("role"))
    source = ((inst.get("inputs") or {}).get("role") or {}).get("source")
    return f"{role} (from {source})" if source else role


def rows(instances: list[dict[str, Any]], now: float | None = None) -> list[tuple[str, ...]]:
    now = time.time() if now is None else now
    out: list[tuple[str, ...]] = []
    for inst in instances:
        steps = inst.get("steps") or {}
        serial = inst.get("config_serial")
        out.append(
            (
                str(inst.get("instance_id")),
                _role(inst),
                "-" if serial is None else str(serial),
                str(inst.get("state")),
                f"{steps.get('done', 0)}/{steps.get('total', 0)}",
                str(steps.get("failed", 0)),
                age(inst.get("received_at"), now),
            )
        )
    return out
