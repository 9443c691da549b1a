"""Wait for Windows Setup, and for the cloud's agent, before the agent acts.

- Windows Setup: `run` waits for it before anything else (bounded): until Setup has finished,
  a reboot breaks the machine, and Setup still reads the answer file (which the agent deletes
  next). `launch` can start the task while Setup runs SetupComplete.cmd, and a startup task
  can even fire during the specialize pass. Not done at the bound: `NotReady`, the run stops.
- The cloud's agent: waited for before the first step that may reboot (`MAY_REBOOT`),
  bounded; not done at the bound is logged as an error and the run goes on (the cloud's
  provisioning resumes after a reboot, and the agent must not wait for ever on someone else's
  failure).

The platform says what is pending (`setup_pending`, `cloud_pending`); docs/agent.md lists what
is waited for on which platform.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from collections.abc import Callable

    from vmprep.agent.logs import Log
    from vmprep.agent.platform.base import Platform

SETUP_WAIT = 30 * 60.0
CLOUD_WAIT = 10 * 60.0
POLL = 2.0
# Step kinds that may end in a reboot (their own, or one they ask the agent for).
MAY_REBOOT = frozenset(
    {
        "reboot",
        "exec",
        "cmd",
        "powershell",
        "msi",
        "windows_feature",
        "rename_computer",
        "join_domain",
        "phone_home",  # the remote steps
    }
)


class NotReady(Exception):
    """Windows Setup did not finish within the bound."""


def wait_for(
    pending: Callable[[], str | None],
    what: str,
    limit: float,
    log: Log,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = POLL,
) -> str | None:
    """Poll `pending` until it answers None (then None) or `limit` seconds pass (then why)."""
    start = clock()
    why = pending()
    if why is None:
        return None
    log.info(f"waiting for {what}: {why}")
    while clock() - start < limit:
        sleep(poll)
        why = pending()
        if why is None:
            log.info(f"{what} finished after {clock() - start:.0f}s")
            return None
    return why


def wait_for_setup(
    platform: Platform,
    log: Log,
    limit: float = SETUP_WAIT,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = POLL,
) -> None:
    """Raises NotReady when the OS's setup is not done within `limit` seconds."""
    setup = platform.setup_name
    why = wait_for(platform.setup_pending, setup, limit, log, clock=clock, sleep=sleep, poll=poll)
    if why is not None:
        raise NotReady(
            f"{setup} has not finished after {limit:g}s ({why}); the agent does nothing before "
            "it has (the next start tries again)"
        )


def wait_for_cloud(
    platform: Platform,
    log: Log,
    limit: float = CLOUD_WAIT,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = POLL,
) -> None:
    """Logs an error when the cloud's agent is not done within `limit` seconds, then returns."""
    what = f"the {platform.cloud} agent before a step that may reboot"
    why = wait_for(platform.cloud_pending, what, limit, log, clock=clock, sleep=sleep, poll=poll)
    if why is not None:
        log.error(f"the {platform.cloud} agent is not done after {limit:g}s ({why}); going on")
