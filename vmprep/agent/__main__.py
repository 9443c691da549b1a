"""`python -m vmprep.agent` and the zipapp entry point."""

from __future__ import annotations

from vmprep.agent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
