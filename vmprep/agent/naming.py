"""Name before domain: a rename and a join wanted in the same run become one operation.

Renaming a domain member needs domain credentials (Microsoft: NetRenameMachineInDomain,
https://learn.microsoft.com/en-us/windows/win32/api/lmjoin/nf-lmjoin-netrenamemachineindomain),
and each of the two asks for its own restart. `Add-Computer -DomainName … -NewName …
-Options JoinWithNewName` joins under the new name in one call and one restart
(https://learn.microsoft.com/powershell/module/microsoft.powershell.management/add-computer).
So whichever of the two steps the engine reaches first, wherever the other one comes from
(baked, or the remote document run at the phone_home step's position), it looks ahead for
its partner and, when everything the call needs is known at that point (the name's
placeholders, the join's credentials), runs the pair as one `Add-Computer … -NewName` call and
records both steps done. A rename already done in this boot (its restart still due) is joined
with the same option, which Microsoft documents for exactly that case.
"""

from __future__ import annotations

from vmprep.agent.secrets import SecretError
from vmprep.agent.stepcheck import step_kind
from vmprep.agent.steps import StepContext, StepError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from collections.abc import Callable, Iterable
    from typing import Any

PAIR = {"rename_computer": "join_domain", "join_domain": "rename_computer"}


class Merge:
    """The combined call: the join's body, the new name, and the partner step."""

    __slots__ = ("join", "name", "partner", "partner_source")

    def __init__(
        self,
        join: dict[str, Any],
        name: str | None,
        partner: dict[str, Any] | None,
        partner_source: str | None,
    ) -> None:
        self.join = join
        self.name = name
        self.partner = partner
        self.partner_source = partner_source


def new_name(body: dict[str, Any], ctx: StepContext) -> str | None:
    """The rename's name filled in now, or None when a placeholder is not known yet."""
    try:
        name = ctx.fill(str(body["name"]))
    except StepError:
        return None
    return name if 0 < len(name) <= 15 else None


def credentials_known(body: dict[str, Any], ctx: StepContext) -> bool:
    creds = body["credentials"]
    try:
        if creds == "remote":
            ctx.vault.get("join_user")
            ctx.vault.get("join_password")
        else:
            ctx.vault.resolve(creds["user"])
            ctx.vault.resolve(creds["password"])
    except SecretError:
        return False
    return True


def plan(
    step: dict[str, Any],
    ctx: StepContext,
    upcoming: Iterable[tuple[dict[str, Any], str, dict[str, Any] | None]],
    pending_name: str | None,
    holds: Callable[[Any], bool],
) -> Merge | None:
    """The merged call for `step` (a rename or a join), or None to run it alone.

    `upcoming`: the steps after this one in run order, with their source and state record."""
    kind = step_kind(step)
    partner_kind = PAIR[kind]
    for other, source, rec in upcoming:
        if step_kind(other) != partner_kind or (rec is not None and rec["status"] == "done"):
            continue
        if not holds(other.get("when")):
            continue
        if kind == "join_domain":
            name = new_name(other[partner_kind], ctx)
            if name is not None:
                return Merge(step[kind], name, other, source)
        elif credentials_known(other[partner_kind], ctx):
            name = new_name(step[kind], ctx)
            if name is not None:
                return Merge(other[partner_kind], name, other, source)
        break  # only the first partner in run order is a candidate
    if kind == "join_domain" and pending_name:
        return Merge(step[kind], pending_name, None, None)
    return None
