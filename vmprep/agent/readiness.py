"""Wait for Windows Setup and the cloud's agent before the first step that may reboot.

The platform says what is still pending (`setup_pending`, `cloud_pending`); this waits, with a
bound for each, and says so in the log. Windows Setup not done at its bound stops the run
(`NotReady`: rebooting would break Setup); the cloud's agent not done at its bound is logged
as an error and the run goes on (its provisioning resumes after a reboot, and the agent must
not wait for ever on someone else's failure). docs/agent.md lists what is waited for where.
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
    log.info(f"waiting for {what} before a step that may reboot: {why}")
    while clock() - start < limit:
        sleep(poll)
        why = pending()
        if why is None:
            log.info(f"{what} finished after {clock() - start:.0f}s")
            return None
    return why


def wait_until_ready(
    platform: Platform,
    log: Log,
    *,
    setup_wait: float = SETUP_WAIT,
    cloud_wait: float = CLOUD_WAIT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = POLL,
) -> None:
    """Raises NotReady when Windows Setup is not done within `setup_wait` seconds."""
    why = wait_for(
        platform.setup_pending,
        "Windows Setup",
        setup_wait,
        log,
        clock=clock,
        sleep=sleep,
        poll=poll,
    )
    if why is not None:
        raise NotReady(
            f"Windows Setup has not finished after {setup_wait:g}s ({why}); not running a step "
            "that may reboot (the next start tries again)"
        )
    cloud = platform.cloud
    what = f"the {cloud} agent"
    why = wait_for(
        platform.cloud_pending, what, cloud_wait, log, clock=clock, sleep=sleep, poll=poll
    )
    if why is not None:
        log.error(f"the {cloud} agent is not done after {cloud_wait:g}s ({why}); going on")
