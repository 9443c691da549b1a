"""Steps that run a program: exec (argv), cmd (cmd.exe or /bin/sh), powershell, msi."""

from __future__ import annotations

import os
import time
from pathlib import Path

from vmprep.agent.secrets import is_ref
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


# msiexec exits 1618 while another installation runs (Windows Update, a cloud agent's own
# install at first boot): wait and try again, a bounded number of times (about 5 minutes).
# https://learn.microsoft.com/windows/win32/msi/error-codes
MSI_BUSY = 1618
MSI_BUSY_DELAYS = (5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0, 60.0)


def run_msi(body: dict[str, Any], ctx: StepContext) -> Outcome:
    raw = body.get("properties") or {}
    props = {str(k): str(ctx.vault.resolve(v)) for k, v in raw.items()}
    secret_names = frozenset(str(k) for k, v in raw.items() if is_ref(v))
    logs = ctx.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / msi_log_name(body, ctx.step_key)
    delays = [float(d) for d in ctx.options.get("msi_busy_delays", MSI_BUSY_DELAYS)]
    start = time.monotonic()
    for attempt in range(len(delays) + 1):
        result = ctx.platform.msi(
            body, props, str(log_path), timeout=ctx.timeout, secret_names=secret_names
        )
        if result.exit_code != MSI_BUSY or attempt == len(delays):
            break
        if ctx.timeout is not None and time.monotonic() - start + delays[attempt] >= ctx.timeout:
            break  # the step's timeout bounds the retries too
        ctx.log.warning(
            f"msiexec: another installation is in progress (exit {MSI_BUSY}); "
            f"trying again in {delays[attempt]:g}s ({attempt + 1}/{len(delays)})"
        )
        time.sleep(delays[attempt])
    if secret_names:
        scrub_log(log_path, ctx)
    if result.exit_code == 1641:  # the installer started a reboot itself
        return Outcome(True, 1641, result.output, reboot="continue")
    if body.get("state") == "absent" and result.exit_code == 1605:  # not installed
        return Outcome(True, 1605, result.output)
    return from_process(result, ctx)


def msi_log_name(body: dict[str, Any], step_key: str) -> str:
    """One log per step (`msi-<source>-<id>.log`), so that an uninstall step does not
    overwrite the install's log; without a step (direct calls), per package file."""
    if step_key:
        return f"msi-{step_key}.log"
    return "msi-" + (os.path.basename(str(body["path"]).replace("\\", "/")) or "package") + ".log"


def scrub_log(path: Path, ctx: StepContext) -> None:
    """Replace every secret the agent knows in what msiexec logged (it logged no properties:
    `/lwe`; this catches a value an error message repeats)."""
    from vmprep.agent.platform.msiexec import scrub_text
    from vmprep.protocol.atomic import atomic_write

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        ctx.log.warning(f"cannot read {path} to scrub secrets from it: {exc}")
        return
    clean = scrub_text(data, ctx.vault.redact)
    if clean is not None:
        atomic_write(path, clean)
        ctx.log.info(f"msiexec log {path.name}: secret values replaced by ***")
