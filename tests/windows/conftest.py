"""Fixtures of the Windows bench (docs/windows-bench.md).

- `bench_embed` (session): the extracted official Windows embeddable CPython 3.13 directory;
  `bench_embed38`: the same for CPython 3.8, the agent's floor.
- `bench_stub` (session): the recording stub (stubs/recorder.c) built with mingw-w64.
- `wine_template` (session): a booted Wine prefix, copied per test.
- `prefix` (function): a fresh `bench.Prefix` with every stub installed in system32; see
  `Prefix.render`, `.setupcomplete`, `.agent`, `.run_agent`, `.run_task`, `.cmd`, `.wine`,
  `.reg_query`, `.stub`, `.records`, `.read_text`, `.kill`.

Without Wine, a compiler or the CPython archive the bench is skipped, saying why, unless
VMPREP_BENCH_REQUIRED=1 (CI), where it fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.windows import bench


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.windows)


def _unavailable(why: str) -> None:
    if os.environ.get("VMPREP_BENCH_REQUIRED") == "1":
        pytest.fail(f"the Windows bench is required here (VMPREP_BENCH_REQUIRED=1): {why}")
    pytest.skip(f"the Windows bench cannot run here: {why}")


@pytest.fixture(scope="session")
def bench_embed() -> Path:
    try:
        return bench.embed_python("3.13")
    except bench.BenchUnavailable as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def bench_embed38() -> Path:
    """CPython 3.8 (the agent's floor), embeddable, amd64."""
    try:
        return bench.embed_python("3.8")
    except bench.BenchUnavailable as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def vmprep_site() -> Path:
    """vmprep's dependencies as win_amd64 wheels, unpacked (bench.WHEELS)."""
    try:
        return bench.vmprep_site()
    except bench.BenchUnavailable as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def bench_stub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return bench.build_stub(tmp_path_factory.mktemp("stubs"))
    except bench.BenchUnavailable as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def wine_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if bench.wine_binary() is None:
        _unavailable("wine is not installed (Debian: wine, wine64)")
    try:
        return bench.build_template(tmp_path_factory.mktemp("wine") / "template")
    except bench.BenchUnavailable as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture
def prefix(
    wine_template: Path, bench_stub: Path, bench_embed: Path, tmp_path: Path
) -> Iterator[bench.Prefix]:
    p = bench.new_prefix(wine_template, tmp_path / "prefix", bench_stub, bench_embed, tmp_path)
    try:
        yield p
    finally:
        p.kill()
