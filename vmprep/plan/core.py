"""What the `plan` command calls: build, format, compare."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from vmprep.errors import InputError


def plan_output(
    spec_path: Path,
    config_repo: Path | None,
    role: str | None,
    instance: str | None,
    platform: str | None,
    facts_path: Path | None,
    python: str | None,
    fmt: str,
) -> str:
    from vmprep.plan.build import build_plan, load_facts
    from vmprep.plan.text import render_text

    facts = load_facts(facts_path)
    if instance is not None:
        facts = replace(facts, instance_id=instance)
    plan = build_plan(
        spec_path,
        facts=facts,
        config_repo=config_repo,
        role=role,
        python=python,
        platform=platform,
    )
    if fmt == "json":
        return json.dumps(plan, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return render_text(plan)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a plan: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != 1 or "steps" not in data:
        raise InputError(
            f"{path}: not a plan (format 1)", hint="make one with vmprep plan SPEC --format json"
        )
    return data


def diff_files(old: Path, new: Path) -> list[str]:
    from vmprep.plan.text import diff_plans

    return diff_plans(_read(old), _read(new))
