"""The step engine: run, when, retries, timeout, continue_on_error, on_interrupt, reboots, resume.

Every step has a record in the state, keyed `<source>:<id>` and tied to the SHA-256 of the
step's canonical JSON; a step whose content changed starts afresh. The record is saved as
`running` before a step starts and with its result after, so a kill leaves either "not begun",
"running" (then `mark_interrupted` applies `on_interrupt` on the next start) or "finished".
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from vmprep.agent.durations import parse_duration
from vmprep.agent.logs import Log, utc_now
from vmprep.agent.platform.base import TAIL_BYTES, NotSupported
from vmprep.agent.secrets import SecretError, Vault
from vmprep.agent.stepcheck import step_kind
from vmprep.agent.steps import Outcome, StepContext, StepError, runner

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

NOT_IDEMPOTENT = frozenset({"exec", "cmd", "powershell", "msi"})
DEFAULT_RETRY_DELAY = 5.0
# What a step sequence ended with.
COMPLETED, FAILED, REBOOT, HALTED = "completed", "failed", "reboot", "halted"
INCOMPLETE = "incomplete"  # work left that this start cannot do (e.g. the service unreachable)
REBOOT_FAILED = "reboot_failed"  # a step needs a reboot and the OS refused every request
REBOOT_RETRY_WAITS = (5.0, 15.0, 30.0)


def step_hash(step: dict[str, Any]) -> str:
    canonical = json.dumps(step, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def on_interrupt(step: dict[str, Any]) -> str:
    if "on_interrupt" in step:
        return str(step["on_interrupt"])
    return "fail" if step_kind(step) in NOT_IDEMPOTENT else "rerun"


def mark_interrupted(state: dict[str, Any]) -> list[str]:
    """Apply `on_interrupt` to every step found `running` at start; returns their keys."""
    found = []
    for key, rec in state["steps"].items():
        if rec.get("status") != "running":
            continue
        found.append(key)
        if rec.get("on_interrupt") == "rerun":
            rec["status"] = "pending"
            rec["error"] = "interrupted; runs again (on_interrupt: rerun)"
        else:
            rec["status"] = "interrupted"
            rec["finished_at"] = utc_now()
            rec["error"] = "interrupted while running; not run again (on_interrupt: fail)"
    return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def condition_holds(
    cond: dict[str, Any] | None, role: str | None, os_name: str, variables: dict[str, Any]
) -> bool:
    if not cond:
        return True
    for field, actual in (("role", role), ("os", os_name)):
        if field in cond:
            wanted = cond[field] if isinstance(cond[field], list) else [cond[field]]
            if actual not in wanted:
                return False
    return all(
        name in variables and _same(variables[name], value)
        for name, value in (cond.get("variables") or {}).items()
    )


class Engine:
    def __init__(
        self,
        *,
        state: dict[str, Any],
        save: Callable[[], None],
        notify: Callable[[], None],
        context: StepContext,
        role: str | None,
        os_name: str,
        phone_home: Callable[[], str] | None = None,
        before_reboot: Callable[[], None] | None = None,
        defer_reboots: bool = False,
        step_started: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.state = state
        self.save = save
        self.notify = notify
        self.ctx = context
        self.role = role
        self.os_name = os_name
        self.phone_home = phone_home
        self.before_reboot = before_reboot
        # Inside Windows Setup (SetupComplete.cmd) a reboot is never asked for: the step is
        # recorded as needing one and the run stops; the next start is after the next boot.
        self.defer_reboots = defer_reboots
        self.step_started = step_started  # called as each step starts (its state saved)
        self.sleep = sleep
        self.last_failure: dict[str, Any] | None = None
        self.reboot_error: str | None = None

    @property
    def log(self) -> Log:
        return self.ctx.log

    @property
    def vault(self) -> Vault:
        return self.ctx.vault

    def run(self, steps: list[dict[str, Any]], source: str) -> str:
        """Run a checked list of steps in order; COMPLETED, FAILED, REBOOT or HALTED."""
        for step in steps:
            result = self._one(step, source)
            if result is not None:
                return result
        return COMPLETED

    def _record(self, step: dict[str, Any], source: str) -> dict[str, Any]:
        key = f"{source}:{step['id']}"
        digest = step_hash(step)
        rec: dict[str, Any] | None = self.state["steps"].get(key)
        if rec is None or rec.get("hash") != digest:
            rec = {
                "id": step["id"],
                "source": source,
                "kind": step_kind(step),
                "hash": digest,
                "status": "pending",
                "attempts": 0,
                "reboots": 0,
                "exit_code": None,
                "started_at": None,
                "finished_at": None,
                "output_tail": "",
                "error": None,
                "boot": None,
                "on_interrupt": on_interrupt(step),
            }
            self.state["steps"][key] = rec
        return rec

    def _one(self, step: dict[str, Any], source: str) -> str | None:
        rec = self._record(step, source)
        policy = step.get("run", "once_per_instance")
        status = rec["status"]
        if not condition_holds(step.get("when"), self.role, self.os_name, self.ctx.variables):
            if status != "skipped":
                rec["status"] = "skipped"
                self.save()
            self.log.info(f"step {step['id']}: skipped (when)")
            return None
        if status == "done" and (
            policy == "once_per_instance" or rec.get("boot") == self.state["boot"]
        ):
            return None
        if status == "interrupted":
            self.log.error(f"step {step['id']}: {rec.get('error')}")
            if step.get("continue_on_error"):
                return None
            self.last_failure = rec
            return FAILED
        rec.update(status="running", started_at=utc_now(), finished_at=None, error=None)
        rec.update(boot=self.state["boot"], attempts=0, exit_code=None, output_tail="")
        self.save()
        self.log.info(f"step {step['id']} ({rec['kind']}): started")
        if self.step_started is not None:
            self.step_started()
        if rec["kind"] == "phone_home":
            return self._phone_home(step, rec)
        outcome = self._attempts(step, rec)
        rec["exit_code"] = outcome.exit_code
        tail = self.vault.redact(outcome.output).encode("utf-8")[-TAIL_BYTES:]
        rec["output_tail"] = tail.decode("utf-8", "ignore")  # at most 4 KiB, redacted
        if not outcome.ok:
            return self._failed(step, rec, outcome.message or "failed")
        if outcome.reboot:
            return self._reboot(step, rec, outcome)
        self._done(step, rec)
        return None

    def _attempts(self, step: dict[str, Any], rec: dict[str, Any]) -> Outcome:
        kind = rec["kind"]
        retries = int(step.get("retries", 0))
        delay = parse_duration(step.get("retry_delay", DEFAULT_RETRY_DELAY))
        self.ctx.timeout = parse_duration(step["timeout"]) if "timeout" in step else None
        outcome = Outcome(False)
        for attempt in range(retries + 1):
            rec["attempts"] = attempt + 1
            if attempt:
                self.save()
            try:
                outcome = runner(kind)(step[kind], self.ctx)
            except (StepError, SecretError, NotSupported, OSError, ValueError) as exc:
                outcome = Outcome(False, message=str(exc))
            except Exception as exc:  # noqa: BLE001 - a bug in a step must not stop the agent
                outcome = Outcome(False, message=f"internal error: {type(exc).__name__}: {exc}")
            if outcome.ok:
                break
            if attempt < retries:
                self.log.warning(
                    f"step {step['id']}: attempt {attempt + 1} failed "
                    f"({outcome.message}); retrying in {delay:g}s"
                )
                self.sleep(delay)
        return outcome

    def _done(self, step: dict[str, Any], rec: dict[str, Any]) -> None:
        rec.update(status="done", finished_at=utc_now())
        self.save()
        self.log.info(f"step {step['id']}: done (exit {rec['exit_code']})")
        self.notify()

    def _failed(self, step: dict[str, Any], rec: dict[str, Any], message: str) -> str | None:
        rec.update(status="failed", finished_at=utc_now(), error=self.vault.redact(message))
        self.save()
        self.log.error(f"step {step['id']}: failed after {rec['attempts']} attempt(s): {message}")
        self.notify()
        if step.get("continue_on_error"):
            return None
        self.last_failure = rec
        return FAILED

    def _reboot(self, step: dict[str, Any], rec: dict[str, Any], outcome: Outcome) -> str | None:
        budget = int(step.get("reboot_budget", 3))
        if rec["reboots"] >= budget:
            return self._failed(
                step, rec, f"asked for a reboot again, but its reboot budget ({budget}) is spent"
            )
        rec["reboots"] += 1
        rec["finished_at"] = utc_now()
        # 3011: the step runs again after the reboot; otherwise it is done.
        rec["status"] = "pending" if outcome.reboot == "rerun" else "done"
        self.state["reboot_pending"] = {"step": f"{rec['source']}:{rec['id']}", "at": utc_now()}
        self.save()  # recorded before asking, so the reboot never looks like an interruption
        self.notify()
        if self.defer_reboots:
            self.log.warning(
                f"step {step['id']}: needs a reboot ({outcome.reboot}); not rebooting inside "
                "Windows Setup: the run goes on at the next start"
            )
            return REBOOT
        reason = str(step.get("reboot", {}).get("reason") or f"vmprep: step {step['id']}")
        self.log.info(f"step {step['id']}: reboot requested ({outcome.reboot}); rebooting")
        if self.before_reboot is not None:
            self.before_reboot()
        return REBOOT if self._request_reboot(reason) else REBOOT_FAILED

    def _request_reboot(self, reason: str) -> bool:
        """Ask the OS to reboot, again after a failure (shutdown.exe can fail while another
        shutdown is in progress, 1115, or the machine is locked for a moment); False when every
        attempt failed: the run then ends `failed` (`reboot_failed`) instead of waiting for a
        reboot that will not come (#19)."""
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

    def _phone_home(self, step: dict[str, Any], rec: dict[str, Any]) -> str | None:
        result = self.phone_home() if self.phone_home is not None else COMPLETED
        rec = self.state["steps"][f"{rec['source']}:{rec['id']}"]
        if result == COMPLETED:
            self._done(step, rec)
            return None
        if result in (REBOOT, INCOMPLETE, REBOOT_FAILED):
            rec["status"] = "pending"  # fetched and resumed again at the next start
            self.save()
            return result
        if result == HALTED:
            rec.update(status="failed", finished_at=utc_now(), error="halted")
            self.save()
            return HALTED
        rec.update(status="failed", finished_at=utc_now(), error="a remote step failed")
        self.save()
        return FAILED
