"""The `vmprep sysprep` flow behind the thin click command: pick a mode, report, exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vmprep.errors import ExitCode, UsageError
from vmprep.sysprep import report
from vmprep.sysprep.generalize import (
    PreflightRefused,
    Request,
    SysprepError,
    check,
    execute,
    prepare,
    restore_last,
)
from vmprep.sysprep.platform import default_platform

if TYPE_CHECKING:
    from vmprep.cli import Output

Mode = Literal["check", "generalize", "restore"]


@dataclass(frozen=True)
class Options:
    mode: Mode | None
    spec_path: Path | None
    fmt: Literal["text", "json"] = "text"
    skip: Sequence[str] = ()
    fix_appx: bool = False
    dry_run: bool = False
    no_shutdown: bool = False
    root: Path | None = None
    sysprep_exe: Path | None = None
    timeout: float | None = None


def run(opts: Options, output: Output) -> int:
    if opts.mode is None:
        raise UsageError("say what to do: --check, --generalize or --restore")
    platform = default_platform(opts.root)
    if opts.mode == "restore":
        undone = restore_last(platform)
        output.err.print(f"restored {len(undone)} file(s); the install record says 'restored'")
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
        output.err.print(f"ran: {report.command_line(plan.appx_fix)}", markup=False)
    showing_plan = opts.dry_run and opts.mode == "generalize"
    report.warn_skipped(plan.checks, output.err)
    doc = report.plan_json(plan, dry_run=showing_plan)
    generalizing = opts.mode != "check" and not opts.dry_run and not plan.refused
    if opts.fmt == "json" and not generalizing:
        report.dump_json(doc, output.out)
    elif opts.fmt == "text":
        report.show_checks(plan.checks, output.out)
        if showing_plan or (plan.appx_fix and opts.dry_run):
            report.show_plan(plan, output.out, with_files=showing_plan)
    if plan.refused:
        raise PreflightRefused(plan)
    if opts.mode == "check" or opts.dry_run:
        return ExitCode.OK
    try:
        execute(req, plan, lambda message: output.err.print(message, markup=False))
    except SysprepError as exc:
        report.show_diagnosis(exc.diagnosis, exc.restored, output.err)
        if opts.fmt == "json":  # the final outcome, not only the preflight
            report.dump_json({**doc, "outcome": report.failure_json(exc)}, output.out)
        raise
    if opts.fmt == "json":
        outcome = {"state": "generalized", "shutdown": plan.shutdown}
        report.dump_json({**doc, "outcome": outcome}, output.out)
    output.err.print(
        "done: the image is generalized" + ("" if plan.shutdown else "; still running")
    )
    return ExitCode.OK
