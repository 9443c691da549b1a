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


@pytest.fixture(scope="session")
def embed_files() -> dict[str, bytes]:
    """The files of python.org's python-3.13.2-embed-amd64.zip (tests/embed.py)."""
    from tests import embed

    return embed.official_files()


@pytest.fixture(scope="session")
def embed_zip(tmp_path_factory: pytest.TempPathFactory, embed_files) -> tuple[Path, str]:
    """python-3.13.2-embed-amd64.zip in the official layout, and its sha256."""
    import hashlib

    from tests import embed

    path = tmp_path_factory.mktemp("embed") / f"python-{embed.VERSION}-embed-amd64.zip"
    data = embed.build_zip(embed_files)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()
