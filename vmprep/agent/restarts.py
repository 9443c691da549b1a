"""The reboot plan: when a restart that a step asked for happens.

A step that needs a restart (exit 3010, a rename, a join, a feature or an MSI that needs one)
says when: `now`, before the next step, or `deferred` to the next step that needs it (one with
`after_reboot: true`, or a `reboot` step) or to the end of the run. Deferred restarts coalesce
into one; a `reboot` step reached while one is due is satisfied by it. Exit 3011 ("restart,
then run me again") is always `now`. The reasons for each kind's default are in docs/agent.md.

Crash safety: a deferred restart is recorded in the state (`restart_due`) in the same atomic
save that marks its step done, so a kill at any point either leaves the step to run again or
the restart recorded; a start in the same boot keeps it due, a start in a new boot (whatever
restarted the machine) clears it.
"""

from __future__ import annotations

from vmprep.agent.logs import utc_now

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from collections.abc import Callable
    from typing import Any

    from vmprep.agent.logs import Log
    from vmprep.agent.steps import StepContext

NOW, DEFERRED = "now", "deferred"
REBOOT = "reboot"  # what a step sequence ends with when the machine restarts
REBOOT_FAILED = "reboot_failed"  # a restart is needed and the OS refused every request
REBOOT_RETRY_WAITS = (5.0, 15.0, 30.0)
# Built-in actions whose restart only completes them: the new name, the domain membership,
# a feature's or an MSI's replaced files take effect at the next restart whenever it comes,
# and nothing the agent does before it depends on them unless a step says so (after_reboot).
DEFERRED_KINDS = frozenset({"rename_computer", "join_domain", "windows_feature", "msi"})


def timing(step: dict[str, Any], kind: str, reboot: str | None) -> str:
    """`now` or `deferred` for a restart that `step` asked for (`reboot`: continue/rerun)."""
    if reboot == "rerun":
        return NOW  # the step runs again after the restart: nothing else may come first
    if "reboot_timing" in step:
        return str(step["reboot_timing"])
    return DEFERRED if kind in DEFERRED_KINDS else NOW


def needs_restart_first(step: dict[str, Any], kind: str) -> bool:
    """A step that a due restart must precede: one marked after_reboot, or a reboot step."""
    return kind == "reboot" or bool(step.get("after_reboot"))


def due(state: dict[str, Any]) -> list[str]:
    """The step keys whose deferred restart has not happened yet."""
    return list(state.get("restart_due") or [])


def defer(state: dict[str, Any], key: str) -> None:
    keys = due(state)
    if key not in keys:
        keys.append(key)
    state["restart_due"] = keys


def take(state: dict[str, Any], key: str | None, at: str) -> list[str]:
    """Turn every due restart (and `key`'s) into the one pending now; returns the keys."""
    keys = due(state)
    if key is not None and key not in keys:
        keys.append(key)
    state["reboot_pending"] = {"step": keys[-1] if keys else None, "steps": keys, "at": at}
    state["restart_due"] = None
    return keys


def new_boot(state: dict[str, Any]) -> None:
    """The machine restarted: every due restart happened, and any pending name is in effect."""
    state["restart_due"] = None
    state["pending_name"] = None


class RestartPlan:
    """The engine's restarts: carried out now, before a step that needs them, or at the end."""

    state: dict[str, Any]
    save: Callable[[], None]
    notify: Callable[[], None]
    ctx: StepContext
    defer_reboots: bool
    before_reboot: Callable[[], None] | None
    sleep: Callable[[float], None]
    reboot_error: str | None = None

    @property
    def log(self) -> Log:
        return self.ctx.log

    def restart_at_end(self) -> str | None:
        """The run is over: a restart still due happens now (REBOOT), else None."""
        if not due(self.state):
            return None
        return self._restart("vmprep: restart deferred to the end of the run", None)

    def _restart_first(self, step: dict[str, Any], rec: dict[str, Any]) -> str | None:
        """A step that needs the due restart: a reboot step is satisfied by it, any other
        step runs after it."""
        keys = ", ".join(due(self.state))
        reason = f"vmprep: restart due for {keys}, before step {step['id']}"
        if rec["kind"] != "reboot":
            self.log.info(f"step {step['id']}: needs the restart due for {keys}; restarting first")
            return self._restart(reason, None)
        now = utc_now()
        rec.update(status="done", started_at=now, finished_at=now, boot=self.state["boot"])
        rec.update(exit_code=0, reboots=rec["reboots"] + 1)
        rec["output_tail"] = f"satisfied by the restart due for {keys}"
        self.log.info(f"step {step['id']}: satisfied by the restart due for {keys}")
        if timing(step, "reboot", "continue") == DEFERRED:
            self.save()
            self.notify()
            return None
        reason = str(step["reboot"].get("reason") or reason)
        return self._restart(reason, f"{rec['source']}:{rec['id']}")

    def _restart(self, reason: str, key: str | None) -> str:
        """Every due restart, and `key`'s, in one restart now (recorded before asking)."""
        keys = take(self.state, key, utc_now())
        self.save()  # recorded before asking, so the reboot never looks like an interruption
        self.notify()
        if self.defer_reboots:
            self.log.warning(
                f"a restart is needed ({', '.join(keys)}); not rebooting inside "
                "Windows Setup: the run goes on at the next start"
            )
            return REBOOT
        self.log.info(f"restarting for {', '.join(keys)}")
        if self.before_reboot is not None:
            self.before_reboot()
        return REBOOT if self._request_reboot(reason) else REBOOT_FAILED

    def _request_reboot(self, reason: str) -> bool:
        """Ask the OS to reboot, again after a failure (shutdown.exe fails while another
        shutdown is scheduled, 1190, or in progress, 1115); False when every attempt failed:
        the run then ends `failed` (`reboot_failed`) instead of waiting for a reboot that will
        not come (#19). `platform_options.reboot_retry_waits` overrides the waits."""
        waits = self.ctx.options.get("reboot_retry_waits", REBOOT_RETRY_WAITS)
        for attempt, wait in enumerate((*(float(w) for w in waits), None)):
            try:
                result = self.ctx.platform.reboot(reason)
                code, output = result.exit_code, result.output
            except OSError as exc:
                code, output = None, str(exc)
            if code == 0:
                return True
            self.log.error(
                f"the reboot command failed (attempt {attempt + 1}, exit {code}): {output}"
            )
            if wait is None:
                self.reboot_error = f"the reboot command failed {attempt + 1} times (exit {code})"
                return False
            self.sleep(wait)
        return False  # pragma: no cover
