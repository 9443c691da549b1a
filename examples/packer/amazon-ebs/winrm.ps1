<powershell>
# Packer's WinRM bootstrap (user data: EC2Launch v2 runs it on the build instance; instances
# of the AMI get their own user data). An HTTPS listener with a self-signed certificate; the
# listener and the firewall rule stay in the image: remove them in your provisioners if the
# instances must not have them.
$ErrorActionPreference = 'Stop'
$cert = New-SelfSignedCertificate -DnsName $env:COMPUTERNAME -CertStoreLocation Cert:\LocalMachine\My
New-Item -Path WSMan:\localhost\Listener -Transport HTTPS -Address * -CertificateThumbPrint $cert.Thumbprint -Force | Out-Null
New-NetFirewallRule -DisplayName 'WinRM HTTPS (Packer)' -Direction Inbound -Protocol TCP -LocalPort 5986 -Action Allow | Out-Null
Set-Service -Name WinRM -StartupType Automatic
Restart-Service WinRM
</powershell>
