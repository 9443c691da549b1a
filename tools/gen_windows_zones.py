"""Regenerate `windows_zones.json` from tzlocal's table (itself generated from CLDR windowsZones.xml).

Run by hand when tzlocal publishes a newer table: `python -m tools.gen_windows_zones` from the
repository's root. tests/spec/test_schema.py fails when the packaged file and this output
disagree. tzlocal is a test extra: this generator is not part of the package.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "vmprep" / "spec" / "windows_zones.json"


def build() -> dict[str, object]:
    from tzlocal.windows_tz import tz_win, win_tz  # a test extra

    return {
        "source": f"tzlocal {version('tzlocal')} windows_tz (from CLDR windowsZones.xml)",
        "windows": dict(sorted(win_tz.items())),
        "iana": dict(sorted(tz_win.items())),
    }


def text() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    TARGET.write_text(text(), encoding="utf-8")
    print(f"wrote {TARGET}")
