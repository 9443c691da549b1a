"""The engine against a small model: generated step lists whose scripts exit with scripted
codes (0, failures, 3010/3011 as 194/195 on POSIX), run with reboots until the agent stops
asking for one; what ran, how often, and how each step ended must match the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.agent.core.conftest import make_agent

CONTINUE, RERUN = 194, 195

step_specs = st.lists(
    st.fixed_dictionaries(
        {
            "codes": st.lists(st.sampled_from([0, 0, 1, CONTINUE, RERUN]), min_size=1, max_size=4),
            "retries": st.integers(0, 2),
            "continue_on_error": st.booleans(),
            "reboot_budget": st.integers(0, 2),
        }
    ),
    min_size=1,
    max_size=4,
)


def model(specs: list[dict[str, Any]]) -> tuple[list[str], list[int], int]:
    """(final status per step, executions per step, final exit code)."""
    calls = [0] * len(specs)
    status = ["pending"] * len(specs)
    reboots = [0] * len(specs)
    for _ in range(50):  # runs (boots)
        exit_code = 0
        for i, spec in enumerate(specs):
            if status[i] == "done":
                continue
            outcome = "failed"
            for _attempt in range(spec["retries"] + 1):
                code = spec["codes"][min(calls[i], len(spec["codes"]) - 1)]
                calls[i] += 1
                if code == 0:
                    outcome = "done"
                    break
                if code in (CONTINUE, RERUN):
                    outcome = "budget" if reboots[i] >= spec["reboot_budget"] else "reboot"
                    break
            if outcome == "done":
                status[i] = "done"
                continue
            if outcome == "reboot":
                reboots[i] += 1
                status[i] = (
                    "done"
                    if spec["codes"][min(calls[i], len(spec["codes"])) - 1] == CONTINUE
                    else "pending"
                )
                exit_code = 2
                break
            status[i] = "failed"
            if not spec["continue_on_error"]:
                exit_code = 1
                break
        if exit_code != 2:
            return status, calls, exit_code
    raise AssertionError("the model did not settle")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(specs=step_specs)
@pytest.mark.slow
def test_engine_matches_the_model(tmp_path_factory, specs: list[dict[str, Any]]) -> None:
    root: Path = tmp_path_factory.mktemp("model")
    steps = []
    for i, spec in enumerate(specs):
        counter = root / f"calls-{i}"
        codes = " ".join(str(c) for c in spec["codes"])
        script = (  # exit with the n-th scripted code (the last one once they run out)
            f'n=$(cat "{counter}" 2>/dev/null || echo 0); echo $((n+1)) > "{counter}"; '
            f"set -- {codes}; shift $(( n < $# ? n : $# - 1 )); exit $1"
        )
        steps.append(
            {
                "id": f"s{i}",
                "cmd": script,
                "retries": spec["retries"],
                "retry_delay": 0,
                "continue_on_error": spec["continue_on_error"],
                "reboot_budget": spec["reboot_budget"],
            }
        )
    a = make_agent(root, steps)
    expected = model(specs)
    for _ in range(50):
        code = a.run()
        if code != 2:
            break
        a.new_boot()
    state = a.state()
    n = range(len(specs))
    statuses = [state["steps"].get(f"baked:s{i}", {"status": "pending"})["status"] for i in n]
    counters = [root / f"calls-{i}" for i in n]
    calls = [int(c.read_text()) if c.exists() else 0 for c in counters]
    assert (statuses, calls, code) == expected, specs
