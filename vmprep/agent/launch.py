"""`launch`: what SetupComplete.cmd runs. It hands the run to the startup task and returns.

Windows runs SetupComplete.cmd inside Setup, before the logon screen appears, and a reboot
from inside it puts the system in a bad state (it cannot resume). So the launcher does not
run the job there: it registers the startup task (the same `schtasks /Create` that `run`
uses), starts it now (`schtasks /Run`), logs and returns 0 at once; `run` goes on in the task,
outside Setup, where it may reboot. On POSIX (tests, Linux images) the task is a detached
child process running `run`.

If the task cannot be started, `launch` runs `run` here as a fallback, with reboots
deferred: a step that needs a reboot is recorded as such, the run stops (exit 2), and the next
start (the registered task, at the next boot) goes on. `launch` never reboots.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vmprep.agent.config import ConfigError, load_config
from vmprep.agent.logs import Log
from vmprep.agent.platform import current as current_platform
from vmprep.agent.platform.base import Platform
from vmprep.agent.secrets import Vault

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

UNREADABLE = 4  # as `run`: agent.json unreadable, nothing started


def _default_run(config_path: Path, *, defer_reboots: bool) -> int:
    from vmprep.agent.run import run_agent

    return run_agent(config_path, None, defer_reboots=defer_reboots)


def launch_agent(
    config_path: Path,
    *,
    platform: Callable[[Path, dict[str, Any], str], Platform] = current_platform,
    run: Callable[..., int] = _default_run,
) -> int:
    """0 once the task runs `run`; otherwise `run`'s exit code (reboots deferred)."""
    import sys

    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        print(f"vmprep-agent: error: {exc}", file=sys.stderr)
        return UNREADABLE
    config_path = config_path.resolve()
    state_dir = config_path.parent
    log = Log(state_dir / "logs", level=cfg.log_level, redact=Vault(cfg.secrets).redact)
    plat = platform(state_dir, cfg.platform_options, cfg.os)
    plat.use_interpreter(cfg.python)
    why = _start(plat, config_path)
    if why is None:
        log.info("launch: the agent runs as the startup task; returning to Windows Setup")
        return 0
    log.warning(
        f"launch: {why}; running the agent here instead, with reboots deferred to the next start"
    )
    return run(config_path, defer_reboots=True)


def _start(plat: Platform, config_path: Path) -> str | None:
    """Register the startup task and start it; None when it runs, else why not."""
    for what, action in (
        ("registering the startup task", plat.install_startup_task),
        ("starting the agent", plat.start_agent),
    ):
        try:
            result = action(config_path)
        except (OSError, ValueError) as exc:
            return f"{what} failed: {exc}"
        if result is not None and result.exit_code != 0:
            output = result.output.strip()
            return f"{what} failed (exit {result.exit_code})" + (f": {output}" if output else "")
    return None
