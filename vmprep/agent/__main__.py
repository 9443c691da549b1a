"""`python -m vmprep.agent` (agent.pyz has its own entry point, written by `vmprep render`).

No `from __future__` here: an interpreter older than the agent's floor must parse this file and
get the one-line refusal of `vmprep.protocol.floor` before anything else is imported.
"""

from vmprep.protocol.floor import refuse_old

refuse_old()

from vmprep.agent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
