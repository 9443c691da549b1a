"""How `vmprep sysprep` shows checks, plans and failures: rich text, or one JSON document."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING, Any

from vmprep.sysprep.preflight import CheckResult, Status

if TYPE_CHECKING:
    from rich.console import Console

    from vmprep.sysprep.generalize import Plan
    from vmprep.sysprep.panther import Diagnosis

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


def failure_json(exc: Any) -> dict[str, Any]:
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
