"""Preflight: every reason this machine cannot be sysprepped, found before anything changes.

Each check is a small function registered with a stable id (`--skip-check ID`) that returns
one `CheckResult`: pass / warn / fail, a one-line reason and a fix hint. The checks themselves
live in `vmprep.sysprep.checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmprep.errors import UsageError
from vmprep.spec.platforms import PLATFORMS, PlatformRules
from vmprep.sysprep.platform import Platform
from vmprep.sysprep.probes import ProbeError, facts_argv, parse_facts

if TYPE_CHECKING:
    from vmprep.spec.types import AgentSection, SysprepSection


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: Status
    reason: str
    hint: str | None = None
    details: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "reason": self.reason,
            "hint": self.hint,
            "details": list(self.details),
        }


def passed(id: str, reason: str) -> CheckResult:
    return CheckResult(id, Status.PASS, reason)


def warned(
    id: str, reason: str, hint: str | None = None, details: tuple[str, ...] = ()
) -> CheckResult:
    return CheckResult(id, Status.WARN, reason, hint, details)


def failed(id: str, reason: str, hint: str, details: tuple[str, ...] = ()) -> CheckResult:
    return CheckResult(id, Status.FAIL, reason, hint, details)


# Generalize installs the rendered answer file here and passes it to `sysprep /unattend:`;
# an old one in its place is backed up and replaced. Never in `Windows/Panther`: that is
# Setup's answer-file cache, which Sysprep itself fills from `/unattend:` (reference §7).
SYSPREP_ANSWER_FILE = "Windows/System32/Sysprep/unattend.xml"


@dataclass
class CheckContext:
    platform: Platform
    sysprep: SysprepSection  # the spec's `sysprep` section, defaults filled in
    agent: AgentSection  # the spec's `agent` section
    sysprep_exe: Path
    state_dir: Path  # where install keeps its record and backups
    replaced: frozenset[str] = frozenset({SYSPREP_ANSWER_FILE.casefold()})
    rules: PlatformRules = PLATFORMS["generic"]  # the spec's image.platform
    spec_dir: Path | None = None  # where the spec's relative local paths start (runtime zip)
    _facts: dict[str, Any] | ProbeError | None = field(default=None, repr=False)

    def facts(self) -> dict[str, Any]:
        """The PowerShell facts, queried once for every check that needs them."""
        if self._facts is None:
            try:
                self._facts = parse_facts(self.platform.run(facts_argv(), timeout=300))
            except ProbeError as exc:
                self._facts = exc
        if isinstance(self._facts, ProbeError):
            raise self._facts
        return self._facts

    def forget_facts(self) -> None:
        self._facts = None


CheckFunction = Callable[[CheckContext], CheckResult]
CHECKS: dict[str, CheckFunction] = {}
PLATFORM_ONLY: dict[str, str] = {}  # check id -> the platform it belongs to


def check(id: str, platform: str | None = None) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check; with `platform`, it runs only for specs with that image.platform."""

    def register(function: CheckFunction) -> CheckFunction:
        CHECKS[id] = function
        if platform is not None:
            PLATFORM_ONLY[id] = platform
        return function

    return register


def check_ids(rules: PlatformRules | None = None) -> list[str]:
    """Every check id, or (with `rules`) the ones that run for that platform, in order."""
    import vmprep.sysprep.checks
    import vmprep.sysprep.platform_checks  # noqa: F401  (both register their checks)

    if rules is None:
        return list(CHECKS)
    return [id for id in CHECKS if PLATFORM_ONLY.get(id, rules.name) == rules.name]


def run_check(id: str, ctx: CheckContext) -> CheckResult:
    try:
        return CHECKS[id](ctx)
    except ProbeError as exc:
        return warned(
            id,
            f"could not check: {exc}",
            "run vmprep elevated in Windows PowerShell 5.1 or later; see docs/sysprep.md",
        )


def run_preflight(ctx: CheckContext, skip: Collection[str] = ()) -> list[CheckResult]:
    ids = check_ids()
    unknown = sorted(set(skip) - set(ids))
    if unknown:
        raise UsageError(
            f"unknown check id(s) for --skip-check: {', '.join(unknown)}",
            hint=f"the checks are: {', '.join(ids)}",
        )
    results = []
    for id in check_ids(ctx.rules):
        if id in skip:
            results.append(
                CheckResult(id, Status.SKIP, "SKIPPED at your request (--skip-check); not verified")
            )
        else:
            results.append(run_check(id, ctx))
    return results


def any_failed(results: Collection[CheckResult]) -> bool:
    return any(r.status is Status.FAIL for r in results)
