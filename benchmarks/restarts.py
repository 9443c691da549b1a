"""Restarts each example costs at first boot, before (`main`'s agent) and after (this tree).

    .venv/bin/python benchmarks/restarts.py [--before REF]

Each example in examples/ (and examples/platforms/, examples/packer/) is rendered and its
agent run end to end, computed the same way for both agents: agent.json as render writes it,
a real `vmprep serve` on 127.0.0.1 over examples/configs, the Windows platform recording its
processes (tests/agent/firstboot.py: a rename or a join answers 3010, a `shutdown.exe` call is
a restart and the agent is started again). The before agent is REF's `vmprep/agent`
(`git archive`), run with `python -S` so that nothing of this tree leaks in. It does not ask
for the secrets its baked steps need (issue #21), so it fails where they do; the
"before, secrets baked in" column works around that by writing them into agent.json, as one
would have to. (ecdsa and six, which render vendors into agent.pyz, are copied beside it.)
Examples whose steps need the internet (a download) or write a Windows path (a file step,
off Windows) are listed as skipped.
Printed per example: restarts, Add-Computer calls (with -NewName), final state.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agent.firstboot import ENV, cannot_run_here, first_boot, rendered_config
from tests.server.conftest import ServeProcess
from vmprep.server.keys import write_keypair

EXAMPLES = sorted(
    p for d in ("", "platforms", "packer") for p in (ROOT / "examples" / d).glob("*.yaml")
)
BAKED_WORKAROUND = {
    "join_user": ENV["VMPREP_JOIN_USER"],
    "join_password": ENV["VMPREP_JOIN_PASSWORD"],
    "svc_app_password": ENV["VMPREP_SVC_APP_PASSWORD"],
}


def tree_of(ref: str, dest: Path) -> Path:
    """REF's vmprep package (the agent imports only itself and the standard library)."""
    archive = dest / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref, "vmprep"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "tree", filter="data")
    # The pure-Python packages render vendors into agent.pyz, beside it as in the payload.
    import ecdsa
    import six

    shutil.copytree(Path(ecdsa.__file__).parent, dest / "tree" / "ecdsa")
    shutil.copy(six.__file__, dest / "tree" / "six.py")
    return dest / "tree"


def run_before(tree: Path, config: Path, state: Path) -> dict[str, Any]:
    script = ROOT / "tests" / "agent" / "firstboot.py"
    out = subprocess.run(
        [sys.executable, "-S", str(script), str(tree), str(config), str(state)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"the before run failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def cell(result: dict[str, Any] | None) -> str:
    if result is None:
        return "skipped"
    if result["state"] != "done" and result.get("error"):
        error = result["error"]
        return f"{result['restarts']} restart(s), {result['state']}: {error['message'][:90]}"
    joins = result["add_computer"]
    new_name = result["add_computer_new_name"]
    return f"{result['restarts']} restart(s), Add-Computer {joins} ({new_name} -NewName), {result['state']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="the git ref to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        key = write_keypair(tmp / "key")
        serve_args = ["--configs", str(ROOT / "examples" / "configs"), "--poll", "0"]
        serve_args += ["--data-dir", str(tmp / "data"), "--key", str(tmp / "key.pem")]
        server = ServeProcess(serve_args, env=ENV).start()
        tree = tree_of(args.before, tmp)
        rows: list[tuple[str, Any, Any, Any]] = []
        try:
            for n, example in enumerate(EXAMPLES):
                work = tmp / f"e{n}"
                config = rendered_config(example, work / "cfg", server.url, key.public_form)
                name = str(example.relative_to(ROOT / "examples"))
                if cannot_run_here(json.loads(config.read_text())["steps"]):
                    rows.append((name, None, None, None))
                    continue
                before = run_before(tree, config, work / "before")
                baked = json.loads(config.read_text())
                baked["secrets"].update(BAKED_WORKAROUND)
                worked_around = work / "cfg" / "agent-baked.json"
                worked_around.write_text(json.dumps(baked))
                before_baked = run_before(tree, worked_around, work / "before-baked")
                after = first_boot(config, work / "after", quiet=True)
                rows.append((name, before, before_baked, after))
        finally:
            server.stop()
    print(f"restarts at first boot, {args.before} (before) vs this tree (after)")
    for name, before, before_baked, after in rows:
        print(f"\n{name}")
        print(f"  before:                     {cell(before)}")
        print(f"  before, secrets baked in:   {cell(before_baked)}")
        print(f"  after:                      {cell(after)}")
        if after is not None and before_baked is not None:
            saved = before_baked["restarts"] - after["restarts"]
            print(f"  restarts saved:             {saved}")


if __name__ == "__main__":
    main()
