"""Steps that run a program: exec (argv), cmd (cmd.exe or /bin/sh), powershell, msi."""

from __future__ import annotations

import os

from vmprep.agent.steps import Outcome, StepContext, from_process

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any


def run_exec(body: dict[str, Any], ctx: StepContext) -> Outcome:
    env = {str(k): str(ctx.vault.resolve(v)) for k, v in (body.get("env") or {}).items()}
    codes = tuple(int(c) for c in body.get("success_exit_codes", [0]))
    result = ctx.platform.run(
        [str(a) for a in body["argv"]], timeout=ctx.timeout, env=env or None, cwd=body.get("cwd")
    )
    return from_process(result, ctx, codes)


def run_cmd(script: str, ctx: StepContext) -> Outcome:
    return from_process(ctx.platform.cmd(script, timeout=ctx.timeout), ctx)


def run_powershell(script: str, ctx: StepContext) -> Outcome:
    return from_process(ctx.platform.powershell(script, timeout=ctx.timeout), ctx)


def run_msi(body: dict[str, Any], ctx: StepContext) -> Outcome:
    props = {str(k): str(ctx.vault.resolve(v)) for k, v in (body.get("properties") or {}).items()}
    logs = ctx.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stem = os.path.basename(str(body["path"]).replace("\\", "/")) or "package"
    result = ctx.platform.msi(body, props, str(logs / f"msi-{stem}.log"), timeout=ctx.timeout)
    if result.exit_code == 1641:  # the installer started a reboot itself
        return Outcome(True, 1641, result.output, reboot="continue")
    if body.get("state") == "absent" and result.exit_code == 1605:  # not installed
        return Outcome(True, 1605, result.output)
    return from_process(result, ctx)
