"""A first boot of a rendered image, in-process, with the Windows platform recording its
processes instead of running them: every argv (and the child's environment) is kept, a
`shutdown.exe` call is a restart, and the run is repeated after each one until the agent says
done or failed. Used by tests/agent/e2e/test_examples.py and benchmarks/restarts.py.

As a script (`python -S tests/agent/firstboot.py TREE CONFIG STATE_DIR`) it imports the agent
from TREE — another checkout, e.g. `main`, for a before/after comparison — and prints the
result as JSON. Only the standard library and the agent are imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

JOIN_MARK = "Add-Computer"
APP_01 = "6d1f0b7e-4a2c-4c8e-9f10-2b7c5e3a9d01"  # examples/configs/roles/app.yaml
# What render and `vmprep serve --configs examples/configs` read (test values).
ENV = {
    "VMPREP_ADMIN_PASSWORD": "Adm1n-P@ss",
    "VMPREP_JOIN_USER": "CORP\\joiner",
    "VMPREP_JOIN_PASSWORD": "J0in-P@ss",
    "VMPREP_SVC_APP_PASSWORD": "Svc-P@ss",
    "VMPREP_FLEET_TOKEN": "fleet-token",
}


def recording_platform(state_dir: Path, options: dict[str, Any], image_os: str, *rest: Any) -> Any:
    """The agent's WindowsPlatform, with processes, the registry and the boot id faked."""
    from vmprep.agent.platform.base import ProcResult
    from vmprep.agent.platform.winplatform import WindowsPlatform

    class Registry:
        HKEY_LOCAL_MACHINE, HKEY_CURRENT_USER, HKEY_USERS, HKEY_CLASSES_ROOT = 1, 2, 3, 4
        KEY_WRITE, KEY_WOW64_64KEY = 0x20006, 0x100
        REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_QWORD, REG_MULTI_SZ, REG_BINARY = 1, 2, 4, 11, 7, 3

        def __init__(self) -> None:
            self.values: dict[str, Any] = {}

        def CreateKeyEx(self, hive: Any, sub: str, reserved: int, access: int) -> Any:
            self.sub = sub
            return self

        OpenKeyEx = CreateKeyEx

        def SetValueEx(self, key: Any, name: str, reserved: int, kind: int, value: Any) -> None:
            self.values[f"{self.sub}\\{name}"] = value

        def DeleteValue(self, key: Any, name: str) -> None:
            self.values.pop(f"{self.sub}\\{name}", None)

        def QueryValueEx(self, key: Any, name: str) -> tuple[Any, int]:
            if f"{self.sub}\\{name}" not in self.values:
                raise FileNotFoundError(name)  # e.g. Setup's state: none, Setup counts as done
            return self.values[f"{self.sub}\\{name}"], 1

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    class Recording(WindowsPlatform):
        def __init__(self) -> None:
            super().__init__(state_dir, options, image_os, *rest, winreg=Registry())  # rest: cloud
            self.calls: list[dict[str, Any]] = []

        def run(self, argv: Any, *, timeout: Any = None, env: Any = None, **kw: Any) -> Any:
            import base64

            script = ""
            if argv[0] == "powershell.exe" and "-EncodedCommand" in argv:
                script = base64.b64decode(argv[argv.index("-EncodedCommand") + 1]).decode(
                    "utf-16-le"
                )
            names = sorted(env or {})
            self.calls.append({"argv": list(argv), "script": script, "env": names})
            if argv[0] == "shutdown.exe":
                return ProcResult(0, "")
            if argv[:2] == ["sc.exe", "query"]:
                return ProcResult(0, "STATE              : 4  RUNNING")
            if JOIN_MARK in script or "Rename-Computer" in script:
                return ProcResult(3010, "")  # a rename or a join needs a restart
            return ProcResult(0, "")

        def boot_id(self) -> str | None:
            return (state_dir / "boot_id").read_text()

        def same_boot(self, recorded: str | None, current: str) -> bool:
            return recorded == current

    return Recording()


def cannot_run_here(steps: list[dict[str, Any]]) -> str | None:
    """Why a recorded run on this machine cannot carry these steps out, or None: the network
    they need, or (off Windows) a file they write at a Windows path."""
    import os

    for step in steps:
        if "download" in step:
            return f"step {step['id']} downloads from the internet"
        if "http" in step.get("wait_for", {}):
            return f"step {step['id']} waits for {step['wait_for']['http']}"
        if "file" in step and os.name != "nt":
            return f"step {step['id']} writes {step['file']['path']}, a Windows path"
    return None


def rendered_config(example: Path, root: Path, base: str, public_key: str) -> Path:
    """agent.json as render writes it, pointed at the loopback service and a fake /sys."""
    import os

    from vmprep.render import render
    from vmprep.spec import load_spec

    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        files = render(load_spec(example)).files
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    name = next(n for n in files if n.endswith("agent.json"))
    cfg = json.loads(files[name])
    ph = cfg["phone_home"]
    if ph is not None:
        ph["url"] = [f"{base}/v1/config/{{role}}/{{instance_id}}"]
        ph["report_url"] = f"{base}/v1/report/{{instance_id}}"
        ph["trusted_keys"] = [public_key]
        ph["allow_insecure_http"] = True
        ph["retry"] = {"attempts": 5, "initial": "100ms", "max": "300ms"}
    dmi = root / "sys/sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text(APP_01.upper() + "\n")
    if cfg.get("inputs"):  # deploy-time inputs (docs/inputs.md): the deployment says `sql`
        (root / "inputs.txt").write_text("[vmprep]\nrole = sql\n", encoding="utf-8")
        cfg["inputs"]["sources"] = ["file"]
        cfg["inputs"]["file"] = str(root / "inputs.txt")
    cfg["identity"] = ["smbios-uuid"]
    cfg["platform_options"] = {"sys_root": str(root / "sys")}
    path = root / "agent.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def first_boot(
    config: Path, state_dir: Path, max_runs: int = 8, *, quiet: bool = False
) -> dict[str, Any]:
    """Run the agent (restarting after each shutdown.exe) until it is done or failed."""
    from vmprep.agent.config import load_config
    from vmprep.agent.logs import Log
    from vmprep.agent.run import Run
    from vmprep.agent.secrets import Vault

    state_dir.mkdir(parents=True, exist_ok=True)
    boot = state_dir / "boot_id"
    boot.write_text("1")
    calls: list[dict[str, Any]] = []
    codes: list[int] = []
    for _ in range(max_runs):
        cfg = load_config(config)
        vault = Vault(cfg.secrets)
        echo = None if quiet else sys.stderr
        log = Log(state_dir / "logs", level="debug", redact=vault.redact, echo=echo)
        run = Run(cfg, state_dir, vault, log)
        platform = recording_platform(state_dir, cfg.platform_options, cfg.os)
        run.platform = platform
        try:
            codes.append(run.execute())
        finally:
            if run.reporter is not None:
                run.reporter.close(timeout=30)
        calls += platform.calls
        if codes[-1] != 2:
            break
        boot.write_text(str(int(boot.read_text()) + 1))  # the restart
    state = json.loads((state_dir / "state" / f"{run.state['instance_id']}.json").read_text())
    scripts = [c["script"] for c in calls]
    return {
        "exit": codes[-1],
        "runs": len(codes),
        "restarts": sum(c["argv"][0] == "shutdown.exe" for c in calls),
        "add_computer": sum(JOIN_MARK in s for s in scripts),
        "add_computer_new_name": sum(JOIN_MARK in s and "-NewName" in s for s in scripts),
        "rename_computer_alone": sum(
            "Rename-Computer" in s and JOIN_MARK not in s for s in scripts
        ),
        "calls": calls,
        "state": state["state"],
        "steps": {k: v["status"] for k, v in state["steps"].items()},
        "error": state.get("error"),
    }


if __name__ == "__main__":
    tree, config_path, state_path = sys.argv[1:4]
    sys.path.insert(0, tree)
    result = first_boot(Path(config_path), Path(state_path), quiet=True)
    result.pop("calls")
    print(json.dumps(result))
