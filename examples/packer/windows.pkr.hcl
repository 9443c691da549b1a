// A Windows Server 2022 image on Azure (azure-arm) whose instances configure themselves with
// vmprep. Your own provisioners (roles, software, updates) go where marked; the last ones
// install Python and vmprep, then generalize with `vmprep sysprep --generalize --no-shutdown`,
// and Packer captures the image. spec.yaml says `image.platform: azure`, so vmprep runs
// Sysprep WITHOUT an answer file (Azure does not support custom ones) and starts its agent from
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

  // ---- vmprep: install Python for all users, then vmprep itself ---------------------------
  provisioner "powershell" {
    script           = "${path.root}/scripts/install-python.ps1"
    environment_vars = [
      "VMPREP_STAGING=${local.staging}",
      "PYTHON_INSTALLER_URL=${var.python_installer_url}",
      "PYTHON_INSTALLER_SHA256=${var.python_installer_sha256}",
    ]
  }

  provisioner "file" {
    sources     = [var.vmprep_wheel, "${path.root}/spec.yaml"]
    destination = "${local.staging}\\"
  }

  provisioner "powershell" {
    inline = [
      "$ErrorActionPreference = 'Stop'",
      "& '${local.python}' -m pip install --disable-pip-version-check '${local.staging}\\${basename(var.vmprep_wheel)}'",
      "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }",
    ]
  }

  // ---- vmprep: generalize -------------------------------------------------------------------
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
