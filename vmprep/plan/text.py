"""The plan for people (text) and the difference of two plans (`vmprep plan --diff`)."""

from __future__ import annotations

from typing import Any

_SAFE = {"\n", "\t"}


def _clean(text: str) -> str:
    """Control and format characters shown escaped: a script cannot forge terminal output."""
    import unicodedata

    return "".join(
        ch if ch in _SAFE or unicodedata.category(ch) not in ("Cc", "Cf") else f"\\u{ord(ch):04x}"
        for ch in text
    )


def render_text(plan: dict[str, Any], *, scripts: bool = True) -> str:
    inst = plan["instance"]
    role = inst["role"] or "-"
    if inst["role_decided_at_boot"]:
        role += " (decided at boot)"
    platform = plan["platform"] or {}
    lines = [
        (
            f"plan for {plan['spec']}: instance {inst['instance_id']}, role {role}, "
            f"platform {platform.get('name', 'generic')}"
            + (
                f", attestation {inst['attestation']}"
                if inst.get("attestation", "off") != "off"
                else ""
            )
        ),
        *(f"  first boot: {step}" for step in platform.get("flow", [])),
        f"result: {plan['result']} after {plan['restarts']['count']} restart(s)"
        + (f" ({plan['error']['code']}: {plan['error']['message']})" if plan["error"] else ""),
        "",
        "steps, in the order the agent runs them:",
    ]
    for n, step in enumerate(plan["steps"], 1):
        extras = [f"{step['source']} {step['kind']}"]
        if step["when"]:
            extras.append(f"when {step['when']}")
        if step["timeout"]:
            extras.append(f"timeout {step['timeout']}")
        if step["retries"]:
            extras.append(f"retries {step['retries']}")
        if step["may_restart"] != "no":
            timing = f", {step['restart_timing']}" if step["restart_timing"] else ""
            extras.append(f"may restart: {step['may_restart']}{timing}")
        if step["restarts"]:
            extras.append(f"restarts {step['restarts']} (budget {step['reboot_budget']})")
        lines.append(f"{n:>3}. {step['id']}: {step['decision']}  [{'; '.join(extras)}]")
        for cmd in step["commands"]:
            env = f"   (env: {', '.join(cmd['env'])})" if cmd["env"] else ""
            lines.append(f"       boot {cmd['boot']}: {_short(cmd['command_line'])}{env}")
            if scripts and cmd.get("script"):
                lines += [f"         | {line}" for line in cmd["script"].rstrip().splitlines()]
    lines.append("")
    lines.append(f"restarts: {plan['restarts']['count']}")
    lines += [
        f"  after boot {r['boot']}: {r['command_line']}" for r in plan["restarts"]["requests"]
    ]
    if plan["secrets"]:
        lines.append("secrets (names only):")
        lines += [
            f"  {s['name']}: from {s['from']}, kept in {s['stored_in']}" for s in plan["secrets"]
        ]
    for pass_name, settings in plan["answer_file"].items():
        lines.append(f"answer file, pass {pass_name}:")
        lines += [f"  {s['component']} {s['setting']} = {s['value']}" for s in settings]
    for title in ("problems", "notes"):
        if plan[title]:
            lines.append(f"{title}:")
            lines += [f"  - {p}" for p in plan[title]]
    return _clean("\n".join(lines)) + "\n"


def _short(command_line: str, limit: int = 160) -> str:
    """An -EncodedCommand blob is shown decoded below it, not in full."""
    if len(command_line) <= limit:
        return command_line
    return f"{command_line[:limit]}… ({len(command_line)} characters)"


def diff_plans(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed between two plans' JSON, one line each; empty when nothing did."""
    out: list[str] = []
    out += [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in ("result", "error")
        if old.get(key) != new.get(key)
    ]
    before, after = old["restarts"]["count"], new["restarts"]["count"]
    if before != after:
        out.append(f"restarts: {before} -> {after}")

    def by_key(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {f"{s['source']}:{s['id']}": s for s in plan["steps"]}

    olds, news = by_key(old), by_key(new)
    out += [f"- step {key}" for key in olds if key not in news]
    out += [f"+ step {key}: {news[key]['decision']}" for key in news if key not in olds]
    for key in sorted(olds.keys() & news.keys()):
        a, b = olds[key], news[key]
        for field in ("decision", "restarts", "timeout", "retries", "restart_timing"):
            if a.get(field) != b.get(field):
                out.append(f"~ step {key}: {field} {a.get(field)!r} -> {b.get(field)!r}")
        if [c["command_line"] for c in a["commands"]] != [c["command_line"] for c in b["commands"]]:
            out.append(f"~ step {key}: its command lines changed")
    if [k for k in olds if k in news] != [k for k in news if k in olds]:
        out.append("~ the steps run in another order")
    for key in ("problems", "secrets"):
        if old.get(key) != new.get(key):
            out.append(f"~ {key} changed")
    return [_clean(line) for line in out]
