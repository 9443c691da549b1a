"""The overlay layout has one owner, vmprep/render/paths.py: no other module of render,
sysprep or the commands spells these paths in its code (docstrings and comments may)."""

from __future__ import annotations

import ast
from pathlib import Path

from vmprep.render import paths

ROOT = Path(__file__).resolve().parents[2] / "vmprep"
OWNED = ("Setup/Scripts", "Setup\\Scripts", "Windows/Panther", "Windows\\Panther", "Windows/OEM")


def _literals(tree: ast.AST) -> list[tuple[int, str]]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]


def test_no_module_but_paths_spells_the_overlay_layout():
    found = []
    for package in ("render", "sysprep", "commands"):
        for file in sorted((ROOT / package).rglob("*.py")):
            if file.name == "paths.py" and package == "render":
                continue
            for line, text in _literals(ast.parse(file.read_text(encoding="utf-8"))):
                if any(part in text for part in OWNED):
                    found.append(f"{file.relative_to(ROOT)}:{line}: {text!r}")
    assert not found, "\n".join(found)


def test_windows_and_overlay_forms_convert_both_ways():
    assert paths.windows_path(paths.UNATTEND) == "C:\\Windows\\Panther\\unattend.xml"
    assert paths.overlay_path(paths.windows_path(paths.SETUPCOMPLETE)) == paths.SETUPCOMPLETE
