"""Windows system steps through the platform: registry, features, services, env, name,
domain, local users. The credential values come from the vault and go to the platform, which
keeps them out of every argv."""

from __future__ import annotations

from vmprep.agent.steps import Outcome, StepContext, StepError, from_process
from vmprep.protocol.names import computer_name_problem

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any


def run_registry(body: dict[str, Any], ctx: StepContext) -> Outcome:
    value = ctx.vault.resolve(body.get("value", ""))
    try:
        message = ctx.platform.registry(body, value)
    except (TypeError, ValueError) as exc:
        raise StepError(f"registry value: {exc}") from None
    return Outcome(True, 0, message)


def run_windows_feature(body: dict[str, Any], ctx: StepContext) -> Outcome:
    return from_process(ctx.platform.windows_feature(body, timeout=ctx.timeout), ctx)


def run_service(body: dict[str, Any], ctx: StepContext) -> Outcome:
    return from_process(ctx.platform.service(body, timeout=ctx.timeout), ctx)


def run_env(body: dict[str, Any], ctx: StepContext) -> Outcome:
    from vmprep.agent.envvars import references_itself

    name = str(body["name"])
    value = None if body.get("state") == "absent" else str(ctx.vault.resolve(body.get("value", "")))
    mode = str(body.get("mode", "set"))
    if value is not None and references_itself(name, value):
        # Stored as written, `%Path%` never expands to the old value: Path would lose it all.
        raise StepError(
            f"env {name}: the value refers to %{name}% itself, which is never expanded; "
            "use mode: append, prepend or remove with just the entries (env-self-reference)"
        )
    if value is None and mode != "set":
        raise StepError(f"env {name}: mode {mode} needs state: present")
    message = ctx.platform.set_env(name, value, body.get("scope", "machine"), mode)
    return Outcome(True, 0, message)


def run_rename_computer(body: dict[str, Any], ctx: StepContext) -> Outcome:
    name = ctx.fill(str(body["name"]))
    problem = computer_name_problem(name)  # validate checked what it could resolve; this is all
    if problem is not None or name == "*":
        raise StepError(f"computer name {name!r} {problem or 'is not a name'}")
    return from_process(ctx.platform.rename_computer(name, timeout=ctx.timeout), ctx)


def run_join_domain(body: dict[str, Any], ctx: StepContext, new_name: str | None = None) -> Outcome:
    """Join; with `new_name` (vmprep.agent.naming), rename in the same call."""
    creds = body["credentials"]
    if creds == "remote":
        user = ctx.vault.get("join_user").reveal()
        password = ctx.vault.get("join_password").reveal()
    else:
        user = str(ctx.vault.resolve(creds["user"]))
        password = str(ctx.vault.resolve(creds["password"]))
    result = ctx.platform.join_domain(
        str(body["domain"]), body.get("ou"), user, password, timeout=ctx.timeout, new_name=new_name
    )
    return from_process(result, ctx)


def run_local_user(body: dict[str, Any], ctx: StepContext) -> Outcome:
    password = None
    if "password" in body and body.get("state", "present") == "present":
        password = str(ctx.vault.resolve(body["password"]))
    return from_process(ctx.platform.local_user(body, password, timeout=ctx.timeout), ctx)
