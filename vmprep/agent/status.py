"""`status`: progress and health from the state file, with stable exit codes.

0 done, 1 failed (or halted), 2 running, 3 not started, 4 state unreadable.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from vmprep.agent.state import StateError, StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

DONE, FAILED, RUNNING, NOT_STARTED, UNREADABLE = 0, 1, 2, 3, 4
WAIT_UNREADABLE_POLLS = 2
_CODES = {"done": DONE, "failed": FAILED, "halted": FAILED, "running": RUNNING}
REPORT_FIELDS = (
    "id",
    "source",
    "status",
    "attempts",
    "reboots",
    "exit_code",
    "started_at",
    "finished_at",
    "output_tail",
)


def report_steps(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps of the baked list and the current document, in order, as reports show them."""
    rows = []
    document = state.get("document") or {}
    for source, ids in (
        ("baked", state.get("baked_ids") or []),
        ("remote", document.get("step_ids") or []),
    ):
        for step_id in ids:
            rec = state["steps"].get(f"{source}:{step_id}")
            if rec is None:
                rows.append(
                    {
                        "id": step_id,
                        "source": source,
                        "status": "pending",
                        "attempts": 0,
                        "reboots": 0,
                    }
                )
            else:
                rows.append({k: rec.get(k) for k in REPORT_FIELDS})
    return rows


def read_status(state_dir: Path) -> tuple[int, dict[str, Any] | None, str | None]:
    """(exit code, state, problem)."""
    store = StateStore(state_dir)
    try:
        instance_id = store.current()
        if instance_id is None:
            return NOT_STARTED, None, None
        state = store.load(instance_id)
    except StateError as exc:
        return UNREADABLE, None, str(exc)
    if state is None:
        return NOT_STARTED, None, None
    code = _CODES.get(str(state.get("state")))
    if code is None:
        return UNREADABLE, state, f"unknown state {state.get('state')!r}"
    return code, state, None


def render_text(code: int, state: dict[str, Any] | None, problem: str | None) -> str:
    if problem is not None:
        return f"state unreadable: {problem}"
    if state is None:
        return "not started: no state for this machine yet"
    lines = [
        f"instance {state['instance_id']}: {state['state']} (boot {state['boot']}, updated {state.get('updated_at')})"
    ]
    if state["state"] == "running":
        lines.append(
            "an agent is running now"
            if state.get("agent_running")
            else "no agent running now (waiting for a reboot or the next start)"
        )
    for key, got in sorted((state.get("inputs") or {}).items()):
        lines.append(f"input {key} = {got['value']!r} (from {got['source']})")
    document = state.get("document")
    if document:
        lines.append(f"config serial {document['serial']}")
    if state.get("error"):
        lines.append(f"error: {state['error']['code']}: {state['error']['message']}")
    for row in report_steps(state):
        extra = f" exit {row['exit_code']}" if row.get("exit_code") is not None else ""
        lines.append(f"  {row['source']:6} {row['id']:24} {row['status']}{extra}")
    return "\n".join(lines)


def render_json(code: int, state: dict[str, Any] | None, problem: str | None) -> str:
    body: dict[str, Any] = {"exit_code": code, "problem": problem}
    if state is not None:
        body.update(
            agent_running=state.get("agent_running"),
            instance_id=state.get("instance_id"),
            state=state.get("state"),
            boot=state.get("boot"),
            updated_at=state.get("updated_at"),
            finished_at=state.get("finished_at"),
            config_serial=(state.get("document") or {}).get("serial"),
            error=state.get("error"),
            inputs=state.get("inputs") or {},
            steps=report_steps(state),
        )
    else:
        body["state"] = "unreadable" if problem else "not_started"
    return json.dumps(body, indent=2, sort_keys=True)


def status(
    state_dir: Path,
    *,
    wait: bool = False,
    timeout: float | None = None,
    fmt: str = "text",
    poll: float = 0.5,
) -> tuple[int, str]:
    deadline = None if timeout is None else time.monotonic() + timeout
    unreadable = 0
    while True:
        code, state, problem = read_status(state_dir)
        # A waiting reader gives a failed read two more polls: on Windows a read can meet the
        # writer's rename (read_shared retries that already); only a lasting fault is reported.
        unreadable = unreadable + 1 if code == UNREADABLE else 0
        if wait and 0 < unreadable <= WAIT_UNREADABLE_POLLS:
            time.sleep(poll)
            continue
        if not wait or code not in (RUNNING, NOT_STARTED):
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        time.sleep(poll)
    if state is not None:
        from vmprep.agent.state import AgentLock

        state["agent_running"] = AgentLock(state_dir).held_elsewhere()
    render = render_json if fmt == "json" else render_text
    return code, render(code, state, problem)
