"""Name before domain, checked statically (the agent's side is vmprep/agent/naming.py).

The agent renames and joins in one `Add-Computer -NewName` call when it reaches the join and
can fill in the rename's name there. A rename that comes after a join and whose name needs a
variable not known at the join's position cannot be merged: the machine joins under its old
name, and renaming a domain member needs domain credentials, which `rename_computer` does
not pass (NetRenameMachineInDomain,
https://learn.microsoft.com/en-us/windows/win32/api/lmjoin/nf-lmjoin-netrenamemachineindomain).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from vmprep.problems import Severity
from vmprep.spec.checks import Doc, Finding, check
from vmprep.spec.load import JsonPath
from vmprep.spec.rules_agent import _BUILT_IN_NAMES, _STEP_PLACEHOLDER

# A step in run order: its path (None for a role's step, in another file), the step, and
# whether the config document (its variables) has been fetched by then.
Ordered = tuple[JsonPath | None, dict[str, Any], bool]


def run_order(
    baked: list[tuple[JsonPath, dict[str, Any]]],
    phone_home: bool,
    remote: list[dict[str, Any]] | None = None,
) -> list[Ordered]:
    """Baked steps with the remote ones at the phone_home step's position (or at the end)."""
    order: list[Ordered] = []
    fetched = False
    for path, step in baked:
        order.append((path, step, fetched))
        if "phone_home" in step:
            fetched = True
            order += [(None, s, True) for s in remote or []]
    if phone_home and not any("phone_home" in s for _, s in baked):
        order += [(None, s, True) for s in remote or []]
    return order


def unmergeable_renames(
    order: list[Ordered], baked_vars: set[str], service_vars: set[str] | None
) -> Iterator[tuple[JsonPath | None, dict[str, Any], str, dict[str, Any]]]:
    """(path, rename step, unknown names, join step) for each rename after a join whose name
    the agent cannot fill in at the join. `service_vars` None: the document's variables are
    not known here (no config repository), so they are assumed to be there once fetched."""
    join: tuple[dict[str, Any], bool] | None = None
    for path, step, fetched in order:
        if "join_domain" in step and join is None:
            join = (step, fetched)
        if "rename_computer" not in step or join is None:
            continue
        known = baked_vars | _BUILT_IN_NAMES
        if join[1]:
            if service_vars is None:
                continue
            known |= service_vars
        unknown = sorted(set(re.findall(_STEP_PLACEHOLDER, step["rename_computer"]["name"])))
        missing = [n for n in unknown if n not in known]
        if missing:
            yield path, step, ", ".join(f"{{{n}}}" for n in missing), join[0]


def message(step: dict[str, Any], missing: str, join: dict[str, Any]) -> Finding:
    msg = (
        f"rename {step['id']!r} comes after join {join['id']!r}, and its name needs {missing}, "
        "not known when the join runs: the machine joins under its old name, and renaming a "
        "domain member needs domain credentials that rename_computer does not pass"
    )
    hint = "put the rename before the join, or a `phone_home: {}` step before the join"
    return Finding((), msg, Severity.WARNING, hint=hint)


@check("rename-after-join")
def rename_after_join(doc: Doc) -> Iterator[Finding]:
    order = run_order(doc.steps(), bool(doc.phone_home))
    baked_vars = set(doc.data["agent"]["variables"])
    for path, step, missing, join in unmergeable_renames(order, baked_vars, None):
        assert path is not None
        finding = message(step, missing, join)
        yield finding._replace(path=(*path, "rename_computer", "name"))
