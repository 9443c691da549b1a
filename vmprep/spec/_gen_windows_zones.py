"""Regenerate `windows_zones.json` from tzlocal's table (itself generated from CLDR windowsZones.xml).

Run by hand when tzlocal publishes a newer table: `python -m vmprep.spec._gen_windows_zones`.
tests/spec/test_timezones.py fails when the packaged file and the installed tzlocal disagree.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

TARGET = Path(__file__).with_name("windows_zones.json")


def build() -> dict[str, object]:
    from tzlocal.windows_tz import tz_win, win_tz  # test extra only; never imported at run time

    return {
        "source": f"tzlocal {version('tzlocal')} windows_tz (from CLDR windowsZones.xml)",
        "windows": dict(sorted(win_tz.items())),
        "iana": dict(sorted(tz_win.items())),
    }


if __name__ == "__main__":
    TARGET.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {TARGET}")
