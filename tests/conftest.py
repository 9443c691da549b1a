from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vmprep import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def run_vmprep() -> Callable[..., Result]:
    runner = CliRunner()  # click >= 8.2 keeps result.stdout and result.stderr apart

    def invoke(*args: str, expect: int = 0) -> Result:
        result = runner.invoke(cli.main, list(args), catch_exceptions=False)
        assert result.exit_code == expect, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        return result

    return invoke
