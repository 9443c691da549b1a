"""Where the image runs (`image.platform`), and every rule that follows from it, in one place.

Render, validate and `vmprep sysprep` all ask `rules_for(name)`; nothing else in vmprep tests
for a platform by name. A platform decides:

- whether vmprep writes an answer file at all (`answer_file`): a cloud that provisions from its
  own answer file must not find ours, which would win Windows Setup's search order;
- which hook starts the agent at first boot (`hook`), one the platform does not overwrite;
- which `setup` settings the platform owns (`owned`: refused by validate, code
  `platform-setting`), and which the agent applies at first boot instead (`AGENT_APPLIED`);
- how `vmprep sysprep --generalize` runs (`sysprep_flow`) and which preflight checks apply;
- the public sources of each of these rules (`sources`), quoted in docs/platforms/<name>.md.

The spec is the lowest layer, so this module imports nothing from render or sysprep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Hook = Literal["setupcomplete", "setupcomplete2", "ec2launch-task", "startup-task"]
Flow = Literal["sysprep", "sysprep-no-answer-file", "ec2launch", "gcesysprep"]

NAMES = ("generic", "hyperv", "vmware", "azure", "aws", "gce")
DEFAULT = "generic"

# The `setup` settings a user still needs on a platform without an answer file of ours: the
# agent applies them at first boot as baked steps (vmprep.render.platformsteps).
AGENT_APPLIED = ("timezone", "locale", "remote_desktop", "firewall_groups")

# `setup` and `sysprep` settings that only an answer file can carry. Without one of ours they
# would be silently ignored, so validate refuses them when they are written.
ANSWER_FILE_ONLY = {
    ("setup", "copy_profile"): "CopyProfile is an answer-file setting",
    ("setup", "skip_auto_activation"): "SkipAutoActivation is an answer-file setting",
    ("setup", "organization"): "RegisteredOrganization is an answer-file setting",
    ("setup", "owner"): "RegisteredOwner is an answer-file setting",
    ("sysprep", "skip_rearm"): "SkipRearm is an answer-file setting (generalize pass)",
    ("sysprep", "persist_device_installs"): "PersistAllDeviceInstalls is an answer-file setting",
}

_SETUP_DOC = (
    "https://learn.microsoft.com/windows-hardware/manufacture/desktop/"
    "add-a-custom-script-to-windows-setup"
)
_AZURE_GENERALIZE = "https://learn.microsoft.com/azure/virtual-machines/generalize"
_AZURE_UPLOAD = (
    "https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image"
)
_AZURE_SETUPCOMPLETE2 = "https://matt.kotsenas.com/posts/azure-setupcomplete2"
_EC2LAUNCH = "https://docs.aws.amazon.com/AWSEC2/latest/WindowsGuide/ec2launch-v2-settings.html"
_EC2LAUNCH_SYSPREP = (
    "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sysprep-using-ec2launchv2.html"
)
_GCE_REPO = "https://github.com/GoogleCloudPlatform/compute-image-windows"
_GCE_SETUP = _GCE_REPO + "/blob/master/gce/sysprep/instance_setup.ps1"
_GCE_SYSPREP = _GCE_REPO + "/blob/master/gce/sysprep/sysprep.ps1"
_GCE_IMAGE = "https://cloud.google.com/compute/docs/instances/windows/creating-windows-os-image"
_VSPHERE = (
    "https://developer.broadcom.com/xapis/vsphere-web-services-api/latest/"
    "vim.vm.customization.Sysprep.html"
)


@dataclass(frozen=True)
class PlatformRules:
    """What one platform means for render, validate and sysprep (see the module docstring)."""

    name: str
    title: str
    answer_file: bool
    hook: Hook
    sysprep_flow: Flow
    provisioner: str  # who sets the administrator password, the computer name, OOBE
    owned: dict[tuple[str, ...], str] = field(default_factory=dict)  # spec path -> who owns it
    preflight: tuple[str, ...] = ()  # platform-only preflight check ids
    sources: dict[str, str] = field(default_factory=dict)  # rule -> public URL
    debug: tuple[str, ...] = ()  # where to look when the first boot goes wrong

    @property
    def agent_applies_setup(self) -> bool:
        """No answer file of ours: the agent applies time zone, locale, RDP and firewall."""
        return not self.answer_file

    def flow(self, install_dir: str) -> list[str]:
        """The first-boot flow in words, for `render --explain` and the manifest."""
        launcher = f"{install_dir}\\{FIRSTBOOT_CMD}"
        if self.hook == "setupcomplete":
            start = (
                "Windows Setup applies unattend.xml, then runs "
                "C:\\Windows\\Setup\\Scripts\\SetupComplete.cmd, which starts the agent"
            )
        elif self.hook == "setupcomplete2":
            start = (
                "Azure's own SetupComplete.cmd provisions the VM, then calls "
                f"{AZURE_SETUPCOMPLETE2}, which starts the agent"
            )
        elif self.hook == "ec2launch-task":
            start = (
                "EC2Launch v2 runs its executeScript task (postReady, once) from agent-config.yml,"
                f" which runs {launcher} and starts the agent"
            )
        else:
            start = (
                f"the scheduled task {GCE_TASK_NAME} (registered before GCESysprep, at boot, as "
                f"SYSTEM) runs {launcher}, which starts the agent"
            )
        answer = (
            "vmprep's unattend.xml is the answer file"
            if self.answer_file
            else f"no answer file of vmprep's: {self.provisioner} provisions the VM"
        )
        return [answer, start]


FIRSTBOOT_CMD = "firstboot.cmd"  # the fixed launcher on platforms without SetupComplete.cmd
AZURE_SETUPCOMPLETE2 = "C:\\Windows\\OEM\\SetupComplete2.cmd"
EC2LAUNCH_TASK_FILE = "ec2launch-task.json"  # the executeScript task sysprep merges
GCE_TASK_FILE = "firstboot-task.xml"
GCE_TASK_NAME = "vmprep-firstboot"

# Settings every cloud here owns: they come from the VM's API at create time, through the
# cloud's own answer file or provisioning agent; the image cannot set them.
_CLOUD_OWNED_KEYS: tuple[tuple[str, ...], ...] = (
    ("setup", "administrator"),
    ("setup", "accounts"),
    ("setup", "computer_name"),
    ("setup", "product_key"),
    ("setup", "oobe"),
    ("setup", "auto_logon"),
    ("setup", "first_logon_commands"),
)


def _owned(who: dict[str, str]) -> dict[tuple[str, ...], str]:
    return {path: who.get(path[-1], who["*"]) for path in _CLOUD_OWNED_KEYS}


_GENERIC_SOURCES = {
    "SetupComplete.cmd runs as SYSTEM after Setup, before the logon screen": _SETUP_DOC,
}

PLATFORMS: dict[str, PlatformRules] = {
    "generic": PlatformRules(
        "generic",
        "any hypervisor (Windows Setup with vmprep's answer file)",
        answer_file=True,
        hook="setupcomplete",
        sysprep_flow="sysprep",
        provisioner="Windows Setup with vmprep's answer file",
        sources=_GENERIC_SOURCES,
        debug=(
            "C:\\Windows\\Panther\\setupact.log and setuperr.log (Windows Setup)",
            "C:\\ProgramData\\vmprep\\setupcomplete.log (the launcher)",
        ),
    ),
    "hyperv": PlatformRules(
        "hyperv",
        "Hyper-V",
        answer_file=True,
        hook="setupcomplete",
        sysprep_flow="sysprep",
        provisioner="Windows Setup with vmprep's answer file",
        sources=_GENERIC_SOURCES,
        debug=("C:\\Windows\\Panther\\setupact.log", "C:\\ProgramData\\vmprep\\setupcomplete.log"),
    ),
    "vmware": PlatformRules(
        "vmware",
        "VMware vSphere",
        answer_file=True,
        hook="setupcomplete",
        sysprep_flow="sysprep",
        provisioner=(
            "Windows Setup with vmprep's answer file (a vSphere guest customization "
            "specification replaces it with its own)"
        ),
        sources={
            **_GENERIC_SOURCES,
            "guest customization writes its own Sysprep answer file": _VSPHERE,
        },
        debug=("C:\\Windows\\Panther\\setupact.log", "C:\\ProgramData\\vmprep\\setupcomplete.log"),
    ),
    "azure": PlatformRules(
        "azure",
        "Microsoft Azure",
        answer_file=False,
        hook="setupcomplete2",
        sysprep_flow="sysprep-no-answer-file",
        provisioner="the Azure provisioning agent (from the VM's osProfile)",
        owned=_owned(
            {
                "administrator": "the VM's osProfile adminUsername/adminPassword",
                "accounts": "the VM's osProfile (more accounts: a local_user agent step)",
                "computer_name": "the VM's osProfile computerName",
                "product_key": "Azure's KMS activation",
                "auto_logon": "the VM's additionalUnattendContent (AutoLogon), at create time",
                "first_logon_commands": (
                    "the VM's additionalUnattendContent (FirstLogonCommands), at create time"
                ),
                "*": "Azure's own answer file on the provisioning media",
            }
        ),
        preflight=("azure-agents", "azure-cdrom", "azure-dhcp"),
        sources={
            "custom answer files are not supported; do not use /unattend": _AZURE_GENERALIZE,
            "the CD/DVD driver must stay enabled; DHCP; remove leftover answer files": (
                _AZURE_UPLOAD
            ),
            "Azure's SetupComplete.cmd calls %WINDIR%\\OEM\\SetupComplete2.cmd": (
                _AZURE_SETUPCOMPLETE2
            ),
        },
        debug=(
            "C:\\Windows\\Panther\\WaSetup.log (Azure's SetupComplete.cmd and SetupComplete2)",
            "C:\\WindowsAzure\\Logs\\WaAppAgent.log (the guest agent)",
            "C:\\ProgramData\\vmprep\\setupcomplete.log (the launcher)",
        ),
    ),
    "aws": PlatformRules(
        "aws",
        "Amazon EC2 (EC2Launch v2)",
        answer_file=False,
        hook="ec2launch-task",
        sysprep_flow="ec2launch",
        provisioner="EC2Launch v2 (its own answer file and its setAdminAccount task)",
        owned=_owned(
            {
                "administrator": "EC2Launch's setAdminAccount task (the key pair's password)",
                "computer_name": "EC2Launch's setHostName task",
                "product_key": "EC2Launch's activateWindows task (AWS KMS)",
                "*": "EC2Launch v2's own answer file (C:\\ProgramData\\Amazon\\EC2Launch\\sysprep)",
            }
        ),
        preflight=("ec2launch",),
        sources={
            "ec2launch sysprep resets its state, updates its unattend.xml and runs Sysprep": (
                _EC2LAUNCH
            ),
            "executeScript tasks in agent-config.yml (frequency once: skipped after .run-once)": (
                _EC2LAUNCH
            ),
            "agent-config.yml is edited through get-agent-config and checked with validate": (
                _EC2LAUNCH
            ),
            "Sysprep with EC2Launch v2": _EC2LAUNCH_SYSPREP,
        },
        debug=(
            "C:\\ProgramData\\Amazon\\EC2Launch\\log\\agent.log (the executeScript task)",
            "C:\\ProgramData\\vmprep\\setupcomplete.log (the launcher)",
        ),
    ),
    "gce": PlatformRules(
        "gce",
        "Google Compute Engine",
        answer_file=False,
        hook="startup-task",
        sysprep_flow="gcesysprep",
        provisioner="GCESysprep and instance_setup.ps1 (the Google guest environment)",
        owned=_owned(
            {
                "administrator": (
                    "the Google guest agent (it disables Administrator; accounts come from "
                    "`gcloud compute reset-windows-password`)"
                ),
                "accounts": "the Google guest agent (windows-keys metadata)",
                "computer_name": "instance_setup.ps1 (the instance name from the metadata server)",
                "product_key": "instance_setup.ps1 (KMS activation)",
                "*": "GCESysprep's own answer file",
            }
        ),
        preflight=("gce-agents",),
        sources={
            "GCESysprep runs Sysprep with its own unattended.xml and sets Setup\\CmdLine": (
                _GCE_SYSPREP
            ),
            "instance_setup.ps1 rewrites SetupComplete.cmd in specialize and deletes it": (
                _GCE_SETUP
            ),
            "instance_setup.ps1 disables the built-in Administrator": _GCE_SETUP,
            "a startup task survives generalize (GCESysprep deletes its own first)": _GCE_SYSPREP,
            "GCESysprep -NoShutdown seals a custom image": _GCE_IMAGE,
        },
        debug=(
            "the serial console (GCEInstanceSetup and GCEMetadataScripts lines)",
            "C:\\ProgramData\\vmprep\\setupcomplete.log (the launcher)",
            "`schtasks /Query /TN vmprep-firstboot /V` (the first-boot task)",
        ),
    ),
}


def rules_for(name: str | None) -> PlatformRules:
    """The rules of a platform name from a valid spec (the schema enumerates them)."""
    return PLATFORMS[name or DEFAULT]


def platform_of(data: dict[str, object]) -> PlatformRules:
    """The rules for a spec document (a dict with defaults applied, or not)."""
    image = data.get("image")
    name = image.get("platform") if isinstance(image, dict) else None
    return rules_for(name if isinstance(name, str) and name in PLATFORMS else None)
