"""The docs keep up with the code: every check code and every schema key is documented."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.conftest import ROOT
from vmprep.spec.checks import CHECKS, run_checks  # noqa: F401
from vmprep.spec.pipeline import check_bytes
from vmprep.spec.schema import schema

ERRORS = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
SPEC = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
LOADER_CODES = {"file", "too-large", "encoding", "yaml", "duplicate-key", "unquoted-string"}


def test_every_problem_code_is_documented():
    check_bytes(b"version: 1\nimage: {name: t}\n", "x")  # registers the checks
    for code in {*CHECKS, *LOADER_CODES, "schema", "kind"}:
        assert f"| `{code}` |" in ERRORS, code


def test_every_schema_key_is_in_the_spec_reference():
    def keys(node: dict[str, Any]) -> Iterator[str]:
        for key, sub in node.get("properties", {}).items():
            yield key
            yield from keys(sub)

    root = schema()
    for key in {*keys(root), *keys(root["$defs"]["step"])}:
        assert f"`{key}`" in SPEC or re.search(rf"[`{{,] ?{key}[,:}} ]", SPEC), key


def test_the_pre_commit_hook_runs_validate():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hooks[0]["id"] == "vmprep-validate"
    assert hooks[0]["entry"] == "vmprep validate"


def test_the_example_config_repository_readme_names_every_secret_variable_and_file():
    # A user sets what the README says, then runs `publish`/`serve`: a variable it does not
    # name (or names in the wrong file) makes the first try fail.
    configs = ROOT / "examples" / "configs"
    readme = (configs / "README.md").read_text(encoding="utf-8")
    for path in sorted(configs.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        for name in re.findall(r"\{env: (\w+)\}", text):
            assert f"`{name}`" in readme, name
            assert f"`{path.relative_to(configs).as_posix()}`" in readme, (name, path)


def test_every_complete_yaml_example_in_the_docs_validates():
    # Readers copy these: a block with `version: 1` and no `...` placeholder must be a spec or
    # RoleConfig file that `vmprep validate` accepts (warnings allowed).
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)):
            if "version: 1" not in block or "..." in block:
                continue
            where = f"{doc.name}#{index}"
            errors = [str(p) for p in check_bytes(block.encode(), where) if p.severity == "error"]
            assert errors == [], where
            checked += 1
    assert checked >= 2
