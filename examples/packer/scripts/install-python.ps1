# Install Python for all users into C:\Program Files\Python312 (the agent runs on it at every
# first boot, so it must be in the image and not under a user profile: the `python` preflight
# check), checksum-verified. Used by every template here; Packer passes the environment.
#   VMPREP_STAGING, PYTHON_INSTALLER_URL, PYTHON_INSTALLER_SHA256
$ErrorActionPreference = 'Stop'
New-Item -ItemType Directory -Force -Path $env:VMPREP_STAGING | Out-Null
$installer = Join-Path $env:VMPREP_STAGING 'python-installer.exe'
Invoke-WebRequest -UseBasicParsing -Uri $env:PYTHON_INSTALLER_URL -OutFile $installer
if ((Get-FileHash -Algorithm SHA256 $installer).Hash -ne $env:PYTHON_INSTALLER_SHA256.ToUpper()) {
  throw 'Python installer: checksum mismatch'
}
$p = Start-Process -Wait -PassThru -FilePath $installer -ArgumentList '/quiet', 'InstallAllUsers=1', 'PrependPath=0', 'Include_test=0'
if ($p.ExitCode -ne 0) { throw "Python installer exited with $($p.ExitCode)" }
Remove-Item $installer
