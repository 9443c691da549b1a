// A Windows Server 2022 AMI (amazon-ebs) whose instances configure themselves with vmprep.
// The spec is examples/platforms/aws.yaml (`image.platform: aws`): EC2Launch v2 keeps owning
// Sysprep, its answer file and the administrator password. `vmprep sysprep --generalize` adds
// an executeScript task to EC2Launch's agent-config.yml (through `ec2launch get-agent-config`
// and `ec2launch validate`), then runs `EC2Launch.exe sysprep --clean`. See ../README.md and
// docs/platforms/aws.md.

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "region" {
  type    = string
  default = "eu-west-1"
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

source "amazon-ebs" "reference" {
  region        = var.region
  instance_type = "m6i.large"
  ami_name      = "worker-aws-{{timestamp}}"
  source_ami_filter {
    filters = {
      name                = "Windows_Server-2022-English-Full-Base-*"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"] // AWS AMIs of Windows Server 2022 come with EC2Launch v2
    most_recent = true
  }
  communicator   = "winrm"
  winrm_username = "Administrator" // Packer reads its password from the temporary key pair
  winrm_use_ssl  = true
  winrm_insecure = true
  winrm_timeout  = "15m"
  user_data_file = "${path.root}/winrm.ps1"
}

build {
  sources = ["source.amazon-ebs.reference"]

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
    sources     = [var.vmprep_wheel, "${path.root}/../../platforms/aws.yaml"]
    destination = "${local.staging}\\"
  }

  provisioner "powershell" {
    inline = [
      "$ErrorActionPreference = 'Stop'",
      "& '${local.python}' -m pip install --disable-pip-version-check '${local.staging}\\${basename(var.vmprep_wheel)}'",
      "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }",
    ]
  }

  // ---- vmprep: generalize through EC2Launch v2 ------------------------------------------
  // Exit 3: a preflight check refused (e.g. `ec2launch`: EC2Launch still running); nothing
  // changed. Exit 4: Sysprep failed; agent-config.yml and every other file were restored.
  provisioner "powershell" {
    inline = [
      "$ErrorActionPreference = 'Stop'",
      "& '${local.python}' -m vmprep --no-color sysprep --generalize --no-shutdown '${local.staging}\\aws.yaml'",
      "$code = $LASTEXITCODE",
      "Remove-Item -Recurse -Force '${local.staging}'",
      "exit $code",
    ]
  }

  // The instance is generalized and still running: amazon-ebs stops it and registers the AMI.
}
