"""Installing an overlay with backups and a record, and restoring it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmprep.errors import PreflightError
from vmprep.sysprep import install

FILES = {
    "Windows/Panther/unattend.xml": b"<unattend>new</unattend>",
    "Windows/Setup/Scripts/SetupComplete.cmd": b"@echo off\r\n",
    "ProgramData/vmprep/agent.pyz": b"PK",
}


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "C"
    (root / "Windows/Panther").mkdir(parents=True)
    (root / "Windows/Panther/unattend.xml").write_bytes(
        b"<unattend>old, with a password</unattend>"
    )
    return root


def state_dir(root: Path) -> Path:
    return root / install.STATE_DIR


def test_plan_says_what_is_replaced(root):
    placements = install.plan(FILES, root)
    assert [(p.rel, p.replaces) for p in placements] == [
        ("ProgramData/vmprep/agent.pyz", False),
        ("Windows/Panther/unattend.xml", True),
        ("Windows/Setup/Scripts/SetupComplete.cmd", False),
    ]
    assert placements[1].dest == root / "Windows/Panther/unattend.xml"


@pytest.mark.parametrize("rel", ["../escape.txt", "/abs.txt", "C:/x.txt", "a\\b.txt"])
def test_paths_outside_the_drive_are_refused(root, rel):
    with pytest.raises(install.InstallError, match="outside the system drive"):
        install.plan({rel: b""}, root)


def test_install_writes_files_keeps_backups_and_a_record(root):
    record_path = install.install(FILES, root, state_dir(root))
    for rel, data in FILES.items():
        assert (root / rel).read_bytes() == data
    record = json.loads(record_path.read_text())
    assert record["status"] == "installed"
    entry = next(e for e in record["files"] if e["path"] == "Windows/Panther/unattend.xml")
    backup = state_dir(root) / entry["backup"]
    assert backup.read_bytes() == b"<unattend>old, with a password</unattend>"
    assert not list(root.rglob(".*.tmp-*"))  # no temporary file left behind


def test_restore_puts_everything_back(root):
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    record_path = install.install(FILES, root, state_dir(root))
    undone = install.restore(record_path)
    assert sorted(undone) == sorted(FILES)
    after = {
        p.relative_to(root): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and state_dir(root) not in p.parents
    }
    assert after == before
    assert not (root / "Windows/Setup").exists()  # directories it created are gone too
    record = json.loads(record_path.read_text())
    assert record["status"] == "restored"
    assert not (state_dir(root) / "backup").exists()


def test_finish_deletes_the_backups_so_they_never_ship(root):
    record_path = install.install(FILES, root, state_dir(root))
    install.finish(record_path)
    assert not (state_dir(root) / "backup").exists()
    record = json.loads(record_path.read_text())
    assert record["status"] == "generalized"
    assert all("backup" not in e for e in record["files"])
    assert install.find_unfinished(state_dir(root)) is None


def test_a_second_install_over_an_unfinished_one_is_refused(root):
    install.install(FILES, root, state_dir(root))
    with pytest.raises(PreflightError, match="not finished"):
        install.install(FILES, root, state_dir(root))


def test_a_failing_write_undoes_everything(root, monkeypatch):
    real = install._write_atomic
    calls = []

    def flaky(dest, data):
        calls.append(dest)
        if dest.name == "SetupComplete.cmd":
            raise OSError(28, "No space left on device")
        real(dest, data)

    monkeypatch.setattr(install, "_write_atomic", flaky)
    with pytest.raises(install.InstallError, match="nothing changed"):
        install.install(FILES, root, state_dir(root))
    monkeypatch.setattr(install, "_write_atomic", real)
    assert (root / "Windows/Panther/unattend.xml").read_bytes().startswith(b"<unattend>old")
    assert not (root / "ProgramData/vmprep/agent.pyz").exists()
    assert json.loads((state_dir(root) / "install.json").read_text())["status"] == "restored"


def test_an_unreadable_record_is_reported(root):
    state_dir(root).mkdir(parents=True)
    (state_dir(root) / "install.json").write_text("{not json")
    assert install.find_unfinished(state_dir(root)) is not None
    with pytest.raises(install.InstallError, match="cannot read the install record"):
        install.restore(state_dir(root) / "install.json")


ANSWER = "Windows/System32/Sysprep/unattend.xml"
REMAP = {"Windows/Panther/unattend.xml": ANSWER}


def test_plan_follows_a_remapped_target(root):
    (root / "Windows/System32/Sysprep").mkdir(parents=True)
    (root / ANSWER).write_bytes(b"<unattend>stale</unattend>")
    placed = {p.rel: p for p in install.plan(FILES, root, REMAP)}
    answer = placed["Windows/Panther/unattend.xml"]
    assert (answer.target, answer.dest, answer.replaces) == (ANSWER, root / ANSWER, True)
    setup = placed["Windows/Setup/Scripts/SetupComplete.cmd"]
    assert (setup.target, setup.replaces) == ("Windows/Setup/Scripts/SetupComplete.cmd", False)


def test_a_remapped_install_writes_only_the_target_and_restores_it(root):
    (root / "Windows/System32/Sysprep").mkdir(parents=True)
    (root / ANSWER).write_bytes(b"<unattend>stale, with a password</unattend>")
    cached = (root / "Windows/Panther/unattend.xml").read_bytes()
    record_path = install.install(FILES, root, state_dir(root), REMAP)
    assert (root / ANSWER).read_bytes() == FILES["Windows/Panther/unattend.xml"]
    assert (root / "Windows/Panther/unattend.xml").read_bytes() == cached  # never touched
    record = json.loads(record_path.read_text())
    entry = next(e for e in record["files"] if e["path"] == ANSWER)
    assert entry["overlay"] == "Windows/Panther/unattend.xml"
    assert entry["backup"] == f"backup/{ANSWER}"
    assert "Windows/Panther/unattend.xml" not in {e["path"] for e in record["files"]}
    undone = install.restore(record_path)
    assert ANSWER in undone
    assert (root / ANSWER).read_bytes() == b"<unattend>stale, with a password</unattend>"
    assert (root / "Windows/Panther/unattend.xml").read_bytes() == cached


def test_a_remapped_new_file_is_removed_with_its_folders(root):
    record_path = install.install(FILES, root, state_dir(root), REMAP)
    assert (root / ANSWER).is_file()
    install.restore(record_path)
    assert not (root / "Windows/System32").exists()


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"Windows/Panther/unattend.xml": "ProgramData/vmprep/AGENT.pyz"}, "both be installed"),
        ({"missing.xml": ANSWER}, "not in the overlay"),
        ({"Windows/Panther/unattend.xml": "../x.xml"}, "outside the system drive"),
    ],
)
def test_bad_remaps_are_refused_before_anything_changes(root, targets, message):
    before = sorted(root.rglob("*"))
    with pytest.raises(install.InstallError, match=message):
        install.install(FILES, root, state_dir(root), targets)
    assert sorted(root.rglob("*")) == before
