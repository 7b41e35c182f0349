"""The Windows installer script compiles (makensis runs on Linux too) against a stand-in dist.

The payload of a real installer comes from a Windows PyInstaller build; what this catches is a
broken script: a typo, a missing include, a define the build script does not pass.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "packaging" / "windows" / "installer.nsi"

pytestmark = pytest.mark.skipif(
    shutil.which("makensis") is None, reason="makensis not installed (apt-get install nsis)"
)


def _dummy_dist(tmp_path: Path) -> Path:
    dist = tmp_path / "dist" / "dalal-terminal"
    (dist / "_internal").mkdir(parents=True)
    (dist / "dalal.exe").write_bytes(b"MZ stand-in")
    (dist / "dalal-cli.exe").write_bytes(b"MZ stand-in")
    (dist / "_internal" / "python311.dll").write_bytes(b"stand-in")
    return dist


def _makensis(*defines: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["makensis", "-V2", "-WX", *defines, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_installer_compiles_to_a_windows_executable(tmp_path: Path) -> None:
    out = tmp_path / "DalalTerminalSetup-9.8.7.exe"
    done = _makensis("-DVERSION=9.8.7", f"-DDIST_DIR={_dummy_dist(tmp_path)}", f"-DOUT_FILE={out}")
    assert done.returncode == 0, done.stdout + done.stderr
    head = out.read_bytes()
    assert head[:2] == b"MZ"
    assert b"Nullsoft" in head  # the NSIS stub, not a stray copy of the dummy payload


def test_installer_refuses_to_build_without_a_version(tmp_path: Path) -> None:
    done = _makensis(f"-DDIST_DIR={_dummy_dist(tmp_path)}", f"-DOUT_FILE={tmp_path / 'x.exe'}")
    assert done.returncode != 0
    assert "VERSION" in done.stdout + done.stderr
