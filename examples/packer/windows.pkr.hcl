// A Windows Server 2022 image on Azure (azure-arm) whose instances configure themselves with
// vmprep. Your own provisioners (roles, software, updates) go where marked; the last ones
// install Python and vmprep from uploaded files (the VM needs no package index and no
// internet), then generalize with `vmprep sysprep --generalize --no-shutdown`, and Packer
// captures the image. The agent runs on its own bundled CPython (agent.runtime.embedded).
// spec.yaml.pkrtpl says `image.platform: azure`, so vmprep runs Sysprep WITHOUT an answer file
// (Azure does not support custom ones) and starts its agent from
// C:\Windows\OEM\SetupComplete2.cmd. See README.md beside this file.

packer {
  required_plugins {
    azure = {
      source  = "github.com/hashicorp/azure"
      version = ">= 2.0.0"
    }
  }
}

variable "subscription_id" {
  type = string
}

variable "resource_group" {
  type        = string
  description = "Resource group that receives the managed image."
}

variable "location" {
  type    = string
  default = "westeurope"
}

variable "image_name" {
  type    = string
  default = "web-frontend"
}

variable "vmprep_wheelhouse" {
  type        = string
  description = "Local directory from `vmprep wheelhouse -o DIR --platform win_amd64 --python-version 3.12`."
}

variable "python_installer" {
  type        = string
  description = "Local path of the python.org Windows amd64 installer for Python 3.12 (runs vmprep on the build VM)."
}

variable "python_installer_sha256" {
  type        = string
  description = "Its SHA-256, as python.org publishes it."
}

variable "python_embed_zip" {
  type        = string
  description = "Local path of python-3.X.Y-embed-amd64.zip from python.org: the agent's runtime in the image."
}

variable "python_embed_sha256" {
  type        = string
  description = "Its SHA-256, as python.org publishes it; vmprep refuses any other file."
}

locals {
  staging = "C:\\Windows\\Temp\\vmprep"
  python  = "C:\\Program Files\\Python312\\python.exe"
}

source "azure-arm" "reference" {
  use_azure_cli_auth                = true
  subscription_id                   = var.subscription_id
  location                          = var.location
  vm_size                           = "Standard_D2s_v5"
  os_type                           = "Windows"
  image_publisher                   = "MicrosoftWindowsServer"
  image_offer                       = "WindowsServer"
  image_sku                         = "2022-datacenter-azure-edition"
  managed_image_name                = var.image_name
  managed_image_resource_group_name = var.resource_group
  communicator                      = "winrm"
  winrm_use_ssl                     = true
  winrm_insecure                    = true
  winrm_timeout                     = "10m"
  winrm_username                    = "packer"
}

build {
  sources = ["source.azure-arm.reference"]

  // ---- your provisioners: roles, software, Windows Update -------------------------------

  // Nothing may be pending when vmprep checks (its `pending-reboot` check refuses otherwise).
  provisioner "windows-restart" {}

  // ---- vmprep: upload everything it needs; the VM downloads nothing ----------------------
  provisioner "file" {
    sources     = [var.python_installer, var.python_embed_zip]
    destination = "${local.staging}\\"
  }

  provisioner "file" {
    source      = "${var.vmprep_wheelhouse}/"
    destination = "${local.staging}\\wheelhouse\\"
  }

  provisioner "file" {
    content = templatefile("${path.root}/spec.yaml.pkrtpl", {
      python_embed_zip    = basename(var.python_embed_zip)
      python_embed_sha256 = lower(var.python_embed_sha256)
    })
    destination = "${local.staging}\\spec.yaml"
  }

  // ---- vmprep: a Python to run vmprep on the build VM, then vmprep from the wheelhouse -------
  provisioner "powershell" {
    inline = [
      "$ErrorActionPreference = 'Stop'",
      "$installer = Join-Path '${local.staging}' '${basename(var.python_installer)}'",
      "if ((Get-FileHash -Algorithm SHA256 $installer).Hash -ne '${upper(var.python_installer_sha256)}') { throw 'Python installer: checksum mismatch' }",
      "$p = Start-Process -Wait -PassThru -FilePath $installer -ArgumentList '/quiet','InstallAllUsers=1','PrependPath=0','Include_test=0'",
      "if ($p.ExitCode -ne 0) { throw \"Python installer exited with $($p.ExitCode)\" }",
      "Remove-Item $installer",
      // Offline: only the uploaded wheels, never an index.
      "& '${local.python}' -m pip install --disable-pip-version-check --no-index --find-links '${local.staging}\\wheelhouse' vmprep",
      "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }",
    ]
  }

  // ---- vmprep: generalize -------------------------------------------------------------------
  // The spec bundles the embeddable CPython: render unpacks it under C:\ProgramData\vmprep\python
  // and SetupComplete2.cmd starts the agent with it (the `python` check reads the zip).
  // Exit 1: the zip is not the one the spec pins (both hashes are printed).
  // Exit 3: a preflight check refused and nothing changed (the table says why).
  // Exit 4: sysprep failed; every replaced file was restored and the Panther log lines that
  // matter are printed. Either way Packer stops here and captures nothing.
  provisioner "powershell" {
    inline = [
      "$ErrorActionPreference = 'Stop'",
      // Sysprep racing the Azure agents leaves undeployable images (the `azure-agents` check).
      "foreach ($name in 'RdAgent', 'WindowsAzureGuestAgent') { while ((Get-Service $name).Status -ne 'Running') { Start-Sleep -Seconds 5 } }",
      "& '${local.python}' -m vmprep --no-color sysprep --generalize --no-shutdown '${local.staging}\\spec.yaml'",
      "$code = $LASTEXITCODE",
      "Remove-Item -Recurse -Force '${local.staging}'",
      "exit $code",
    ]
  }

  // The VM is generalized and still running: the azure-arm builder powers it off and captures.
}
