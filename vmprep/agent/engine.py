"""The step engine: run, when, retries, timeout, continue_on_error, on_interrupt, reboots, resume.

Every step has a record in the state, keyed `<source>:<id>` and tied to the SHA-256 of the
step's canonical JSON; a step whose content changed starts afresh. The record is saved as
`running` before a step starts and with its result after, so a kill leaves either "not begun",
"running" (then `mark_interrupted` applies `on_interrupt` on the next start) or "finished".
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator

from vmprep.agent import naming, restarts
from vmprep.agent.logs import utc_now
from vmprep.agent.platform.base import TAIL_BYTES, NotSupported
from vmprep.agent.secrets import SecretError, Vault
from vmprep.agent.stepcheck import step_kind
from vmprep.agent.steps import Outcome, StepContext, StepError, runner
from vmprep.agent.steps.system import run_join_domain
from vmprep.protocol.canonical import canonical_json
from vmprep.protocol.durations import parse_duration

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

NOT_IDEMPOTENT = frozenset({"exec", "cmd", "powershell", "msi"})
DEFAULT_RETRY_DELAY = 5.0
# What a step sequence ended with.
COMPLETED, FAILED, HALTED = "completed", "failed", "halted"
REBOOT = restarts.REBOOT
REBOOT_FAILED = restarts.REBOOT_FAILED
INCOMPLETE = "incomplete"  # work left that this start cannot do (e.g. the service unreachable)


def step_hash(step: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(step)).hexdigest()


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


class Engine(restarts.RestartPlan):
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
        before_step: Callable[[str], None] | None = None,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        restore: Callable[[], None] | None = None,
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
        # called with the kind before a step is marked running; may raise to stop the run
        # with the step untouched (Run: wait for Windows Setup before a step that may reboot)
        self.before_step = before_step
        # time.monotonic() after which no step starts (`launch`'s fallback time limit): the run
        # ends INCOMPLETE (state running) and the startup task goes on at the next boot
        self.deadline = deadline
        self.sleep = sleep
        # Called when a phone_home step done in an earlier boot is passed over: the document's
        # variables and secrets live in memory only, and the steps after it may need them.
        self.restore = restore
        self.last_failure: dict[str, Any] | None = None
        self._frames: list[list[Any]] = []  # [steps, source, index] of each run() in progress

    @property
    def vault(self) -> Vault:
        return self.ctx.vault

    def run(self, steps: list[dict[str, Any]], source: str) -> str:
        """Run a checked list of steps in order; COMPLETED, FAILED, REBOOT or HALTED."""
        frame: list[Any] = [steps, source, 0]
        self._frames.append(frame)
        try:
            for index, step in enumerate(steps):
                frame[2] = index
                result = self._one(step, source)
                if result is not None:
                    return result
        finally:
            self._frames.pop()
        return COMPLETED

    def upcoming(self) -> Iterator[tuple[dict[str, Any], str, dict[str, Any] | None]]:
        """The steps after the current one in run order (inner lists first), with records."""
        for steps, source, index in reversed(self._frames):
            for step in steps[index + 1 :]:
                yield step, source, self.state["steps"].get(f"{source}:{step['id']}")

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
            if rec["kind"] == "phone_home" and self.restore is not None:
                restore, self.restore = self.restore, None
                restore()
            return None
        if status == "interrupted":
            self.log.error(f"step {step['id']}: {rec.get('error')}")
            if step.get("continue_on_error"):
                return None
            self.last_failure = rec
            return FAILED
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.log.warning(
                f"step {step['id']}: not started, the time limit is reached; the startup task "
                "goes on at the next boot"
            )
            return INCOMPLETE
        if self.before_step is not None:
            self.before_step(rec["kind"])
        if restarts.due(self.state) and restarts.needs_restart_first(step, rec["kind"]):
            return self._restart_first(step, rec)
        rec.update(status="running", started_at=utc_now(), finished_at=None, error=None)
        rec.update(boot=self.state["boot"], attempts=0, exit_code=None, output_tail="")
        self.save()
        self.log.info(f"step {step['id']} ({rec['kind']}): started")
        if self.step_started is not None:
            self.step_started()
        if rec["kind"] == "phone_home":
            return self._phone_home(step, rec)
        merge = self._merge(step, rec)
        outcome = self._attempts(step, rec, merge)
        rec["exit_code"] = outcome.exit_code
        tail = self.vault.redact(outcome.output).encode("utf-8")[-TAIL_BYTES:]
        rec["output_tail"] = tail.decode("utf-8", "ignore")  # at most 4 KiB, redacted
        if not outcome.ok:
            return self._failed(step, rec, outcome.message or "failed")
        if merge is not None:
            self._partner_done(step, rec, merge)
        elif rec["kind"] == "rename_computer" and outcome.reboot:
            self.state["pending_name"] = self.ctx.fill(str(step["rename_computer"]["name"]))
        if outcome.reboot:
            return self._reboot(step, rec, outcome)
        self._done(step, rec)
        return None

    def _merge(self, step: dict[str, Any], rec: dict[str, Any]) -> Any:
        if rec["kind"] not in naming.PAIR:
            return None
        merge = naming.plan(
            step,
            self.ctx,
            self.upcoming(),
            self.state.get("pending_name"),
            lambda cond: condition_holds(cond, self.role, self.os_name, self.ctx.variables),
        )
        if merge is not None:
            with_ = f"step {merge.partner['id']}" if merge.partner else "the pending rename"
            self.log.info(
                f"step {step['id']}: renames to {merge.name!r} and joins "
                f"{merge.join['domain']} in one operation, with {with_}"
            )
        return merge

    def _partner_done(self, step: dict[str, Any], rec: dict[str, Any], merge: Any) -> None:
        """The partner of a merged rename + join is done too (saved with this step's record)."""
        if merge.partner is None:
            return
        other = self._record(merge.partner, merge.partner_source)
        now = utc_now()
        other.update(status="done", started_at=rec["started_at"], finished_at=now)
        other.update(boot=self.state["boot"], attempts=rec["attempts"], exit_code=rec["exit_code"])
        other["output_tail"] = f"done by step {step['id']} (one Add-Computer -NewName call)"

    def _attempts(self, step: dict[str, Any], rec: dict[str, Any], merge: Any = None) -> Outcome:
        kind = rec["kind"]
        retries = int(step.get("retries", 0))
        delay = parse_duration(step.get("retry_delay", DEFAULT_RETRY_DELAY))
        self.ctx.timeout = parse_duration(step["timeout"]) if "timeout" in step else None
        self.ctx.step_key = f"{rec['source']}-{rec['id']}"
        outcome = Outcome(False)
        for attempt in range(retries + 1):
            rec["attempts"] = attempt + 1
            if attempt:
                self.save()
            try:
                if merge is not None:
                    outcome = run_join_domain(merge.join, self.ctx, merge.name)
                else:
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
        key = f"{rec['source']}:{rec['id']}"
        if restarts.timing(step, rec["kind"], outcome.reboot) == restarts.DEFERRED:
            restarts.defer(self.state, key)
            self.save()  # the restart is recorded in the very save that marks the step done
            self.notify()
            self.log.info(f"step {step['id']}: done; its restart is deferred")
            return None
        reason = str(step.get("reboot", {}).get("reason") or f"vmprep: step {step['id']}")
        self.log.info(f"step {step['id']}: reboot requested ({outcome.reboot})")
        return self._restart(reason, key)

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
