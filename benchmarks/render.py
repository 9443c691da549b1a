"""`vmprep render` of the largest example, as a fresh process, against `vmprep validate` of the
same file in the same run. Target: render < 1.5x validate.

    .venv/bin/python benchmarks/render.py [--runs N] [SPEC]
"""

from __future__ import annotations

import argparse
import os
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


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{result.stderr.decode(errors='replace')}")
    return elapsed


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
    v, r = statistics.median(validate_s), statistics.median(render_s)
    print(f"spec: {spec.relative_to(ROOT) if spec.is_relative_to(ROOT) else spec}")
    print(f"validate: median {v * 1000:.0f} ms over {args.runs} runs (baseline)")
    print(f"render:   median {r * 1000:.0f} ms over {args.runs} runs")
    verdict = "ok" if r / v < TARGET else "SLOWER THAN TARGET"
    print(f"render / validate = {r / v:.2f} (target < {TARGET}): {verdict}")


if __name__ == "__main__":
    main()
