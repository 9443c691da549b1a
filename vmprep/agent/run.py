"""`run`: lock → identify → baked steps → phone home → remote steps → report → clean up.

Exit codes: 0 done, 1 failed or halted, 2 still running (a reboot was requested),
3 another agent holds the lock, 4 agent.json or the state file unreadable, 70 internal bug.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from vmprep import __version__
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
from vmprep.agent.secrets import Secret, Vault
from vmprep.agent.state import AgentLock, LockTimeout, StateError, StateStore, new_state
from vmprep.agent.stepcheck import check_steps, step_kind
from vmprep.agent.steps import StepContext

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

EXIT = {"done": 0, "failed": 1, "halted": 1, "running": 2}
LOCK_BUSY, UNREADABLE, INTERNAL = 3, 4, 70


def run_agent(
    config_path: Path,
    state_dir: Path | None,
    *,
    lock_timeout: float = 60.0,
    defer_reboots: bool = False,
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
        self.platform: Platform = current_platform(state_dir, cfg.platform_options, cfg.os)
        self.reporter: Any = None
        self._make_reporter: Callable[[], Any] | None = None
        self.identity: Any = None
        self.state: dict[str, Any] = {}
        self.variables: dict[str, Any] = dict(cfg.variables)
        self.engine: Engine | None = None
        self.defer_reboots = False

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
            from vmprep.agent.reporting import BackgroundReporter

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
        self._ensure_startup_task()
        # No save here: the first step's "running" save (or the final one) writes all of this;
        # a kill before it loses nothing that the next start would not redo the same way.
        self.log.info(
            f"vmprep agent {__version__}: instance {identity.instance_id} ({identity.source}), "
            f"boot {state['boot']}"
        )
        self._prepare_reporter()
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
        )
        self.engine = engine
        result = engine.run(cfg.steps, "baked")
        explicit = any(isinstance(s, dict) and "phone_home" in s for s in cfg.steps)
        if result == COMPLETED and not explicit:
            result = self._phone_home()
        return self._finish(result, None)

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

    def _new_boot(self) -> None:
        state = self.state
        boot_id = self.platform.boot_id()
        same = boot_id is not None and self.platform.same_boot(state["boot_id"], boot_id)
        if state["reboot_pending"] is not None or not same:
            state["boot"] += 1
            state["boot_id"] = boot_id
            state["reboot_pending"] = None

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
            from vmprep.agent.reporting import bridge_logging

            bridge_logging(log)
            from vmprep.agent.report import Reporter

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
        from vmprep.agent.reporting import bridge_logging

        bridge_logging(self.log)
        from vmprep.agent.fetch import fetch_config

        state = self.state
        accepted = state.get("accepted")
        outcome = fetch_config(
            ph,
            self.identity,
            role=str(ph["role"]),
            token=self._token(),
            last_completed_serial=state.get("completed_serial"),
            accepted=None if not accepted else (accepted["serial"], accepted["sha256"]),
            agent_version=__version__,
        )
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
        self.vault.add(document.get("secrets") or {})
        self.variables.update(document.get("variables") or {})
        self.save()
        self.report()
        assert self.engine is not None
        return self.engine.run(steps, "remote")

    def _refused(self, code: str, message: str) -> str:
        ph = self.cfg.phone_home or {}
        state = self.state
        state["error"] = {"code": code, "message": self.vault.redact(message)}
        self.log.error(f"phone home: {code}: {message}; nothing of it is applied")
        self.save()
        self.report()
        document = state.get("document")
        if code == "unreachable" and document and document["serial"] != state["completed_serial"]:
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
            self._cleanup()
            state["state"] = "done"
            state["finished_at"] = utc_now()
            if state.get("accepted"):
                state["completed_serial"] = state["accepted"]["serial"]
        if error is not None:
            state["error"] = error
        self.save()
        self.report()
        self.log.info(
            f"run ended: {state['state']}"
            + (f" ({state['error']['code']})" if state.get("error") else "")
        )
        return EXIT[state["state"]]

    def _step_error(self) -> dict[str, str]:
        rec = None if self.engine is None else self.engine.last_failure
        if rec is None:
            return {"code": "step_failed", "message": "a step failed"}
        code = "interrupted" if rec["status"] == "interrupted" else "step_failed"
        return {"code": code, "message": f"step {rec['id']}: {rec.get('error')}"}

    def _cleanup(self) -> None:
        if self.state.get("startup_task"):
            try:
                result = self.platform.remove_startup_task()
            except OSError as exc:
                self.log.error(f"cannot remove the startup task: {exc}")
            else:
                if result is None or result.exit_code == 0:
                    self.state["startup_task"] = False
                else:
                    self.log.error(f"removing the startup task failed (exit {result.exit_code})")
        if self.cfg.keep_answer_files:
            return
        for path in self.cfg.answer_files:
            self._delete(path)

    def _delete(self, path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.log.error(f"cannot delete answer file {path}: {exc}")
            return
        self.log.info(f"deleted answer file {path}")
