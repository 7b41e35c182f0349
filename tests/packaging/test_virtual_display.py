"""`./setup.sh run` on a machine with no display: stopping it by its PID stops the terminal and
the virtual X server with it (xvfb-run left both orphaned)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "packaging" / "with-virtual-display.sh"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    return [int(p) for p in out.split()]


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_runner_stops_the_command_and_xvfb(sig: signal.Signals) -> None:
    command = "import os, time; print(os.environ['DISPLAY'], flush=True); time.sleep(120)"
    proc = subprocess.Popen([str(SCRIPT), sys.executable, "-c", command], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    assert proc.stdout is not None
    display = proc.stdout.readline().strip()
    assert display.startswith(":"), display
    kids = children(proc.pid)
    assert len(kids) == 2 and all(alive(k) for k in kids), kids  # Xvfb and the command

    os.kill(proc.pid, sig)  # only the runner, as `kill PID` would
    assert proc.wait(timeout=20) != 0
    deadline = time.monotonic() + 10
    while any(alive(k) for k in kids):
        assert time.monotonic() < deadline, [k for k in kids if alive(k)]
        time.sleep(0.05)
    assert not Path(f"/tmp/.X11-unix/X{display[1:]}").exists()


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_the_command_exit_status_is_passed_on() -> None:
    done = subprocess.run([str(SCRIPT), sys.executable, "-c", "raise SystemExit(3)"],
                          timeout=30, check=False)  # fmt: skip
    assert done.returncode == 3
