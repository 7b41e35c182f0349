<#
.SYNOPSIS
  Build Dalal Terminal for Windows: PyInstaller one-folder bundle, a .zip of it, and the NSIS
  per-user installer. Runs on a developer machine or a CI runner (windows-latest).

.DESCRIPTION
  PyInstaller cannot cross-build, so this must run on Windows. Steps:
    1. a build venv (.venv-win) with the app and pyinstaller==6.22.3;
    2. PyInstaller with packaging/pyinstaller/dalal.spec -> dist\pyinstaller\dalal-terminal
       (dalal.exe: the desktop, no console; dalal-cli.exe: --version, headless, other commands);
    3. smoke checks: `dalal-cli --version`, then the desktop offscreen until its first painted
       tick, printed beside the 2.5 s target, and the bundle size beside the 250 MB target;
    4. dist\dalal-terminal-VERSION-windows-x64.zip and dist\DalalTerminalSetup-VERSION.exe
       (makensis; installed with Chocolatey when missing).

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
  powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1 -Python py -SkipSmoke
#>
[CmdletBinding()]
param(
    [string]$Python = "python",      # a Python 3.11 interpreter (3.11 to 3.13 supported)
    [switch]$SkipSmoke,
    [switch]$ReuseVenv
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$Root = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
Set-Location $Root
$Venv = Join-Path $Root ".venv-win"
$Py = Join-Path $Venv "Scripts\python.exe"
$Dist = Join-Path $Root "dist"
$Bundle = Join-Path $Dist "pyinstaller\dalal-terminal"

function Step($msg) { Write-Host "==> $msg" }
function Invoke-Checked {
    param([string]$Exe, [string[]]$Arguments)
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed ($LASTEXITCODE)" }
}

# 1. Build environment
if (-not ($ReuseVenv -and (Test-Path $Py))) {
    Step "venv $Venv"
    Invoke-Checked $Python @("-m", "venv", "--clear", $Venv)
}
Invoke-Checked $Py @("-m", "pip", "install", "--quiet", "--upgrade", "pip")
Invoke-Checked $Py @("-m", "pip", "install", "--quiet", ".", "pyinstaller==6.22.3")
$Version = (& $Py -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])").Trim()
Step "Dalal Terminal $Version"

# 2. PyInstaller
Invoke-Checked $Py @("-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
    "--distpath", (Join-Path $Dist "pyinstaller"), "--workpath", (Join-Path $Root "build\packaging\pyinstaller"),
    "packaging\pyinstaller\dalal.spec")
foreach ($exe in @("dalal.exe", "dalal-cli.exe")) {
    if (-not (Test-Path (Join-Path $Bundle $exe))) { throw "missing $exe in $Bundle" }
}

# 3. Smoke checks and figures
$SizeMB = [math]::Round(((Get-ChildItem $Bundle -Recurse -File | Measure-Object Length -Sum).Sum / 1MB), 1)
if (-not $SkipSmoke) {
    # Qt writes harmless notes to stderr; with "Stop", Windows PowerShell 5.1 would turn any
    # stderr line of a native program into a terminating error. Exit codes are checked instead.
    $ErrorActionPreference = "Continue"
    $cli = Join-Path $Bundle "dalal-cli.exe"
    $out = (& $cli --version 2>&1 | Out-String).Trim()
    if ($LASTEXITCODE -ne 0 -or $out -ne "dalal-terminal $Version") { throw "unexpected --version: $out" }
    Write-Host $out
    $env:QT_QPA_PLATFORM = "offscreen"
    $env:DALAL_EXIT_AFTER_FIRST_PAINT = "1"
    $env:DALAL_EPHEMERAL = "1"   # in-memory profile: a build machine has no keyring to unlock
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $lines = & $cli 2>$null | Out-String
    $watch.Stop()
    Remove-Item Env:QT_QPA_PLATFORM, Env:DALAL_EXIT_AFTER_FIRST_PAINT, Env:DALAL_EPHEMERAL
    if ($lines -notmatch "first-paint ([0-9.]+)s") { throw "the bundled desktop did not paint a tick: $lines" }
    Write-Host ("{0,-40} {1,8} s   < 2.5 s   (process wall time {2:N2} s)" -f "cold start to first painted tick", $Matches[1], $watch.Elapsed.TotalSeconds)
    $ErrorActionPreference = "Stop"
}
Write-Host ("{0,-40} {1,8} MB  < 250 MB" -f "bundle size (unpacked)", $SizeMB)

# 4. Zip and installer
$Zip = Join-Path $Dist "dalal-terminal-$Version-windows-x64.zip"
if (Test-Path $Zip) { Remove-Item $Zip }
Compress-Archive -Path $Bundle -DestinationPath $Zip
$makensis = (Get-Command makensis -ErrorAction SilentlyContinue)
if (-not $makensis) {
    $candidate = Join-Path ${env:ProgramFiles(x86)} "NSIS\makensis.exe"
    if (-not (Test-Path $candidate)) {
        Step "installing NSIS (Chocolatey)"
        Invoke-Checked "choco" @("install", "nsis", "-y", "--no-progress")
    }
    $makensis = $candidate
} else { $makensis = $makensis.Source }
$Setup = Join-Path $Dist "DalalTerminalSetup-$Version.exe"
Invoke-Checked $makensis @("/V2", "/DVERSION=$Version", "/DDIST_DIR=$Bundle", "/DOUT_FILE=$Setup",
    "packaging\windows\installer.nsi")
Step "built $Zip"
Step "built $Setup"
