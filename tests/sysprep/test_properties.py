"""Properties over many inputs: the log parser never breaks, install + restore is a no-op."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from vmprep.sysprep import install
from vmprep.sysprep.panther import find_causes, parse_log

NAMES = st.sampled_from(["a.txt", "B.cmd", "unattend.xml", "agent.pyz", "x y.json"])
DIRS = st.lists(
    st.sampled_from(["Windows", "Panther", "ProgramData", "vmprep", "Program Files"]), max_size=3
)
RELS = st.builds(lambda d, n: "/".join([*d, n]), DIRS, NAMES)


@given(st.text())
def test_any_text_parses_without_error(text):
    lines = parse_log(text)
    find_causes(lines)
    assert all(line.number >= 1 for line in lines)


@settings(max_examples=25, deadline=None)
@given(
    existing=st.dictionaries(RELS, st.binary(max_size=32), max_size=5),
    overlay=st.dictionaries(RELS, st.binary(max_size=32), min_size=1, max_size=5),
    remap_to=st.one_of(st.none(), RELS),
)
def test_install_then_restore_leaves_the_drive_as_it_was(existing, overlay, remap_to):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "C"
        root.mkdir()
        for rel, data in existing.items():
            path = root / rel
            if any(p.is_file() for p in [path, *path.parents]):
                continue  # a file where a folder would be: not a drive layout
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        overlay = {
            rel: data
            for rel, data in overlay.items()
            if not any(p.is_file() for p in (root / rel).parents)
            and not (root / rel).is_dir()
            and not any(other.startswith(rel + "/") for other in overlay)
        }
        state_dir = root / install.STATE_DIR
        targets = {}
        if remap_to is not None and overlay:  # one file installed elsewhere (the answer file)
            first, *others = sorted(overlay)
            clash = any(
                remap_to.casefold() == o.casefold()
                or o.startswith(remap_to + "/")
                or remap_to.startswith(o + "/")
                for o in others
            )
            path = root / remap_to
            if not (clash or path.is_dir() or any(q.is_file() for q in path.parents)):
                targets[first] = remap_to

        def tree() -> dict[str, bytes]:
            return {
                p.relative_to(root).as_posix(): p.read_bytes()
                for p in root.rglob("*")
                if p.is_file() and state_dir not in p.parents
            }

        before = tree()
        dirs_before = {
            p for p in root.rglob("*") if p.is_dir() and state_dir not in [p, *p.parents]
        }
        record = install.install(overlay, root, state_dir, targets)
        written = {targets.get(rel, rel): data for rel, data in overlay.items()}
        assert {rel: tree()[rel] for rel in written} == written
        for rel in set(targets) - set(written):  # the overlay path itself is left alone
            assert tree().get(rel) == before.get(rel)
        install.restore(record)
        assert tree() == before
        dirs_after = {p for p in root.rglob("*") if p.is_dir() and state_dir not in [p, *p.parents]}
        assert dirs_after - {state_dir.parent, state_dir.parent.parent} == dirs_before - {
            state_dir.parent,
            state_dir.parent.parent,
        }
