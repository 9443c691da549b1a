"""`vmprep sysprep`: preflight -> render -> install (with backups) -> sysprep -> wait -> shut down.

`prepare` does everything that changes nothing (the checks, the overlay in memory, the
placements, the exact command) and is all `--dry-run` and `--check` do. `execute` changes the
machine, and on any failure puts every replaced file back and explains it from the Panther
logs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmprep.errors import ExitCode, PreflightError, VmprepError
from vmprep.protocol.durations import parse_duration as _parse_duration
from vmprep.spec.platforms import PlatformRules, platform_of
from vmprep.sysprep import install, panther, state
from vmprep.sysprep.checks import AZURE_SETUPCOMPLETE2, CHAINED_SETUPCOMPLETE, SETUPCOMPLETE
from vmprep.sysprep.flows import leftover_answer_files, plan_flow
from vmprep.sysprep.platform import Platform, windows_path
from vmprep.sysprep.preflight import (
    SYSPREP_ANSWER_FILE,
    CheckContext,
    CheckResult,
    Status,
    any_failed,
    run_check,
    run_preflight,
)
from vmprep.sysprep.probes import parse_appx, remove_appx_argv
from vmprep.sysprep.run import (
    Progress,
    RunResult,
    SysprepFailed,
    run_sysprep,
    shut_down,
    shutdown_argv,
    sysprep_argv,
    unattend_arg,
)

if TYPE_CHECKING:
    from vmprep.spec import Spec


@dataclass(frozen=True)
class Overlay:
    files: dict[str, bytes]  # overlay-relative POSIX path -> bytes
    targets: dict[str, str]  # the same keys -> Windows path


Renderer = Callable[["Spec", "str | None", "str | None"], Overlay]


def render_overlay(spec: Spec, python: str | None, chain: str | None) -> Overlay:
    from vmprep.render import render

    result = render(spec, python=python, chain_setupcomplete=chain)
    return Overlay(dict(result.files), dict(result.targets))


@dataclass
class Request:
    spec: Spec
    platform: Platform
    sysprep_exe: Path
    skip: Collection[str] = ()
    fix_appx: bool = False
    dry_run: bool = False
    no_shutdown: bool = False
    timeout: float | None = None  # seconds; default: the spec's sysprep.timeout
    poll_interval: float = 2.0
    settle: float = 120.0  # how long ImageState may lag behind sysprep's exit
    renderer: Renderer | None = None  # default: vmprep.render (looked up at call time)

    @property
    def state_dir(self) -> Path:
        return self.platform.root / install.STATE_DIR


@dataclass
class Plan:
    checks: list[CheckResult]
    appx_fix: list[str] | None = None  # the removal argv (run unless --dry-run)
    files: list[install.Placement] = field(default_factory=list)
    targets: dict[str, str] = field(default_factory=dict)  # overlay path -> Windows path
    overlay: dict[str, bytes] = field(default_factory=dict)
    remap: dict[str, str] = field(default_factory=dict)  # overlay path -> drive-relative path
    argv: list[str] = field(default_factory=list)
    expect: str = ""
    shutdown: list[str] | None = None
    not_planned: str | None = None  # dry run with failed checks: why files/command are unknown
    platform: str = "generic"
    remove: list[str] = field(default_factory=list)  # leftover answer files: backed up, deleted
    before: list[list[str]] = field(default_factory=list)  # commands run before sysprep
    undo: list[list[str]] = field(default_factory=list)  # commands run when sysprep fails

    @property
    def refused(self) -> bool:
        return any_failed(self.checks)


class PreflightRefused(PreflightError):
    def __init__(self, plan: Plan) -> None:
        failed = [r.id for r in plan.checks if r.status is Status.FAIL]
        super().__init__(
            f"preflight refused: {', '.join(failed)}; nothing was changed",
            hint="fix what the table says, or skip a check with --skip-check ID (at your risk)",
        )
        self.plan = plan


class SysprepError(SysprepFailed):
    """Sysprep failed; the backups are restored and `diagnosis` says why."""

    exit_code = ExitCode.EXTERNAL

    def __init__(self, failure: SysprepFailed, diagnosis: panther.Diagnosis, restored: list[str]):
        hint = failure.hint
        if diagnosis.causes:
            hint = "the cause and its fix are above; the full logs are in " + str(
                diagnosis.logs[0].parent
            )
        super().__init__(f"{failure}; every replaced file was restored", hint=hint)
        self.diagnosis = diagnosis
        self.restored = restored


def parse_duration(value: str | float) -> float:
    """`--timeout` and the spec's `sysprep.timeout`: the agent's duration rules (one parser)."""
    return _parse_duration(value.strip() if isinstance(value, str) else value)


def context(req: Request) -> CheckContext:
    rules = platform_of(req.spec.data)
    ctx = CheckContext(
        req.platform,
        req.spec.sysprep,
        req.spec.agent,
        req.sysprep_exe,
        req.state_dir,
        rules=rules,
        spec_dir=req.spec.path.parent,
    )
    if not rules.answer_file:  # leftovers are removed (backed up): they cannot win
        ctx.replaced = frozenset(rel.casefold() for rel in leftover_answer_files(ctx.platform.root))
    return ctx


def check(req: Request) -> Plan:
    """Preflight alone (`--check`), with `--fix-appx` applied unless dry-run."""
    ctx = context(req)
    plan = Plan(run_preflight(ctx, req.skip))
    _fix_appx(req, ctx, plan)
    return plan


def _fix_appx(req: Request, ctx: CheckContext, plan: Plan) -> None:
    index = next((i for i, r in enumerate(plan.checks) if r.id == "appx"), None)
    if not req.fix_appx or index is None or plan.checks[index].status is not Status.FAIL:
        return
    plan.appx_fix = remove_appx_argv(parse_appx(ctx.facts()))
    if req.dry_run:
        return
    result = req.platform.run(plan.appx_fix, timeout=600)
    ctx.forget_facts()
    after = run_check("appx", ctx)
    if after.status is Status.FAIL:
        message = (result.stderr or result.stdout).strip().splitlines()
        reason = f"{after.reason}; removing them failed ({result.returncode})"
        if result.returncode == 0:
            reason = f"{after.reason}; still there after Remove-AppxPackage"
        after = CheckResult(
            "appx",
            Status.FAIL,
            reason + (f": {message[-1]}" if message else ""),
            after.hint,
            after.details,
        )
    plan.checks[index] = after


def prepare(req: Request) -> Plan:
    """Everything that changes nothing: checks, overlay, placements, command."""
    plan = check(req)
    if not plan.refused:
        _plan_install(req, plan)
    elif req.dry_run:
        # A dry run still shows the files and the command, as far as they can be known.
        try:
            _plan_install(req, plan)
        except VmprepError as exc:
            plan.not_planned = str(exc)
    return plan


AZURE_CHAINED = "Windows/OEM/SetupComplete2.vmprep-chained.cmd"


def _chain(rules: PlatformRules) -> tuple[str, str] | None:
    """(the hook script a platform runs, where an existing one moves to be chained), if any."""
    if rules.hook == "setupcomplete":
        return SETUPCOMPLETE, CHAINED_SETUPCOMPLETE
    if rules.hook == "setupcomplete2":
        return AZURE_SETUPCOMPLETE2, AZURE_CHAINED
    return None  # EC2Launch's task and the startup task replace nothing


def _plan_install(req: Request, plan: Plan) -> None:
    root = req.platform.root
    rules = platform_of(req.spec.data)
    plan.platform = rules.name
    hook = _chain(rules)
    original = root / hook[0] if hook else None
    chained = hook[1] if hook and original is not None and original.is_file() else None
    chain = windows_path(req.platform, chained) if chained else None
    # The spec's runtime (an interpreter, or a bundled one) wins inside render; else the
    # Python running vmprep on the VM.
    runtime = req.spec.agent.get("runtime", {})
    python = None if {"python", "embedded"} & set(runtime) else req.platform.interpreter
    overlay = (req.renderer or render_overlay)(req.spec, python, chain)
    files = dict(overlay.files)
    targets = dict(overlay.targets)
    if chained is not None and chain is not None and original is not None:
        files[chained] = original.read_bytes()
        targets[chained] = chain
    sysprep: dict[str, Any] = req.spec.sysprep
    plan.expect = state.target_state(
        generalize=bool(sysprep.get("generalize", True)), oobe=bool(sysprep.get("oobe", True))
    )
    plan.shutdown = None if req.no_shutdown else shutdown_argv(str(sysprep.get("shutdown")))
    if not rules.answer_file:
        flow = plan_flow(req.platform, rules, req.sysprep_exe, sysprep, files)
        files.update(flow.files)
        plan.overlay = files
        plan.targets = {rel: targets.get(rel) or windows_path(req.platform, rel) for rel in files}
        plan.files = install.plan(files, root)
        plan.argv, plan.remove, plan.before, plan.undo = (
            flow.argv,
            flow.remove,
            flow.before,
            flow.undo,
        )
        return
    plan.overlay = files
    # The overlay's answer file is laid out for offline injection (Setup reads its Panther
    # cache); on a running VM it goes next to sysprep.exe, and Sysprep caches it itself.
    plan.remap = {_answer_file(files): SYSPREP_ANSWER_FILE}
    plan.targets = {rel: targets.get(rel) or windows_path(req.platform, rel) for rel in files}
    plan.targets.update({rel: windows_path(req.platform, t) for rel, t in plan.remap.items()})
    plan.files = install.plan(files, root, plan.remap)
    plan.argv = sysprep_argv(
        req.sysprep_exe,
        unattend_arg(req.platform, root / SYSPREP_ANSWER_FILE),
        req.spec.sysprep,
    )


def _answer_file(files: Collection[str]) -> str:
    names = sorted(rel for rel in files if rel.rsplit("/", 1)[-1].casefold() == "unattend.xml")
    preferred = [rel for rel in names if rel.casefold() == "windows/panther/unattend.xml"]
    if not (preferred or names):
        raise RuntimeError("the rendered overlay holds no unattend.xml")
    return (preferred or names)[0]


def execute(
    req: Request,
    plan: Plan,
    log: Callable[[str], None],
    progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Install, run sysprep, wait, shut down. Raises SysprepError after restoring on failure."""
    root = req.platform.root
    offsets = panther.log_sizes(root)
    record = install.install(plan.overlay, root, req.state_dir, plan.remap, plan.remove)
    log(f"installed {len(plan.files)} file(s); install record {record}")
    for rel in plan.remove:
        log(f"removed the leftover answer file {rel} (backed up until Sysprep succeeds)")
    timeout = (
        req.timeout
        if req.timeout is not None
        else parse_duration(req.spec.sysprep.get("timeout", "30m"))
    )
    try:
        for argv in plan.before:
            log(f"running {' '.join(argv)}")
            before = req.platform.run(argv, timeout=300)
            if before.returncode != 0:
                detail = (before.stderr or before.stdout).strip()
                raise SysprepFailed(f"{' '.join(argv)} failed ({before.returncode}): {detail}")
        log(f"running {' '.join(plan.argv)} (timeout {timeout:g}s)")
        result = run_sysprep(
            req.platform,
            plan.argv,
            expect=plan.expect,
            timeout=timeout,
            poll_interval=req.poll_interval,
            settle=req.settle,
            progress=progress,
            last_log_line=lambda: panther.last_line(root),
        )
    except SysprepFailed as failure:
        for argv in plan.undo:
            req.platform.run(argv, timeout=120)
        restored = install.restore(record)
        raise SysprepError(failure, panther.diagnose(root, offsets), restored) from None
    except BaseException:
        install.restore(record)
        raise
    install.finish(record)
    log(f"ImageState is {result.final_state} after {result.seconds:.1f}s")
    if plan.shutdown is not None:
        log(f"shutting down: {' '.join(plan.shutdown)}")
        shut_down(req.platform, str(req.spec.sysprep.get("shutdown")))
    return result


def restore_last(platform: Platform) -> list[str]:
    """`--restore`: undo an install that was never finished."""
    record = install.find_unfinished(platform.root / install.STATE_DIR)
    if record is None:
        raise PreflightError(
            "no unfinished vmprep install to restore",
            hint=f"the install record lives in {platform.root / install.STATE_DIR}",
        )
    return install.restore(record)
