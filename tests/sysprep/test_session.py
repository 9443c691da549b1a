"""`vmprep.sysprep.session.run` reports through the `SysprepView` it is given and prints
nothing itself: a plain recording view (no click, no rich) sees every event in order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sysprep.conftest import hand_overlay, scenario
from vmprep.errors import ExitCode
from vmprep.sysprep.generalize import Plan, SysprepError
from vmprep.sysprep.run import Progress
from vmprep.sysprep.session import Mode, Options, SysprepView, run


@pytest.fixture(autouse=True)
def hand_made_overlay(monkeypatch):
    monkeypatch.setattr("vmprep.sysprep.generalize.render_overlay", hand_overlay)


class Recorder:
    def __init__(self, *, watching: bool = True) -> None:
        self.events: list[str] = []
        self.watching = watching

    def restored(self, files: list[str]) -> None:
        self.events.append(f"restored {len(files)}")

    def appx_removed(self, argv: list[str]) -> None:
        self.events.append("appx")

    def preflight(self, plan: Plan, *, mode: Mode, dry_run: bool) -> None:
        self.events.append(f"preflight {mode} dry_run={dry_run} refused={plan.refused}")

    def log(self, message: str) -> None:
        self.events.append("log")

    @property
    def progress(self) -> Callable[[Progress], None] | None:
        self.events.append("progress?")
        return self._heard if self.watching else None

    def _heard(self, progress: Progress) -> None:
        self.events.append("heard")

    def failed(self, error: SysprepError) -> None:
        self.events.append(f"failed restored={len(error.restored)}")

    def generalized(self, plan: Plan) -> None:
        self.events.append("generalized")


def options(
    drive: Path, spec_file: Path, mode: Mode, *, no_shutdown: bool = False, timeout: float = 10
) -> Options:
    return Options(
        mode=mode, spec_path=spec_file, root=drive, no_shutdown=no_shutdown, timeout=timeout
    )


def test_the_recorder_is_a_sysprep_view() -> None:
    view: SysprepView = Recorder()  # mypy checks the protocol here
    assert view.progress is not None


def test_a_check_reports_the_preflight_only(drive, spec_file):
    view = Recorder()
    assert run(options(drive, spec_file, "check"), view) == ExitCode.OK
    assert view.events == ["preflight check dry_run=False refused=False"]


def test_a_generalize_reports_in_order(drive, spec_file):
    view = Recorder()
    assert run(options(drive, spec_file, "generalize", no_shutdown=True), view) == ExitCode.OK
    first, *middle, last = (e for e in view.events if e not in ("log", "heard"))
    assert first == "preflight generalize dry_run=False refused=False"
    assert middle == ["progress?"]  # asked once, before the wait
    assert last == "generalized"
    assert view.events.count("log") >= 2  # installed ..., running ...


def test_a_failed_generalize_reports_failed_then_raises(drive, spec_file):
    scenario(drive, "exit")
    view = Recorder(watching=False)
    with pytest.raises(SysprepError):
        run(options(drive, spec_file, "generalize", timeout=0.5), view)
    assert view.events[-1].startswith("failed restored=")
