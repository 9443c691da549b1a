"""Has Windows Setup (and the cloud's own agent) finished? Read before the agent may reboot.

Windows Setup: a reboot while Setup is still completing leaves the machine in a bad state.
- `HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State` `ImageState` (REG_SZ) is
  `IMAGE_STATE_COMPLETE` once "the specialize and oobeSystem configuration passes are
  complete"; `IMAGE_STATE_UNDEPLOYABLE` while Setup is still running a phase.
  https://learn.microsoft.com/windows-hardware/manufacture/desktop/windows-setup-states
- `HKLM\\SYSTEM\\Setup\\Status\\SysprepStatus` `GeneralizationState` (REG_DWORD) is 7 when
  Sysprep's work is done: cloudbase-init polls it every second until it is 7, and skips the
  check when the value does not exist (`wait_for_boot_completion` in cloudbase-init's
  `cloudbaseinit/osutils/windows.py`, https://github.com/cloudbase/cloudbase-init).
A value that does not exist says nothing: it is skipped, as cloudbase-init does.

The cloud's agent, where a reboot before it is done costs something (docs/agent.md):
- azure: the Azure VM Agent (`WindowsAzureGuestAgent` service) reports the VM's provisioning
  state to Azure; the agent waits for it to run.
  https://learn.microsoft.com/azure/virtual-machines/extensions/agent-windows
- aws: EC2Launch v2 runs its boot, network, preReady and postReady stages at launch (it sets
  the administrator password, then reports "Windows is ready"); `EC2Launch.exe status` exits
  0 when it has finished, 1 when it finished with a failure, 2 while it runs.
  https://docs.aws.amazon.com/AWSEC2/latest/WindowsGuide/ec2launch-v2-overview.html
- gce, generic, hyperv, vmware: nothing beyond Windows Setup. (GCE's instance setup runs in
  specialize and from the SetupComplete.cmd it writes, i.e. inside Windows Setup:
  `sysprep/instance_setup.ps1` in https://github.com/GoogleCloudPlatform/compute-image-windows.)
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from collections.abc import Callable
    from typing import Any

    from vmprep.agent.platform.base import ProcResult

STATE_KEY = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State"
SYSPREP_KEY = "SYSTEM\\Setup\\Status\\SysprepStatus"
IMAGE_STATE_COMPLETE = "IMAGE_STATE_COMPLETE"
GENERALIZATION_DONE = 7
AZURE_GUEST_AGENT = "WindowsAzureGuestAgent"
KEY_READ = 0x20019


def read_hklm(winreg: Any, key: str, name: str) -> Any:
    """A value under HKLM (64-bit view), or None when the key or value does not exist."""
    access = getattr(winreg, "KEY_READ", KEY_READ) | winreg.KEY_WOW64_64KEY
    try:
        with winreg.OpenKeyEx(winreg.HKEY_LOCAL_MACHINE, key, 0, access) as handle:
            return winreg.QueryValueEx(handle, name)[0]
    except FileNotFoundError:
        return None


def setup_pending(winreg: Any) -> str | None:
    """Why Windows Setup is not finished, or None."""
    try:
        return _setup_pending(winreg)
    except OSError as exc:  # not FileNotFoundError: access denied, a broken hive
        return f"cannot read the setup state from the registry: {exc}"


def _setup_pending(winreg: Any) -> str | None:
    state = read_hklm(winreg, STATE_KEY, "ImageState")
    if state is not None and state != IMAGE_STATE_COMPLETE:
        return f"ImageState is {state}, not {IMAGE_STATE_COMPLETE}"
    generalization = read_hklm(winreg, SYSPREP_KEY, "GeneralizationState")
    if generalization is not None and generalization != GENERALIZATION_DONE:
        return f"SysprepStatus GeneralizationState is {generalization}, not {GENERALIZATION_DONE}"
    return None


def ec2launch_exe() -> str:
    program_files = os.environ.get("PROGRAMFILES") or "C:\\Program Files"
    return program_files + "\\Amazon\\EC2Launch\\EC2Launch.exe"


def cloud_pending(
    cloud: str,
    run: Callable[[list[str]], ProcResult],
    service_running: Callable[[str], bool],
    exists: Callable[[str], bool] = os.path.exists,
) -> str | None:
    """Why the cloud's agent is not done with the instance yet, or None."""
    if cloud == "azure" and not service_running(AZURE_GUEST_AGENT):
        return f"the Azure VM Agent ({AZURE_GUEST_AGENT}) is not running yet"
    if cloud == "aws":
        exe = ec2launch_exe()
        if not exists(exe):
            return None  # no EC2Launch v2 on this image: nothing to wait for
        code = run([exe, "status"]).exit_code
        if code not in (0, 1):
            return (
                f"EC2Launch v2 has not finished its launch tasks (`EC2Launch.exe status`: {code})"
            )
    return None
