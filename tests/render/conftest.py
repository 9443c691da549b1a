from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vmprep.problems import Problem
from vmprep.render import payload
from vmprep.spec import Spec, load_spec

HERE = Path(__file__).resolve().parent
SPECS = HERE / "specs"
GOLDEN = HERE / "golden"
ENV = {
    "VMPREP_ADMIN_PASSWORD": "Example-Admin-1",
    "VMPREP_TEST_ADMIN": 'Adm!n"pw',
    "VMPREP_TEST_TOKEN": "tok",
}
REAL_AGENT = payload.default_agent_dir() / "cli.py"

FAKE_CLI = b"""import sys


def main():
    import ecdsa, six  # the vendored packages must import under python -I

    if sys.argv[1:] == ["--version"]:
        from vmprep import __version__

        print(f"fake agent {__version__} ecdsa {ecdsa.__version__} six {six.__version__}")
        return 0
    return 3
"""


def write_fake_agent(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__init__.py").write_bytes(b'"""A stand-in agent for render tests."""\n')
    (directory / "cli.py").write_bytes(FAKE_CLI)
    # every agent.pyz checks the interpreter first: vmprep/protocol/floor.py, packed from this
    # vmprep whatever the agent directory (the floor is not the agent's to fake)
    return directory


@pytest.fixture
def agent_dir() -> Path:
    """The real agent, vmprep/agent/."""
    return REAL_AGENT.parent


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    return dict(ENV)


def environ_for(spec: Spec) -> dict[str, str]:
    """ENV plus a fixed dummy value for any other {env: NAME} the spec uses (examples)."""
    from vmprep.render.secrets import find_refs

    extra = {r.target: f"{r.target}-value" for r in find_refs(spec) if r.kind == "env"}
    return {**extra, **ENV}


def golden_specs() -> list[Path]:
    """Every example plus the render test spec that uses every section."""
    from tests.conftest import EXAMPLES

    return [*sorted(EXAMPLES.glob("*.yaml")), SPECS / "full.yaml"]


def check_golden(rendered: bytes, golden: Path) -> None:
    import os

    if os.environ.get("VMPREP_UPDATE_GOLDEN"):  # then review the diff
        golden.write_bytes(rendered)
    assert golden.is_file(), (
        f"no golden file {golden.name}: run with VMPREP_UPDATE_GOLDEN=1, review"
    )
    assert rendered == golden.read_bytes()


def refusal(tmp_path: Path, doc: dict, **render_args: object) -> list[Problem]:
    """The errors that stop `doc`: from `validate` if it catches them, else from render."""
    from vmprep.render import RenderError, render
    from vmprep.spec import check_file

    path = tmp_path / "refused.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    errors = [p for p in check_file(path) if p.is_error]
    if errors:
        return errors
    with pytest.raises(RenderError) as caught:
        render(load_spec(path), environ=ENV, **render_args)  # type: ignore[arg-type]
    return caught.value.problems


def assert_refused_at(tmp_path: Path, doc: dict, key: str, **render_args: object) -> None:
    """`doc` is refused (by validate or render), and every error points at `key:`'s entry."""
    problems = refusal(tmp_path, doc, **render_args)
    lines = (tmp_path / "refused.yaml").read_text(encoding="utf-8").splitlines()
    key_line = next(i for i, line in enumerate(lines, 1) if line.lstrip().startswith(f"{key}:"))
    assert problems
    assert all(key_line <= p.line <= key_line + 1 for p in problems), problems


def spec_from(tmp_path: Path, doc: dict, name: str = "spec.yaml") -> Spec:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return load_spec(path)


def base_doc(**setup: object) -> dict:
    """A small valid spec document; `setup` keys are merged in."""
    return {
        "version": 1,
        "image": {"name": "t"},
        "setup": {"administrator": {"password": {"env": "VMPREP_TEST_ADMIN"}}, **setup},
        "agent": {"runtime": {"python": "C:\\Python312\\python.exe"}},
    }
