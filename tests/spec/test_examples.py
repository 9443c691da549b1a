"""Every example is a test: the valid ones pass, each invalid one fails with the codes it states."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from vmprep.spec import load_spec
from vmprep.spec.pipeline import check_file

VALID = sorted([*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("platforms/*.yaml")])
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))
# The only warnings an example may carry, on purpose: the administrator password OOBE needs.
EXPECTED_WARNINGS = {
    name: ["secret-in-image"]
    for name in ("minimal.yaml", "web-role.yaml", "domain-joined.yaml", "one-image-many-roles.yaml")
}


def expected_codes(path: Path) -> set[str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path} must start with '# expect: code, ...'"
    return {code.strip() for code in first.removeprefix("# expect: ").split(",")}


def test_there_are_examples():
    assert {p.name for p in VALID} >= {"minimal.yaml", "web-role.yaml", "domain-joined.yaml"}
    assert {p.name for p in VALID if p.parent.name == "platforms"} == {
        "azure.yaml",
        "aws.yaml",
        "gce.yaml",
    }
    assert len(INVALID) >= 8


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example(path):
    problems = check_file(path)
    assert [p.code for p in problems] == EXPECTED_WARNINGS.get(path.name, [])
    assert not any(p.is_error for p in problems)
    assert load_spec(path).image["name"]
    up = "../" * len(path.relative_to(EXAMPLES).parts)
    assert path.read_text(encoding="utf-8").startswith(
        f"# yaml-language-server: $schema={up}vmprep/spec/schema.json\n"
    )


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example(path):
    problems = check_file(path)
    assert {p.code for p in problems if p.is_error} == expected_codes(path)
    assert all(p.line > 0 and p.column > 0 for p in problems)
