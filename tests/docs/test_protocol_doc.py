"""docs/protocol.md is the protocol's one home: everything cites it, and it names every code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "protocol.md"

# Spelled in pieces so that this file does not match itself.
OUTSIDE = ("PROTOCOL" + ".md", "shared" + "/reference", ".." + "/shared")


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def test_nothing_cites_a_file_outside_the_repository() -> None:
    offenders = []
    for path in _tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if any(name in line for name in OUTSIDE):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert offenders == []


def _table_codes(heading: str) -> set[str]:
    text = PROTOCOL.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


def _codes_in_agent() -> set[str]:
    """Every error code the agent can put into a report, read from its source."""
    codes: set[str] = set()
    pattern = re.compile(
        r"""(?:HttpError|DocumentError|_Refused|_refused)\(\s*"([a-z_]+)"|"""
        r"""error_code="([a-z_]+)"|"code": "([a-z_]+)"|code = "([a-z_]+)"|"""
        r"""code = \("([a-z_]+)" """
    )
    for path in (ROOT / "vmprep" / "agent").rglob("*.py"):
        for match in pattern.finditer(path.read_text(encoding="utf-8")):
            codes.update(g for g in match.groups() if g)
    return codes


def test_every_error_code_the_agent_reports_is_in_the_table() -> None:
    table = _table_codes("Error codes")
    used = _codes_in_agent()
    assert used, "the pattern found no codes: it no longer matches the agent's source"
    assert used <= table, f"codes missing from docs/protocol.md: {sorted(used - table)}"


def test_the_protocol_states_its_version_and_leaves_headed_places() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    assert "| Protocol version | **v1** (`apiVersion: vmprep/v1`) |" in text
    for heading in ("### Unknown role", "### Secrets for baked steps", "## Error codes"):
        assert heading in text
