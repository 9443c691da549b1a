// A Windows Server 2022 image on Compute Engine (googlecompute) whose instances configure
// themselves with vmprep. The spec is examples/platforms/gce.yaml (`image.platform: gce`):
// GCESysprep keeps running Sysprep with Google's answer file, and instance_setup.ps1 keeps
// naming the VM and handling accounts. `vmprep sysprep --generalize` registers the scheduled
// task vmprep-firstboot (at boot, as SYSTEM) that starts the agent, then runs
// `GCESysprep -NoShutdown`. See ../README.md and docs/platforms/gce.md.

packer {
  required_plugins {
    googlecompute = {
      source  = "github.com/hashicorp/googlecompute"
      version = ">= 1.1.0"
    }
  }
}

variable "project_id" {
  type = string
}

variable "zone" {
  type    = string
  default = "europe-west1-b"
}

variable "vmprep_wheel" {
  type        = string
  description = "Local path of the vmprep wheel (python -m pip wheel --no-deps -w dist .)."
}

variable "python_installer_url" {
  type        = string
  description = "The python.org Windows amd64 installer for Python 3.12."
}

variable "python_installer_sha256" {
  type        = string
  description = "Its SHA-256, as python.org publishes it."
}

locals {
  staging = "C:\\Windows\\Temp\\vmprep"
  python  = "C:\\Program Files\\Python312\\python.exe"
}

source "googlecompute" "reference" {
  project_id          = var.project_id
  zone                = var.zone
  machine_type        = "n2-standard-2"
  source_image_family = "windows-2022"
  image_name          = "batch-gce-{{timestamp}}"
  disk_size           = 50
  communicator        = "winrm"
  winrm_username      = "packer_user"
  winrm_insecure      = true
  winrm_use_ssl       = true
  // The build VM only: Packer's documented WinRM bootstrap for Windows on Compute Engine.
  metadata = {
    sysprep-specialize-script-cmd = "winrm quickconfig -quiet & net user /add packer_user & net localgroup administrators packer_user /add & winrm set winrm/config/service/auth @{Basic=\"true\"}"
  }
}

build {
  sources = ["source.googlecompute.reference"]

  // ---- your provisioners: roles, software, Windows Update -------------------------------

  provisioner "windows-restart" {}

  // ---- vmprep: install Python for all users, then vmprep itself ---------------------------
  provisioner "powershell" {
    script           = "${path.root}/../scripts/install-python.ps1"
    environment_vars = [
      "VMPREP_STAGING=${local.staging}",
      "PYTHON_INSTALLER_URL=${var.python_installer_url}",
      "PYTHON_INSTALLER_SHA256=${var.python_installer_sha256}",
    ]
  }

  provisioner "file" {
    sources     = [var.vmprep_wheel, "${path.root}/../../platforms/gce.yaml"]
    destination = "${local.staging}\\"
  }

  provisioner "powershell" {
    inline = [
      "$ErrorActionPreference = 'Stop'",
      "& '${local.python}' -m pip install --disable-pip-version-check '${local.staging}\\${basename(var.vmprep_wheel)}'",
      "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }",
    ]
  }

  // ---- vmprep: generalize through GCESysprep ---------------------------------------------
  // Exit 3: a preflight check refused (e.g. `gce-agents`); nothing changed. Exit 4: Sysprep
  // failed; the first-boot task was deleted again and every file restored.
  provisioner "powershell" {
    inline = [
      "$ErrorActionPreference = 'Stop'",
      "& '${local.python}' -m vmprep --no-color sysprep --generalize --no-shutdown '${local.staging}\\gce.yaml'",
      "$code = $LASTEXITCODE",
      "Remove-Item -Recurse -Force '${local.staging}'",
      "exit $code",
    ]
  }

  // The VM is generalized and still running: googlecompute shuts it down and creates the image.
}
