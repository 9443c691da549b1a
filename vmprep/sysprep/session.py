"""The `vmprep sysprep` flow behind the thin click command: pick a mode, run it, exit code.

It prints nothing itself: it tells a `SysprepView` what happened (the preflight plan, log
lines, the live Sysprep wait, the outcome); the command passes one that shows it
(`vmprep.commands.reporters.sysprep.SysprepReporter`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from vmprep.errors import ExitCode, UsageError
from vmprep.sysprep.generalize import (
    Plan,
    PreflightRefused,
    Request,
    SysprepError,
    check,
    execute,
    prepare,
    restore_last,
)
from vmprep.sysprep.platform import default_platform
from vmprep.sysprep.run import Progress

Mode = Literal["check", "generalize", "restore"]


class SysprepView(Protocol):
    """What `run` reports, in this order: `restored` (--restore), or `appx_removed` (when
    --fix-appx ran), `preflight`, then, when it generalizes, `log` lines and `progress` during
    the wait, and `failed` or `generalized`."""

    def restored(self, files: list[str]) -> None: ...

    def appx_removed(self, argv: list[str]) -> None: ...

    def preflight(self, plan: Plan, *, mode: Mode, dry_run: bool) -> None: ...

    def log(self, message: str) -> None: ...

    @property
    def progress(self) -> Callable[[Progress], None] | None:
        """Hears every poll of the Sysprep wait (None: nobody watches, e.g. --quiet)."""
        ...

    def failed(self, error: SysprepError) -> None: ...

    def generalized(self, plan: Plan) -> None: ...


@dataclass(frozen=True)
class Options:
    mode: Mode | None
    spec_path: Path | None
    skip: Sequence[str] = ()
    fix_appx: bool = False
    dry_run: bool = False
    no_shutdown: bool = False
    root: Path | None = None
    sysprep_exe: Path | None = None
    timeout: float | None = None


def run(opts: Options, view: SysprepView) -> int:
    if opts.mode is None:
        raise UsageError("say what to do: --check, --generalize or --restore")
    platform = default_platform(opts.root)
    if opts.mode == "restore":
        view.restored(restore_last(platform))
        return ExitCode.OK
    if opts.spec_path is None:
        raise UsageError(f"--{opts.mode} needs a SPEC")
    from vmprep.spec import load_spec
    from vmprep.spec.platforms import platform_of
    from vmprep.sysprep.flows import default_tool

    spec = load_spec(opts.spec_path)
    req = Request(
        spec=spec,
        platform=platform,
        sysprep_exe=opts.sysprep_exe or default_tool(platform, platform_of(spec.data)),
        skip=frozenset(opts.skip),
        fix_appx=opts.fix_appx,
        dry_run=opts.dry_run,
        no_shutdown=opts.no_shutdown,
        timeout=opts.timeout,
    )
    plan = check(req) if opts.mode == "check" else prepare(req)
    if plan.appx_fix and not opts.dry_run:
        view.appx_removed(plan.appx_fix)
    view.preflight(plan, mode=opts.mode, dry_run=opts.dry_run)
    if plan.refused:
        raise PreflightRefused(plan)
    if opts.mode == "check" or opts.dry_run:
        return ExitCode.OK
    try:
        execute(req, plan, view.log, view.progress)
    except SysprepError as exc:
        view.failed(exc)
        raise
    view.generalized(plan)
    return ExitCode.OK
