"""The import contract (docs/internals.md, "Layers"), read from the source with `ast`: every
import of every module under vmprep/, function-level (lazy) imports and
`importlib.import_module("...")` with a literal name included.

    interface  vmprep.cli, vmprep.commands, vmprep.__main__   (click, the command line)
        |
    core       vmprep.spec, render, sysprep, server, plan, errors, problems, report, ...
        |
    protocol   vmprep.protocol   standard library only, Python 3.8, packed into agent.pyz

    agent      vmprep.agent      standard library, its vendored packages (render's VENDORED),
                                 vmprep.protocol, and `vmprep` itself (the version only)

No layer imports one above it; the agent imports nothing of core; core imports the agent only
where `AGENT_USERS` says why. ("No click or rich outside the interface" is its own test.)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from vmprep.render.payload import VENDORED

ROOT = Path(__file__).resolve().parent.parent

INTERFACE = ("vmprep.cli", "vmprep.commands", "vmprep.__main__")
# The core packages that may import vmprep.agent, and why.
AGENT_USERS = {
    "vmprep.render": "packs the agent into agent.pyz, and builds the launch task with the "
    "agent's own task XML (vmprep.agent.platform.taskxml): one owner for what the agent registers",
    "vmprep.plan": "runs the agent dry: its engine, steps and checks on a recording platform",
}
# Core -> interface edges allowed for a while, each with its reason; none today. Each entry must
# still be in use (a stale one fails `test_every_allowance_is_still_needed`).
KNOWN_BACK_EDGES: dict[tuple[str, str], str] = {}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            # `from vmprep.agent import run` imports the module vmprep.agent.run
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, node.lineno))
    return found


def _within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _layer(name: str) -> str:
    if _within(name, INTERFACE):
        return "interface"
    if _within(name, "vmprep.protocol"):
        return "protocol"
    if _within(name, "vmprep.agent"):
        return "agent"
    return "core"


def _stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names or name == "__future__"


def violations(root: Path) -> list[str]:
    """Every import under `root`/vmprep that breaks the contract, as `file:line: why`."""
    found: list[str] = []
    modules = {module_name(p, root) for p in (root / "vmprep").rglob("*.py")}
    for path in sorted((root / "vmprep").rglob("*.py")):
        source = module_name(path, root)
        layer = _layer(source)
        for target, line in imports(path, root):
            if _within(target, "vmprep") and target not in modules and target != "vmprep":
                # `from pkg import name` where name is not a module: the package is the edge
                continue
            where = f"{path.relative_to(root)}:{line}: {source} -> {target}"
            if not _within(target, "vmprep"):
                if layer == "protocol" and not _stdlib(target):
                    found.append(f"{where}: the protocol imports only the standard library")
                if layer == "agent" and not (_stdlib(target) or _within(target, VENDORED)):
                    found.append(
                        f"{where}: the agent imports only the standard library and "
                        f"its vendored packages {VENDORED}"
                    )
                continue
            to = _layer(target)
            if layer == "protocol" and to != "protocol":
                found.append(f"{where}: the protocol imports nothing else of vmprep")
            elif layer == "agent" and to not in ("agent", "protocol") and target != "vmprep":
                found.append(f"{where}: the agent imports only vmprep.agent and vmprep.protocol")
            elif layer == "core" and to == "interface":
                if (source, target) not in KNOWN_BACK_EDGES:
                    found.append(f"{where}: core code does not import the command line")
            elif layer == "core" and to == "agent" and not _within(source, tuple(AGENT_USERS)):
                found.append(
                    f"{where}: only {', '.join(AGENT_USERS)} import the agent; shared "
                    "standard-library code belongs in vmprep.protocol"
                )
    return found


def test_the_tree_keeps_the_import_contract() -> None:
    assert violations(ROOT) == []


def test_every_allowance_is_still_needed() -> None:
    edges = {
        (module_name(p, ROOT), target)
        for p in (ROOT / "vmprep").rglob("*.py")
        for target, _ in imports(p, ROOT)
    }
    assert set(KNOWN_BACK_EDGES) <= edges, set(KNOWN_BACK_EDGES) - edges
    for package in AGENT_USERS:
        assert any(
            _within(source, package) and _within(target, "vmprep.agent") for source, target in edges
        ), f"{package} no longer imports the agent: drop it from AGENT_USERS"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"vmprep/__init__.py": "", **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (  # a function-level (lazy) import of the agent from the server
            {
                "vmprep/server/__init__.py": "",
                "vmprep/server/repo.py": "def f():\n    from vmprep.agent.durations import x\n",
                "vmprep/agent/__init__.py": "",
                "vmprep/agent/durations.py": "",
            },
            ["vmprep/server/repo.py:2: vmprep.server.repo -> vmprep.agent.durations"],
        ),
        (  # `from package import module`, and a relative import from the protocol
            {
                "vmprep/sysprep/__init__.py": "",
                "vmprep/sysprep/install.py": "from vmprep.agent import atomic\n",
                "vmprep/agent/__init__.py": "",
                "vmprep/agent/atomic.py": "",
                "vmprep/protocol/__init__.py": "",
                "vmprep/protocol/keys.py": "from ..spec import rules\n",
                "vmprep/spec/__init__.py": "",
                "vmprep/spec/rules.py": "",
            },
            [
                "vmprep/protocol/keys.py:1: vmprep.protocol.keys -> vmprep.spec",
                "vmprep/protocol/keys.py:1: vmprep.protocol.keys -> vmprep.spec.rules",
                "vmprep/sysprep/install.py:1: vmprep.sysprep.install -> vmprep.agent",
                "vmprep/sysprep/install.py:1: vmprep.sysprep.install -> vmprep.agent.atomic",
            ],
        ),
        (  # third-party code in the agent and the protocol; core reaching into the CLI
            {
                "vmprep/agent/__init__.py": "import yaml\nimport ecdsa\nimport json\n",
                "vmprep/protocol/__init__.py": "import ecdsa\n",
                "vmprep/spec/__init__.py": "import importlib\nimportlib.import_module('vmprep.cli')\n",
                "vmprep/cli.py": "",
            },
            [
                "vmprep/agent/__init__.py:1: vmprep.agent -> yaml",
                "vmprep/protocol/__init__.py:1: vmprep.protocol -> ecdsa",
                "vmprep/spec/__init__.py:2: vmprep.spec -> vmprep.cli",
            ],
        ),
    ],
)
def test_the_contract_check_finds_what_it_looks_for(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    found = [v.rsplit(": ", 1)[0] for v in violations(_tree(tmp_path, files))]
    assert found == expected


def test_allowed_edges_pass(tmp_path: Path) -> None:
    files = {
        "vmprep/agent/__init__.py": "from vmprep import __version__\nimport ecdsa, six\n",
        "vmprep/agent/cli.py": "from vmprep.protocol.floor import MINIMUM\nfrom . import __init__\n",
        "vmprep/protocol/__init__.py": "from __future__ import annotations\nimport json\n",
        "vmprep/protocol/floor.py": "import sys\n",
        "vmprep/render/__init__.py": "from vmprep.agent import cli\n",
        "vmprep/plan/__init__.py": "def f():\n    import vmprep.agent.cli\n",
        "vmprep/commands/__init__.py": "from vmprep.render import x\nfrom vmprep.agent import y\n",
    }
    assert violations(_tree(tmp_path, files)) == []
