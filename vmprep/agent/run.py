"""`run`: lock → identify → baked steps → phone home → remote steps → report → clean up.

Exit codes: 0 done, 1 failed or halted, 2 still running (a reboot was requested),
3 another agent holds the lock, 4 agent.json or the state file unreadable, 70 internal bug.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from vmprep import __version__
from vmprep.agent import restarts
from vmprep.agent.answerfiles import delete_answer_files, delete_early_answer_files
from vmprep.agent.config import AgentConfig, ConfigError, load_config
from vmprep.agent.engine import (
    COMPLETED,
    FAILED,
    HALTED,
    INCOMPLETE,
    REBOOT,
    REBOOT_FAILED,
    Engine,
    mark_interrupted,
)
from vmprep.agent.logs import Log, utc_now
from vmprep.agent.platform import current as current_platform
from vmprep.agent.platform.base import Platform
from vmprep.agent.readiness import (
    CLOUD_WAIT,
    MAY_REBOOT,
    POLL,
    SETUP_WAIT,
    NotReady,
    wait_for_cloud,
    wait_for_setup,
)
from vmprep.agent.secrets import Secret, Vault
from vmprep.agent.state import AgentLock, LockTimeout, StateError, StateStore, new_state
from vmprep.agent.stepcheck import check_steps, step_kind
from vmprep.agent.steps import StepContext

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

EXIT = {"done": 0, "failed": 1, "halted": 1, "running": 2}
LOCK_BUSY, UNREADABLE, INTERNAL = 3, 4, 70
DELIVERY_WAIT = 180.0  # seconds: the reports' final budget (120 s) and one request's timeout


def run_agent(
    config_path: Path,
    state_dir: Path | None,
    *,
    lock_timeout: float = 60.0,
    defer_reboots: bool = False,
    stop_after: float | None = None,
) -> int:
    """`run`. With `defer_reboots` (`launch`'s fallback inside Windows Setup) a step that needs
    a reboot ends the run as `running` (exit 2) without rebooting; the next start goes on."""
    import sys

    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        print(f"vmprep-agent: error: {exc}", file=sys.stderr)
        return UNREADABLE
    state_dir = state_dir or config_path.resolve().parent
    vault = Vault(cfg.secrets)
    log = Log(state_dir / "logs", level=cfg.log_level, redact=vault.redact)
    lock = AgentLock(state_dir)
    try:
        lock.acquire(lock_timeout)
    except LockTimeout as exc:
        log.warning(f"{exc}; waited {lock_timeout:g}s, exiting")
        return LOCK_BUSY
    run = Run(cfg, state_dir, vault, log)
    run.defer_reboots = defer_reboots
    if stop_after is not None:  # `launch`'s fallback: no step starts after this many seconds
        run.deadline = time.monotonic() + stop_after
    try:
        return run.execute()
    except StateError as exc:
        log.error(f"state unreadable, refusing to guess: {exc}")
        return UNREADABLE
    except Exception as exc:  # noqa: BLE001 - last resort: say it in the log, redacted
        log.error(f"internal error (please report this): {type(exc).__name__}: {exc}")
        return INTERNAL
    finally:
        if run.reporter is not None:
            run.reporter.close(timeout=30)
        lock.release()


class Run:
    def __init__(self, cfg: AgentConfig, state_dir: Path, vault: Vault, log: Log) -> None:
        self.cfg = cfg
        self.state_dir = state_dir
        self.vault = vault
        self.log = log
        self.store = StateStore(state_dir)
        self.platform: Platform = current_platform(
            state_dir, cfg.platform_options, cfg.os, cfg.cloud
        )
        self.platform.use_interpreter(cfg.python)
        self.reporter: Any = None
        self._make_reporter: Callable[[], Any] | None = None
        self.identity: Any = None
        self.state: dict[str, Any] = {}
        self.variables: dict[str, Any] = dict(cfg.variables)
        self.engine: Engine | None = None
        self.defer_reboots = False
        self.deadline: float | None = None
        self.cloud_waited = False  # the cloud's agent, before a step that may reboot

    # -- persistence and reports -------------------------------------------------------------
    def save(self) -> None:
        self.store.save(self.state)

    def report(self) -> None:
        """Queue a report of the current state (sent in the background, in order).

        The worker thread (and the HTTP stack it imports) starts with the first report, which
        is sent as the first step starts, not before: off the path to the first step."""
        if self._make_reporter is None:
            return
        if self.reporter is None:
            from vmprep.agent.reportworker import BackgroundReporter

            self.reporter = BackgroundReporter(self._make_reporter, self.log.error)
        from vmprep.agent.status import report_steps

        document = self.state.get("document") or {}
        self.reporter.send(
            {
                "config_serial": document.get("serial"),
                "state": self.state["state"],
                "boot": self.state["boot"],
                "steps": report_steps(self.state),
                "error": self.state.get("error"),
                **({"inputs": self.state["inputs"]} if self.state.get("inputs") else {}),
            }
        )

    # -- the job --------------------------------------------------------------------------------
    def execute(self) -> int:
        cfg = self.cfg
        if hasattr(self.platform, "load_persisted_env"):
            self.platform.load_persisted_env()
        identity = self._identify()
        if identity is None:
            return 1
        self.identity = identity
        loaded = self.store.load(identity.instance_id, clean=True)
        state = loaded if loaded is not None else new_state(identity.instance_id)
        self.state = state
        self.store.set_current(identity.instance_id)
        if state.get("state") == "done" and state.get("flush_pending"):
            return self._flush_only()
        self._new_boot()
        for key in mark_interrupted(state):
            self.log.warning(f"step {key} was interrupted: {state['steps'][key]['error']}")
        state.update(
            state="running",
            error=None,
            finished_at=None,
            identity_source=identity.source,
            computer_name=identity.computer_name,
            baked_ids=[
                s["id"] for s in cfg.steps if isinstance(s, dict) and isinstance(s.get("id"), str)
            ],
            agent_pid=os.getpid(),
        )
        refused = self._deploy_inputs()
        self._ensure_startup_task()
        # No save here: the first step's "running" save (or the final one) writes all of this;
        # a kill before it loses nothing that the next start would not redo the same way.
        self.log.info(
            f"vmprep agent {__version__}: instance {identity.instance_id} ({identity.source}), "
            f"boot {state['boot']}"
        )
        self._prepare_reporter()
        if refused is not None:  # nothing of the platform's values is applied
            return self._finish(FAILED, refused)
        try:
            self._wait_for_setup()
        except NotReady as exc:
            self.log.error(str(exc))
            return self._finish(FAILED, {"code": "setup_not_complete", "message": str(exc)})
        problems = self._preflight(cfg.steps, "agent.json")
        if problems:
            return self._finish(
                FAILED, {"code": "invalid_document", "message": "; ".join(problems)}
            )
        engine = Engine(
            state=state,
            save=self.save,
            notify=self.report,
            context=StepContext(
                platform=self.platform,
                vault=self.vault,
                log=self.log,
                state_dir=self.state_dir,
                variables=self.variables,
                names={"role": cfg.role or "", "instance_id": identity.instance_id},
                options=cfg.platform_options,
            ),
            role=cfg.role,
            os_name=cfg.os,
            phone_home=self._phone_home,
            before_reboot=self._before_reboot,
            defer_reboots=self.defer_reboots,
            step_started=self._first_report,
            before_step=self._before_step,
            deadline=self.deadline,
            restore=self._restore,
        )
        self.engine = engine
        result = engine.run(cfg.steps, "baked")
        explicit = any(isinstance(s, dict) and "phone_home" in s for s in cfg.steps)
        if result == COMPLETED and not explicit:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.log.warning("phone home: not started, the time limit is reached")
                result = INCOMPLETE
            else:
                self._before_step("phone_home")
                result = self._phone_home()
        if result == COMPLETED:
            result = engine.restart_at_end() or COMPLETED
        elif result != REBOOT and state.get("restart_due"):
            self.log.warning(f"a restart is still due for {', '.join(state['restart_due'])}")
        return self._finish(result, None)

    def _option_seconds(self, name: str, default: float) -> float:
        from vmprep.protocol.durations import parse_duration

        return parse_duration(self.cfg.platform_options.get(name, default))

    def _wait_for_setup(self) -> None:
        """Windows Setup finished (bounded; raises NotReady), then the answer files go (unless
        kept, or needed until the run is done). In `launch`'s fallback, inside SetupComplete.cmd,
        Setup cannot finish while the agent waits: no wait there, and the answer files go only
        if Setup already says it is done (else the next start deletes them)."""
        if self.defer_reboots:
            if self.platform.setup_pending() is None:
                delete_early_answer_files(self.cfg, self.log)
            return
        poll = self._option_seconds("ready_poll", POLL)
        wait_for_setup(
            self.platform, self.log, self._option_seconds("setup_wait", SETUP_WAIT), poll=poll
        )
        delete_early_answer_files(self.cfg, self.log)

    def _before_step(self, kind: str) -> None:
        """Before the first step that may reboot: the cloud's agent done (bounded). Not in
        `launch`'s fallback, which never reboots."""
        if self.cloud_waited or self.defer_reboots or kind not in MAY_REBOOT:
            return
        poll = self._option_seconds("ready_poll", POLL)
        wait_for_cloud(
            self.platform, self.log, self._option_seconds("cloud_wait", CLOUD_WAIT), poll=poll
        )
        self.cloud_waited = True

    def _identify(self) -> Any:
        from vmprep.agent.identity import IdentityError, identify

        try:
            return identify(
                self.cfg.identity,
                endpoints=self.cfg.endpoints or None,
                timeout=float(self.cfg.platform_options.get("identity_timeout", 2.0)),
                sys_root=str(self.cfg.platform_options.get("sys_root", "/")),
            )
        except IdentityError as exc:
            self.log.error(f"cannot identify this instance: {exc}")
            return None

    def _deploy_inputs(self) -> dict[str, str] | None:
        """Apply agent.inputs (docs/inputs.md): decided once per instance, kept in its state;
        the error to stop with when a value is refused or a required key is missing."""
        decl = self.cfg.inputs
        if not decl:
            return None
        decided = self.state.get("inputs")
        if decided is None:
            from vmprep.agent.inputs import InputError, Sources, resolve
            from vmprep.protocol.durations import parse_duration

            sources = Sources(
                timeout=parse_duration(decl.get("timeout", "2s")),
                endpoints=self.cfg.endpoints,
                options=self.cfg.platform_options,
                file=decl.get("file"),
                log=self.log.info,
            )
            try:
                decided = resolve(decl, sources, self.log.info)
            except InputError as exc:
                self.log.error(f"deploy-time inputs: {exc}; nothing of them is applied")
                return {"code": exc.code, "message": str(exc)}
            self.state["inputs"] = decided
        for key, got in sorted(decided.items()):
            self.log.info(f"input {key} = {got['value']!r} (from {got['source']})")
            if key == "role" and self.cfg.phone_home is not None:
                self.cfg.phone_home["role"] = got["value"]
            elif key != "role":
                self.variables[key] = got["value"]
        return None

    def _new_boot(self) -> None:
        state = self.state
        boot_id = self.platform.boot_id()
        same = boot_id is not None and self.platform.same_boot(state["boot_id"], boot_id)
        if state["reboot_pending"] is not None or not same:
            state["boot"] += 1
            state["boot_id"] = boot_id
            state["reboot_pending"] = None
            restarts.new_boot(state)

    def _preflight(self, steps: Any, where: str) -> list[str]:
        """Structure first, then whether this platform can run every step: before any runs."""
        problems = [f"{where}: {p}" for p in check_steps(steps)]
        if problems:
            return problems
        for i, step in enumerate(steps):
            kind = step_kind(step)
            why = self.platform.unsupported(kind, step[kind])
            if kind == "phone_home" and where == "document":
                why = "a remote document cannot phone home again (phone_home is for baked steps)"
            if why:
                problems.append(f"{where}: steps[{i}] ({step['id']}): {why}")
        return problems

    def _first_report(self) -> None:
        """The run's first report, as the first step starts or phone home begins."""
        if self.reporter is None:
            self.report()

    def _prepare_reporter(self) -> None:
        ph = self.cfg.phone_home
        if ph is None or not ph.get("report_url"):
            return
        token, identity, log = self._token(), self.identity, self.log

        def make() -> Any:
            from vmprep.agent.reportworker import bridge_logging

            bridge_logging(log)
            from vmprep.agent.reportsender import Reporter

            reporter = Reporter(
                ph,
                identity,
                role=str(ph["role"]),
                token=token,
                spool_dir=self.state_dir / "spool",
                agent_version=__version__,
                redact=self.vault.redact,
            )
            sent = reporter.flush_spool()
            if sent:
                log.info(f"sent {sent} spooled report(s)")
            return reporter

        self._make_reporter = make

    def _token(self) -> Secret | None:
        ph = self.cfg.phone_home or {}
        if "token" not in ph:
            return None
        from vmprep.agent.secrets import SecretError, ref_name

        try:
            return self.vault.get(ref_name(ph["token"]))
        except (SecretError, TypeError, KeyError) as exc:
            self.log.error(f"phone_home.token: {exc}; requests go without a token")
            return None

    def _ensure_startup_task(self) -> None:
        if self.state.get("startup_task"):
            return
        try:
            result = self.platform.install_startup_task(self.cfg.path.resolve(), replace=False)
        except (OSError, ValueError) as exc:
            self.log.error(f"cannot register the startup task: {exc}")
            return
        if result is not None and result.exit_code != 0:
            self.log.error(
                f"registering the startup task failed (exit {result.exit_code}): {result.output}"
            )
            return
        self.state["startup_task"] = True  # saved with the state that follows

    # -- phone home ---------------------------------------------------------------------------------
    def _phone_home(self) -> str:
        ph = self.cfg.phone_home
        if ph is None:
            self.log.info("no phone_home configured: baked-in steps only")
            return COMPLETED
        self._first_report()
        state = self.state
        accepted = state.get("accepted")
        outcome = self._fetch(ph)
        if outcome.kind in ("none", "not_modified"):
            self.log.info(f"phone home: {outcome.kind.replace('_', ' ')}; nothing new to apply")
            if outcome.kind == "none":
                state["document"] = None  # withdrawn: no remote steps for this instance
            return COMPLETED
        if outcome.kind != "document":
            return self._refused(
                outcome.error_code or "unreachable", outcome.message or outcome.kind
            )
        document = outcome.document
        assert document is not None
        steps = document["steps"]
        problems = self._preflight(steps, "document")
        if problems:
            return self._refused("invalid_document", "; ".join(problems))
        serial = int(document["serial"])
        if not accepted or serial != accepted["serial"]:
            self.log.info(f"phone home: accepted document serial {serial}")
        state["accepted"] = {"serial": serial, "sha256": outcome.sha256}
        state["document"] = {
            "serial": serial,
            "sha256": outcome.sha256,
            "step_ids": [s["id"] for s in steps],
        }
        self._load(document)
        self.save()
        self.report()
        assert self.engine is not None
        return self.engine.run(steps, "remote")

    def _fetch(self, ph: dict[str, Any]) -> Any:
        from vmprep.agent.reportworker import bridge_logging

        bridge_logging(self.log)
        from vmprep.agent.fetch import fetch_config

        accepted = self.state.get("accepted")
        # The secrets the baked steps take from the service (docs/protocol.md): asked for with
        # every fetch. A 304 would not carry them, so no Vmprep-Last-Serial goes with them.
        wanted = self.cfg.baked_secrets
        return fetch_config(
            ph,
            self.identity,
            role=str(ph["role"]),
            token=self._token(),
            last_completed_serial=None if wanted else self.state.get("completed_serial"),
            accepted=None if not accepted else (accepted["serial"], accepted["sha256"]),
            agent_version=__version__,
            secrets=wanted,
            attestation=self.cfg.attestation,
        )

    def _load(self, document: dict[str, Any]) -> None:
        """A document's secrets and variables, in memory only."""
        self.vault.add(document.get("secrets") or {})
        self.variables.update(document.get("variables") or {})

    def _restore(self) -> None:
        """A phone_home step done in an earlier boot is passed over: fetch the accepted
        document again for its variables and secrets, which the steps after it may need
        (neither is written to disk); its steps are done and do not run again."""
        ph = self.cfg.phone_home
        if ph is None or not self.state.get("document"):
            return
        outcome = self._fetch(ph)
        if outcome.kind != "document":
            self.log.warning(
                f"phone home: cannot fetch the document's variables and secrets again "
                f"({outcome.error_code or outcome.kind}: {outcome.message}); the steps "
                "that need them fail"
            )
            return
        self._load(outcome.document)
        self.log.info(f"phone home: variables and secrets of serial {outcome.document['serial']}")

    def _refused(self, code: str, message: str) -> str:
        ph = self.cfg.phone_home or {}
        state = self.state
        state["error"] = {"code": code, "message": self.vault.redact(message)}
        self.log.error(f"phone home: {code}: {message}; nothing of it is applied")
        self.save()
        self.report()
        document = state.get("document")
        if (
            code in ("unreachable", "unknown_role", "attestation_unavailable")
            and document
            and document["serial"] != state["completed_serial"]
        ):
            # An accepted document is half applied and its content is not kept (secrets):
            # do not call the instance done; the next start fetches it again.
            self.log.warning(
                f"document serial {document['serial']} is unfinished; the next start resumes it"
            )
            return INCOMPLETE
        return HALTED if ph.get("on_unreachable") == "halt" else COMPLETED

    def _before_reboot(self) -> None:
        """The reports of this run reach the service before the machine goes down."""
        if self.reporter is not None:
            self.report()
            self.reporter.drain(timeout=30)

    # -- the end --------------------------------------------------------------------------------
    def _finish(self, result: str, error: dict[str, str] | None) -> int:
        state = self.state
        if result in (REBOOT, INCOMPLETE):
            state["state"] = "running"
        elif result == HALTED:
            state["state"] = "halted"
        elif result == FAILED:
            state["state"] = "failed"
            if error is None and state.get("error") is None:
                error = self._step_error()
        elif result == REBOOT_FAILED:  # reboot_pending stays: the next start is a new boot
            state["state"] = "failed"
            why = getattr(self.engine, "reboot_error", None) or "the reboot command failed"
            error = {"code": "reboot_failed", "message": f"{why}; reboot the machine to go on"}
        else:
            self._delete_answer_files()
            state["state"] = "done"
            state["finished_at"] = utc_now()
            if state.get("accepted"):
                state["completed_serial"] = state["accepted"]["serial"]
        if error is not None:
            state["error"] = error
        self.save()
        self.report()
        if result != REBOOT or self.defer_reboots:  # a reboot under way: drained before it
            unsent = self._deliver_reports()
            if state["state"] == "done":
                self._settle_startup_task(unsent)
        self._log_end()
        return EXIT[state["state"]]

    def _log_end(self) -> None:
        """`run ended: <state>`, with the reason when there is one (also in `status`)."""
        state, err = self.state["state"], self.state.get("error")
        if not err:
            self.log.info(f"run ended: {state}")
            return
        level = "error" if state in ("failed", "halted") else "warning"
        self.log.write(level, f"run ended: {state} ({err['code']}): {err['message']}")

    # -- the last reports -----------------------------------------------------------------------
    def _deliver_reports(self) -> int:
        """Send the spool under the final budget before exiting; how many reports are unsent."""
        if self.reporter is None:
            return 0
        self.reporter.close(timeout=DELIVERY_WAIT, deliver=True)
        unsent = self.reporter.unsent
        if unsent is None:  # the worker is still at it: count what it has not sent yet
            unsent = len(list((self.state_dir / "spool").glob("*.json")))
        return int(unsent)

    def _settle_startup_task(self, unsent: int) -> None:
        """A done instance removes its startup task, unless reports are left to send: then
        the task stays, and its next start only sends them (`_flush_only`)."""
        if unsent:
            self.state["flush_pending"] = True
            self.log.warning(
                f"{unsent} report(s) could not be sent; the startup task stays registered and "
                "sends them at the next start"
            )
        else:
            self.state.pop("flush_pending", None)
            self._remove_startup_task()
        self.save()

    def _flush_only(self) -> int:
        """The start after a done run whose last reports were not delivered: send them (no
        step runs, nothing is fetched), then remove the startup task."""
        self.log.info("the instance is done; sending the reports the last run could not")
        self._prepare_reporter()
        if self._make_reporter is not None:
            from vmprep.agent.reportworker import BackgroundReporter

            self.reporter = BackgroundReporter(self._make_reporter, self.log.error)
        self._settle_startup_task(self._deliver_reports())
        return EXIT["done"]

    def _step_error(self) -> dict[str, str]:
        rec = None if self.engine is None else self.engine.last_failure
        if rec is None:
            return {"code": "step_failed", "message": "a step failed"}
        code = "interrupted" if rec["status"] == "interrupted" else "step_failed"
        return {"code": code, "message": f"step {rec['id']}: {rec.get('error')}"}

    def _remove_startup_task(self) -> None:
        if not self.state.get("startup_task"):
            return
        try:
            result = self.platform.remove_startup_task()
        except OSError as exc:
            self.log.error(f"cannot remove the startup task: {exc}")
        else:
            if result is None or result.exit_code == 0:
                self.state["startup_task"] = False
            else:
                self.log.error(f"removing the startup task failed (exit {result.exit_code})")

    def _delete_answer_files(self) -> None:
        if not self.cfg.keep_answer_files:
            delete_answer_files(self.cfg.answer_files, self.log)
