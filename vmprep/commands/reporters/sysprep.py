"""How `vmprep sysprep` shows checks, plans, progress and failures: rich text, or one JSON
document. `SysprepReporter` is what the command hands to `vmprep.sysprep.session.run`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from vmprep.sysprep.preflight import CheckResult, Status

if TYPE_CHECKING:
    from rich.console import Console

    from vmprep.commands.reporters import Output
    from vmprep.sysprep.generalize import Plan, SysprepError
    from vmprep.sysprep.panther import Diagnosis
    from vmprep.sysprep.run import Progress
    from vmprep.sysprep.session import Mode

_STYLE = {
    Status.PASS: "green",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.SKIP: "magenta",
}


def command_line(argv: list[str]) -> str:
    """argv as Windows would parse it back (what to paste into a prompt)."""
    return subprocess.list2cmdline(argv)


def plan_json(plan: Plan, *, dry_run: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ok": not plan.refused,
        "checks": [r.to_json() for r in plan.checks],
        "appx_fix": plan.appx_fix,
    }
    if dry_run:
        doc["not_planned"] = plan.not_planned
        doc["files"] = [
            {
                "path": p.rel,
                "target": plan.targets.get(p.rel),
                "bytes": len(plan.overlay[p.rel]),
                "replaces": p.replaces,
            }
            for p in plan.files
        ]
        doc["platform"] = plan.platform
        doc["remove"] = list(plan.remove)
        doc["before"] = [list(argv) for argv in plan.before]
        doc["command"] = plan.argv or None
        doc["expect"] = plan.expect or None
        doc["shutdown"] = plan.shutdown
    return doc


def show_checks(results: list[CheckResult], out: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="vmprep sysprep preflight", title_justify="left")
    for column in ("check", "result", "reason", "hint"):
        table.add_column(column, overflow="fold")
    for r in results:
        reason = escape(r.reason) + "".join(f"\n  - {escape(d)}" for d in r.details)
        style = _STYLE[r.status]
        table.add_row(r.id, f"[{style}]{r.status.value}[/]", reason, escape(r.hint or ""))
    out.print(table)


def warn_skipped(results: list[CheckResult], err: Console) -> None:
    for r in results:
        if r.status is Status.SKIP:
            err.print(
                f"[bold magenta]WARNING: preflight check '{r.id}' was SKIPPED (--skip-check "
                f"{r.id}); vmprep did not verify it.[/]"
            )


def show_plan(plan: Plan, out: Console, *, with_files: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    if plan.appx_fix:
        out.print("would remove the AppX packages with:")
        out.print(f"  {escape(command_line(plan.appx_fix))}", soft_wrap=True)
    if not with_files:
        return
    if plan.not_planned:
        out.print(f"files and command unknown: {escape(plan.not_planned)}")
        return
    table = Table(title="files (dry run: nothing written)", title_justify="left")
    for column in ("overlay path", "installed as", "bytes", "existing file"):
        table.add_column(column, overflow="fold")
    for p in plan.files:
        existing = "backed up, replaced" if p.replaces else "-"
        target = escape(plan.targets.get(p.rel) or "")
        table.add_row(escape(p.rel), target, str(len(plan.overlay[p.rel])), existing)
    out.print(table)
    out.print(f"platform: {escape(plan.platform)}")
    for rel in plan.remove:
        out.print(f"remove (backed up): {escape(rel)}")
    for argv in plan.before:
        out.print(f"first: {escape(command_line(argv))}", soft_wrap=True)
    out.print("command:")
    out.print(f"  {escape(command_line(plan.argv))}", soft_wrap=True)
    out.print(f"then wait for ImageState = {plan.expect}")
    if plan.shutdown:
        out.print(f"then: {escape(command_line(plan.shutdown))}")
    else:
        out.print("then leave the machine running (--no-shutdown or sysprep.shutdown: quit)")


def show_diagnosis(diagnosis: Diagnosis, restored: list[str], err: Console) -> None:
    from rich.markup import escape

    if restored:
        err.print(f"restored {len(restored)} file(s) vmprep had replaced or added")
    if not diagnosis.logs:
        err.print("no Panther log found (sysprep wrote nothing)")
        return
    err.print("from " + ", ".join(escape(str(p)) for p in diagnosis.logs) + ":")
    for line in diagnosis.lines:
        err.print(f"  {escape(line.file)}: {escape(str(line))}", soft_wrap=True)
    for cause in diagnosis.causes:
        err.print(f"[bold]cause:[/] {escape(cause.summary)}")
        err.print(f"  fix: {escape(cause.hint)}")


def failure_json(exc: SysprepError) -> dict[str, Any]:
    """The `outcome` of `sysprep --generalize --format json` when Sysprep failed (exit 4)."""
    diagnosis = exc.diagnosis
    return {
        "state": "failed",
        "error": str(exc),
        "hint": exc.hint,
        "restored": list(exc.restored),
        "causes": [
            {"id": c.id, "summary": c.summary, "hint": c.hint, "evidence": list(c.evidence)}
            for c in diagnosis.causes
        ],
        "log_lines": [
            {"file": ln.file, "line": ln.number, "level": ln.level, "message": ln.message}
            for ln in diagnosis.lines
        ],
        "logs": [str(path) for path in diagnosis.logs],
    }


def dump_json(doc: dict[str, Any], out: Console) -> None:
    out.file.write(json.dumps(doc, indent=2) + "\n")


class ProgressLines:
    """Shows a Sysprep wait (up to 30 minutes): on a terminal one status line rewritten at
    every poll; otherwise (Packer, WinRM, CI logs) one line a minute."""

    def __init__(self, err: Console, every: float = 60.0) -> None:
        self.err = err
        self.tty = err.is_terminal
        self.every = 0.0 if self.tty else every
        self.next_at = 0.0 if self.tty else every
        self.shown = False

    def __call__(self, progress: Progress) -> None:
        if progress.seconds < self.next_at:
            return
        self.next_at = progress.seconds + self.every
        minutes, seconds = divmod(int(progress.seconds), 60)
        what = "sysprep running" if progress.running else "sysprep exited, waiting for ImageState"
        text = f"{what}: {minutes}m{seconds:02d}s, ImageState {progress.image_state or '?'}"
        if progress.last_log_line:
            line = "".join(c if c.isprintable() else "?" for c in progress.last_log_line)
            text += f"; setupact.log: {line[:160]}"
        if self.tty:
            width = max(20, self.err.width - 1)
            self.err.file.write("\r" + text[:width].ljust(width))
            self.err.file.flush()
            self.shown = True
        else:
            self.err.print(text, markup=False, highlight=False)

    def close(self) -> None:
        if self.shown:
            self.err.file.write("\n")
            self.err.file.flush()


class SysprepReporter:
    """Shows what `vmprep.sysprep.session.run` reports (its `SysprepView`): the preflight as
    a table or JSON on stdout, messages and the live Sysprep wait on stderr."""

    def __init__(self, output: Output, fmt: Literal["text", "json"]) -> None:
        self.output = output
        self.fmt = fmt
        self.quiet = output.verbosity < 0
        self._doc: dict[str, Any] = {}
        self._lines: ProgressLines | None = None

    def restored(self, files: list[str]) -> None:
        self.output.err.print(f"restored {len(files)} file(s); the install record says 'restored'")

    def appx_removed(self, argv: list[str]) -> None:
        self.output.err.print(f"ran: {command_line(argv)}", markup=False)

    def preflight(self, plan: Plan, *, mode: Mode, dry_run: bool) -> None:
        out, err = self.output.out, self.output.err
        showing_plan = dry_run and mode == "generalize"
        warn_skipped(plan.checks, err)
        self._doc = plan_json(plan, dry_run=showing_plan)
        generalizing = mode != "check" and not dry_run and not plan.refused
        if self.fmt == "json" and not generalizing:
            dump_json(self._doc, out)
        elif self.fmt == "text":
            show_checks(plan.checks, out)
            if showing_plan or (plan.appx_fix and dry_run):
                show_plan(plan, out, with_files=showing_plan)

    def log(self, message: str) -> None:
        if not self.quiet:
            self.output.err.print(message, markup=False)

    @property
    def progress(self) -> Callable[[Progress], None] | None:
        if self._lines is None:
            self._lines = ProgressLines(self.output.err)
        return None if self.quiet else self._lines

    def _close(self) -> None:
        if self._lines is not None:
            self._lines.close()

    def failed(self, error: SysprepError) -> None:
        self._close()
        show_diagnosis(error.diagnosis, error.restored, self.output.err)
        if self.fmt == "json":  # the final outcome, not only the preflight
            dump_json({**self._doc, "outcome": failure_json(error)}, self.output.out)

    def generalized(self, plan: Plan) -> None:
        self._close()
        if self.fmt == "json":
            outcome = {"state": "generalized", "shutdown": plan.shutdown}
            dump_json({**self._doc, "outcome": outcome}, self.output.out)
        self.output.err.print(
            "done: the image is generalized" + ("" if plan.shutdown else "; still running")
        )
