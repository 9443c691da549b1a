"""`launch`: what SetupComplete.cmd runs. It hands the run to the startup task and returns.

Windows runs SetupComplete.cmd inside Setup, before the logon screen appears, and a reboot
from inside it puts the system in a bad state (it cannot resume). So the launcher does not
run the job there: it registers the startup task (the same `schtasks /Create` that `run`
uses), starts it now (`schtasks /Run`), logs and returns 0 at once; `run` goes on in the task,
outside Setup, where it may reboot. On POSIX (tests, Linux images) the task is a detached
child process running `run`.

If the task cannot be started, `launch` runs `run` as a fallback, in a child process it waits
for, with reboots deferred: a step that needs a reboot is recorded as such, the run stops
(exit 2), and the next start (the registered task, at the next boot) goes on. `launch` never
reboots. The fallback has a time limit (`platform_options.launch_time_limit`, default 5
minutes), so a long phone-home cannot hold up the logon screen or the cloud's provisioning:
from the limit on no step starts (the run ends `running`, exit 2), and a step still running
`launch_kill_grace` later (default 30 s, at most a quarter of the limit) is killed with the
child's process tree, which the agent's crash safety absorbs like a power cut.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vmprep.agent.answerfiles import delete_early_answer_files
from vmprep.agent.config import AgentConfig, ConfigError, load_config
from vmprep.agent.logs import Log
from vmprep.agent.platform import current as current_platform
from vmprep.agent.platform.base import Platform
from vmprep.agent.secrets import Vault

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

UNREADABLE = 4  # as `run`: agent.json unreadable, nothing started
RUNNING = 2  # as `run`: not done, the next start goes on


LAUNCH_TIME_LIMIT = 300.0
KILL_GRACE = 30.0


def _default_run(
    config_path: Path, *, defer_reboots: bool, time_limit: float, platform: Platform, log: Log
) -> int:
    """`run` in a child process (the same interpreter and flags), killed at the limit."""
    import subprocess

    from vmprep.protocol.durations import parse_duration

    argv = [*platform.agent_argv(config_path), "--stop-after", f"{time_limit:g}"]
    if defer_reboots:
        argv.append("--defer-reboots")
    grace = parse_duration(
        platform.options.get("launch_kill_grace", min(KILL_GRACE, time_limit / 4))
    )
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **platform.popen_kwargs())
    # popen_kwargs may create the child suspended (Windows: it is resumed once it is in its
    # Job Object); without `adopt` the fallback agent never starts.
    platform.adopt(proc)
    try:
        return proc.wait(timeout=time_limit + grace)
    except subprocess.TimeoutExpired:
        log.warning(
            f"launch: the agent still runs {time_limit + grace:g}s after it started; stopping it "
            "(its state stays resumable: the startup task goes on at the next boot)"
        )
        platform.kill_tree(proc)
        proc.wait()
        return RUNNING
    finally:
        platform.release(proc)


def launch_agent(
    config_path: Path,
    *,
    platform: Callable[[Path, dict[str, Any], str, str], Platform] = current_platform,
    run: Callable[..., int] = _default_run,
) -> int:
    """0 once the task runs `run`; otherwise `run`'s exit code (reboots deferred, time limit)."""
    import sys

    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        print(f"vmprep-agent: error: {exc}", file=sys.stderr)
        return UNREADABLE
    config_path = config_path.resolve()
    state_dir = config_path.parent
    log = Log(state_dir / "logs", level=cfg.log_level, redact=Vault(cfg.secrets).redact)
    plat = platform(state_dir, cfg.platform_options, cfg.os, cfg.cloud)
    plat.use_interpreter(cfg.python)
    _delete_answer_files(plat, cfg, log)
    why = _start(plat, config_path)
    if why is None:
        log.info("launch: the agent runs as the startup task; returning to Windows Setup")
        return 0
    log.warning(
        f"launch: {why}; running the agent here instead, with reboots deferred to the next start"
    )
    from vmprep.protocol.durations import parse_duration

    limit = parse_duration(cfg.platform_options.get("launch_time_limit", LAUNCH_TIME_LIMIT))
    return run(config_path, defer_reboots=True, time_limit=limit, platform=plat, log=log)


def _delete_answer_files(plat: Platform, cfg: AgentConfig, log: Log) -> None:
    """Now, if Windows Setup is done with them (a startup task may fire during specialize,
    when Setup still reads the answer file); otherwise `run` deletes them once it is."""
    pending = plat.setup_pending()
    if pending is None:
        delete_early_answer_files(cfg, log)
    elif not cfg.keep_answer_files:
        log.info(
            f"launch: {plat.setup_name} has not finished ({pending}); `run` deletes the "
            "answer files once it has"
        )


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
