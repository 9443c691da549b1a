"""Preflight checks that only one `image.platform` runs, each with its source."""

from __future__ import annotations

import re

from vmprep.sysprep import probes
from vmprep.sysprep.flows import EC2LAUNCH_EXE
from vmprep.sysprep.preflight import CheckContext, CheckResult, check, failed, passed, warned

AZURE_UPLOAD = (
    "https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image"
)
EC2LAUNCH = "https://docs.aws.amazon.com/AWSEC2/latest/WindowsGuide/ec2launch-v2-settings.html"
GCE_AGENT = "https://github.com/GoogleCloudPlatform/guest-agent"
CDROM_SERVICE = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\cdrom"
GCE_SYSPREP_DIR = "Program Files/Google/Compute Engine/sysprep"


@check("azure-agents", "azure")
def azure_agents(ctx: CheckContext) -> CheckResult:
    """The Azure VM agent (WindowsAzureGuestAgent) and RdAgent installed and running: Sysprep
    racing them leaves an undeployable image (hashicorp/packer#9261; prepare-for-upload)."""
    services = probes.parse_services(ctx.facts())
    missing = [n for n in probes.AZURE_AGENT_SERVICES if n not in services]
    stopped = [n for n in probes.AZURE_AGENT_SERVICES if services.get(n, "Running") != "Running"]
    if missing or stopped:
        what = [f"{n} (not installed)" for n in missing]
        what += [f"{n} ({services[n] or 'unknown'})" for n in stopped]
        return failed(
            "azure-agents",
            "the Azure agents must be installed and running: " + ", ".join(what),
            f"install the Azure VM agent and wait until both run ({AZURE_UPLOAD})",
        )
    return passed("azure-agents", "RdAgent and WindowsAzureGuestAgent are running")


@check("azure-cdrom", "azure")
def azure_cdrom(ctx: CheckContext) -> CheckResult:
    """Azure attaches the provisioning media as a DVD: a disabled cdrom driver leaves the VM
    stuck at OOBE (prepare-for-upload-vhd-image)."""
    start = ctx.platform.reg_value(CDROM_SERVICE, "Start")
    if start == 4:
        return failed(
            "azure-cdrom",
            "the CD/DVD driver (cdrom) is disabled: Azure's provisioning media cannot be read",
            f"set {CDROM_SERVICE} Start to 1 ({AZURE_UPLOAD})",
        )
    return passed("azure-cdrom", "the CD/DVD driver is not disabled")


@check("azure-dhcp", "azure")
def azure_dhcp(ctx: CheckContext) -> CheckResult:
    """Azure gives addresses by DHCP; a static one is lost on a new VM (prepare-for-upload)."""
    static = probes.parse_dhcp(ctx.facts())
    if static:
        return failed(
            "azure-dhcp",
            "adapter(s) with a static address: " + ", ".join(static),
            f"switch them to DHCP (Set-NetIPInterface -Dhcp Enabled) ({AZURE_UPLOAD})",
            tuple(static),
        )
    return passed("azure-dhcp", "every adapter uses DHCP")


@check("ec2launch", "aws")
def ec2launch(ctx: CheckContext) -> CheckResult:
    """EC2Launch v2 present, version 2.x, and not running (`ec2launch status`: 0 success,
    1 failed, 2 running, 3-5 unknown) (ec2launch-v2-settings)."""
    exe = ctx.platform.root / EC2LAUNCH_EXE
    if not exe.is_file():
        return failed(
            "ec2launch",
            f"EC2Launch v2 is not installed ({exe})",
            f"image.platform aws needs EC2Launch v2: install it, or start from an AWS AMI ({EC2LAUNCH})",
        )
    version = ctx.platform.run([str(exe), "version"], timeout=60)
    found = re.search(r"\b(\d+)\.(\d+)\.(\d+)", version.stdout)
    if version.returncode != 0 or found is None or int(found.group(1)) < 2:
        shown = version.stdout.strip() or version.stderr.strip() or f"exit {version.returncode}"
        return failed(
            "ec2launch",
            f"EC2Launch.exe is not EC2Launch v2 ({shown})",
            f"install EC2Launch v2 ({EC2LAUNCH})",
        )
    status = ctx.platform.run([str(exe), "status"], timeout=60).returncode
    if status == 2:
        return failed(
            "ec2launch",
            f"EC2Launch v2 {found.group(0)} is still running its tasks",
            "wait for it (`EC2Launch.exe status --block`), then try again",
        )
    if status != 0:
        return warned(
            "ec2launch",
            f"EC2Launch v2 {found.group(0)}: its last run did not succeed (status {status})",
            "see C:\\ProgramData\\Amazon\\EC2Launch\\log\\agent.log; `ec2launch sysprep` resets it",
        )
    return passed("ec2launch", f"EC2Launch v2 {found.group(0)}, its last run succeeded")


@check("gce-agents", "gce")
def gce_agents(ctx: CheckContext) -> CheckResult:
    """The Google guest environment: GCEAgent running and the GCESysprep scripts present."""
    services = probes.parse_services(ctx.facts())
    sysprep_dir = ctx.platform.root / GCE_SYSPREP_DIR
    problems = []
    if services.get("GCEAgent") != "Running":
        problems.append(f"GCEAgent is {services.get('GCEAgent') or 'not installed'}")
    if not sysprep_dir.is_dir():
        problems.append(
            f"no {GCE_SYSPREP_DIR.replace('/', chr(92))} (google-compute-engine-sysprep)"
        )
    if problems:
        return failed(
            "gce-agents",
            "the Google guest environment is incomplete: " + "; ".join(problems),
            f"install the Windows guest environment (googet install google-compute-engine-windows "
            f"google-compute-engine-sysprep) ({GCE_AGENT})",
        )
    return passed("gce-agents", "GCEAgent is running and GCESysprep is installed")
