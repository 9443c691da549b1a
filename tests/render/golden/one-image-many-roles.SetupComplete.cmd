@echo off
rem Written by `vmprep render`; do not edit, render again instead.
rem Hands the vmprep agent to its startup task (it runs outside Windows Setup, where
rem it may reboot) and returns at once. Always exits 0: Windows ignores the exit code,
rem and the agent itself reports how the setup went.
setlocal EnableExtensions DisableDelayedExpansion
echo [%DATE% %TIME%] SetupComplete.cmd started >> "C:\ProgramData\vmprep\setupcomplete.log" 2>&1
if exist "C:\Program Files\Python313\python.exe" goto run
echo [%DATE% %TIME%] error: the interpreter "C:\Program Files\Python313\python.exe" is missing >> "C:\ProgramData\vmprep\setupcomplete.log" 2>&1
goto done
:run
"C:\Program Files\Python313\python.exe" -I -S "C:\ProgramData\vmprep\agent.pyz" launch --config "C:\ProgramData\vmprep\agent.json" >> "C:\ProgramData\vmprep\setupcomplete.log" 2>&1
echo [%DATE% %TIME%] the agent launcher exited with %ERRORLEVEL% >> "C:\ProgramData\vmprep\setupcomplete.log" 2>&1
:done
exit /b 0
