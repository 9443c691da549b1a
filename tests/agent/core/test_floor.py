"""The agent's Python floor (3.8): refused before anything runs on an older interpreter, and
no construct newer than the floor at run time in the agent's code nor in the shared core it
imports, vmprep/protocol (the Windows bench runs it
on CPython 3.8 itself: tests/windows/test_floor.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from vmprep.protocol import floor
from vmprep.render.payload import build_payload

PROTOCOL = Path(floor.__file__).resolve().parent
AGENT = PROTOCOL.parent / "agent"
VERMIN = str(Path(sys.executable).parent / "vermin")  # the test extras install it
# Subscripted at run time these need Python 3.9 (PEP 585); only annotations may use them.
GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}
ABC = {"Callable", "Mapping", "Sequence", "Iterable", "Iterator", "Collection", "MutableMapping"}
TYPES = {"int", "str", "bytes", "float", "bool", "list", "dict", "tuple", "set", "object"}


@pytest.mark.parametrize(
    ("version", "refused"),
    [((2, 7, 18), True), ((3, 7, 9), True), ((3, 8, 0), False), ((3, 13, 2), False)],
)
def test_too_old_answers_one_line_below_the_floor(version, refused):
    message = floor.too_old(version)
    assert (message is not None) is refused
    if message is not None:
        have = ".".join(map(str, version))
        assert message == (
            f"vmprep-agent: error: Python {have} is too old: the agent needs Python 3.8 or newer"
            " (agent.runtime.python in the spec)"
        )


def _pretend(version: str, entry: str) -> str:
    return (
        f"import runpy, sys; sys.version_info = ({version}, 'final', 0); "
        f"sys.argv = ['agent', 'run', '--config', 'agent.json']; {entry}"
    )


@pytest.mark.parametrize("entry", ["pyz", "module"])
def test_an_older_interpreter_is_refused_before_anything_else(tmp_path, entry):
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(build_payload())
    run = (
        f"runpy.run_path({str(pyz)!r}, run_name='__main__')"
        if entry == "pyz"
        else "runpy.run_module('vmprep.agent', run_name='__main__', alter_sys=True)"
    )
    argv = [sys.executable, "-c", _pretend("3, 7, 1", run)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == floor.TOO_OLD == 5
    assert done.stderr.splitlines() == [floor.too_old((3, 7, 1))]
    assert done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.pyz"]  # nothing written


def test_the_floor_module_parses_on_any_python():
    """vermin: floor.py (and the package __init__s it is imported through) need Python 2.0/3.0."""
    files = [
        PROTOCOL / "floor.py",
        PROTOCOL / "__init__.py",
        PROTOCOL.parent / "__init__.py",
        AGENT / "__init__.py",
        AGENT / "__main__.py",
    ]
    done = subprocess.run(
        [VERMIN, "--no-tips", "-t=3.0-", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Minimum required versions: 2.0, 3.0" in done.stdout, done.stdout


def _runtime_newer_than_38(tree: ast.AST) -> list[tuple[int, str]]:
    """Subscripted builtins / collections.abc and `X | Y` of types outside annotations and
    outside `if TYPE_CHECKING:` (vermin does not see these unless it evaluates annotations,
    which `from __future__ import annotations` makes wrong)."""
    found: list[tuple[int, str]] = []

    def name_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return node.attr
        return None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and name_of(node.test) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for child in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
                if child is not None:
                    visit(child)
            for child in node.body:
                visit(child)
            return
        if isinstance(node, ast.AnnAssign):
            if node.value is not None:
                visit(node.value)
            return
        if isinstance(node, ast.Subscript):
            name = name_of(node.value)
            if name in GENERICS or name in ABC:
                found.append((node.lineno, f"{name}[...] at run time"))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            sides = [node.left, node.right]
            if any(isinstance(s, ast.Constant) and s.value is None for s in sides) or all(
                name_of(s) in TYPES for s in sides
            ):
                found.append((node.lineno, "X | Y of types at run time"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_the_agent_uses_nothing_newer_than_its_floor_at_run_time():
    problems = []
    for path in sorted([*AGENT.rglob("*.py"), *PROTOCOL.rglob("*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        problems += [f"{path}:{line}: {what}" for line, what in _runtime_newer_than_38(tree)]
    assert problems == []


def test_the_runtime_check_finds_what_it_looks_for():
    source = (
        "Origin = tuple[str, int]\n"
        "ok = isinstance(1, int | str)\n"
        "if TYPE_CHECKING:\n    Fine = list[int]\n"
        "def f(a: list[int] = None) -> dict[str, int]:\n    x: set[int] = set()\n"
    )
    found = _runtime_newer_than_38(ast.parse(source))
    assert [line for line, _ in found] == [1, 2]
