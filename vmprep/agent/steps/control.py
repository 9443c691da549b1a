"""reboot (the engine records it before asking) and wait_for (http, tcp, path, service)."""

from __future__ import annotations

import time

from vmprep.agent.steps import Outcome, StepContext, StepError
from vmprep.protocol.durations import parse_duration

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

DEFAULT_WAIT = 600.0


def run_reboot(body: dict[str, Any], ctx: StepContext) -> Outcome:
    return Outcome(True, 0, body.get("reason", "reboot step"), reboot="continue")


def _probe(body: dict[str, Any], ctx: StepContext, budget: float) -> str | None:
    """None when the condition holds, else why not."""
    per_try = max(0.1, min(10.0, budget))
    if "path" in body:
        import os

        return None if os.path.exists(str(body["path"])) else f"{body['path']} does not exist"
    if "tcp" in body:
        import socket

        host, _, port = str(body["tcp"]).rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=per_try).close()
        except OSError as exc:
            return f"{body['tcp']}: {exc}"
        return None
    if "http" in body:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(str(body["http"]), timeout=per_try) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError) as exc:
            return f"{body['http']}: {exc}"
        return None if 200 <= status < 300 else f"{body['http']} answered {status}"
    name = str(body["service"])
    return None if ctx.platform.service_running(name) else f"service {name} is not running"


def run_wait_for(body: dict[str, Any], ctx: StepContext) -> Outcome:
    interval = parse_duration(body.get("interval", "2s"))
    limit = ctx.timeout if ctx.timeout is not None else DEFAULT_WAIT
    deadline = time.monotonic() + limit
    tries = 0
    while True:
        tries += 1
        why = _probe(body, ctx, deadline - time.monotonic())
        if why is None:
            return Outcome(True, 0, f"ready after {tries} check(s)")
        if time.monotonic() + interval > deadline:
            raise StepError(f"still waiting after {limit:g}s: {why}")
        time.sleep(max(0.05, interval))
