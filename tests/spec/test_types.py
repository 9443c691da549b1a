"""vmprep/spec/types.py is what tools/gen_spec_types.py makes of schema.json, and nothing
imports it (or the tools) when vmprep runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.gen_spec_types import TARGET, text

ROOT = Path(__file__).resolve().parents[2]


def test_the_spec_types_are_generated_from_the_schema_as_it_is():
    assert TARGET.read_text(encoding="utf-8") == text(), (
        "schema.json and vmprep/spec/types.py drifted: run `python -m tools.gen_spec_types`"
    )


def test_the_generated_types_name_every_section_and_its_keys():
    import json

    from vmprep.spec import types

    schema = json.loads((ROOT / "vmprep" / "spec" / "schema.json").read_text(encoding="utf-8"))
    for section in ("image", "setup", "sysprep", "agent"):
        cls = getattr(types, f"{section.capitalize()}Section")
        assert set(cls.__annotations__) | set(cls.__optional_keys__) == set(
            schema["properties"][section]["properties"]
        )
    assert types.SetupSection.__required_keys__ >= {"timezone", "locale", "accounts", "oobe"}
    assert "administrator" in types.SetupSection.__optional_keys__


def test_validate_and_render_import_neither_the_types_nor_the_tools(tmp_path):
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from vmprep.cli import main\n"
        "r = CliRunner().invoke(main, ['validate', 'examples/minimal.yaml'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"r = CliRunner().invoke(main, ['render', 'examples/minimal.yaml', '-o', {str(tmp_path / 'o')!r}],"
        " env={'VMPREP_ADMIN_PASSWORD': 'Example-only-1'})\n"
        "assert r.exit_code == 0, r.output\n"
        "found = sorted(m for m in sys.modules if m == 'tools' or m.startswith(('tools.', 'vmprep.spec.types')))\n"
        "assert not found, found\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
