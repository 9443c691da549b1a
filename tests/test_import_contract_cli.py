"""The CLI is sealed: only `vmprep/cli.py` and `vmprep/commands/` may import click, rich,
`vmprep.cli` or `vmprep.commands`. Core packages return values; the reporters in
`vmprep/commands/reporters/` show them (docs/internals.md, "Output").

Every import is read from the source with `ast`, so an import inside a function (the lazy
imports the start-up speed depends on) or under `if TYPE_CHECKING:` counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vmprep"
SEALED = ("click", "rich", "vmprep.cli", "vmprep.commands")
# `python -m vmprep` is the CLI's entry point: it may start the CLI, and nothing else does.
CLI_LAYER = ("cli.py", "__main__.py", "commands/")


def imported_modules(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, module) of every import anywhere in `tree`, relative imports resolved against
    `module` (the dotted name of the file's package)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: len(module.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from vmprep import cli` imports vmprep.cli: a name may be a module too.
            names = [base] if is_sealed(base) else [f"{base}.{a.name}" for a in node.names]
            found.extend((node.lineno, name) for name in names)
    return found


def is_sealed(name: str) -> bool:
    return any(name == s or name.startswith(s + ".") for s in SEALED)


def violations(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(CLI_LAYER):
            continue
        package = ".".join(["vmprep", *path.relative_to(root).parent.parts])
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out.extend(
            f"vmprep/{rel}:{line}: imports {name}"
            for line, name in imported_modules(tree, package)
            if is_sealed(name)
        )
    return sorted(set(out))


def test_nothing_outside_the_cli_imports_click_rich_or_the_cli():
    assert violations(PACKAGE) == []


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("import click", "click"),
        ("def f():\n    from rich.table import Table\n", "rich.table"),
        ("from vmprep import cli", "vmprep.cli"),
        ("from vmprep.cli import output", "vmprep.cli"),
        ("from ..commands.reporters import console", "vmprep.commands.reporters"),
        ("if TYPE_CHECKING:\n    from rich.console import Console\n", "rich.console"),
    ],
)
def test_the_check_sees_each_kind_of_import(tmp_path: Path, source: str, name: str):
    (tmp_path / "sysprep").mkdir()
    (tmp_path / "sysprep" / "core.py").write_text(source, encoding="utf-8")
    (tmp_path / "cli.py").write_text("import click\n", encoding="utf-8")  # the CLI may
    found = violations(tmp_path)
    assert found
    assert all(line.startswith("vmprep/sysprep/core.py:") for line in found)
    assert any(line.endswith(f"imports {name}") for line in found)


def test_a_look_alike_name_is_not_sealed():
    assert not is_sealed("clickhouse")
    assert not is_sealed("richtext")
    assert not is_sealed("vmprep.client")
