"""The agent's Python floor: the oldest interpreter agent.pyz runs on (docs/agent.md).

The image's Python is not ours (older Server images carry older ones), so agent.pyz checks
the interpreter before it imports anything of its own, and refuses an older one with one
line and exit code TOO_OLD instead of failing somewhere in the middle of a run. This module is
written so that any Python parses it (no `from __future__`, no annotations, no f-strings):
CI checks that with `vermin`, and the agent's own code against MINIMUM.
"""

import sys

MINIMUM = (3, 8)
TOO_OLD = 5  # exit code: the interpreter is older than MINIMUM; nothing was done


def too_old(version):  # type: (tuple[int, ...]) -> str | None
    """The one-line refusal for an interpreter `version`, None when it is new enough."""
    if tuple(version[:2]) >= MINIMUM:
        return None
    have = ".".join(str(part) for part in version[:3])
    need = ".".join(str(part) for part in MINIMUM)
    return (
        "vmprep-agent: error: Python "
        + have
        + " is too old: the agent needs Python "
        + need
        + " or newer (agent.runtime.python in the spec)"
    )


def refuse_old():  # type: () -> None
    """Exit with TOO_OLD, saying why, on an interpreter older than MINIMUM."""
    message = too_old(tuple(sys.version_info[:3]))
    if message is not None:
        sys.stderr.write(message + "\n")
        sys.exit(TOO_OLD)
