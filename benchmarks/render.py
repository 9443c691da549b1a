"""`vmprep render` of the largest example, as a fresh process, against `vmprep validate` of the
same file in the same run. Target: render < 1.5x validate.

    .venv/bin/python benchmarks/render.py [--runs N] [SPEC]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VMPREP = [sys.executable, "-m", "vmprep"]
TARGET = 1.5


def largest_example() -> Path:
    return max((ROOT / "examples").glob("*.yaml"), key=lambda p: p.stat().st_size)


def secret_env(spec_path: Path) -> dict[str, str]:
    """A dummy value for every {env: NAME} the spec references (render must resolve them)."""
    from vmprep.render.secrets import find_refs
    from vmprep.spec import load_spec

    refs = find_refs(load_spec(spec_path))
    return {ref.target: "benchmark-Secret-1" for ref in refs if ref.kind == "env"}


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh process. CPU time (user + system) is the steadier
    figure on a shared machine; both are printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{result.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("spec", nargs="?", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    spec = args.spec or largest_example()
    env = {**os.environ, **secret_env(spec)}
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out")
        render = [*VMPREP, "render", str(spec), "-o", out, "--force"]
        validate = [*VMPREP, "validate", str(spec)]
        timed(validate, env)  # warm the OS caches once for both
        timed(render, env)
        validate_s, render_s = [], []
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            validate_s.append(timed(validate, env))
            render_s.append(timed(render, env))
    print(f"spec: {spec.relative_to(ROOT) if spec.is_relative_to(ROOT) else spec}")
    for index, label in ((0, "wall"), (1, "CPU")):
        v = statistics.median(s[index] for s in validate_s)
        r = statistics.median(s[index] for s in render_s)
        verdict = "ok" if r / v < TARGET else "SLOWER THAN TARGET"
        print(
            f"{label:>4}: validate {v * 1000:.0f} ms (baseline), render {r * 1000:.0f} ms, "
            f"render / validate = {r / v:.2f} (target < {TARGET}): {verdict}"
        )
    print(f"medians over {args.runs} interleaved runs of fresh processes")


if __name__ == "__main__":
    main()
