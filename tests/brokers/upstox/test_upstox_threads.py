"""The SDK's ApiClient starts a thread pool of its own; ours are stopped at once."""

from __future__ import annotations

import subprocess
import sys
import threading

from services.brokers.upstox.client import UpstoxApi


def test_a_client_leaves_no_thread_running() -> None:
    before = set(threading.enumerate())
    apis = [UpstoxApi("token") for _ in range(3)]
    assert set(threading.enumerate()) - before == set()
    for api in apis:
        api.close()  # twice is harmless


def test_nothing_is_printed_at_interpreter_exit() -> None:
    """ApiClient.__del__ closes its pool again at exit and printed "Bad file descriptor"."""
    code = "from services.brokers.upstox.client import UpstoxApi\napis = [UpstoxApi('t')]\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stdout == "" and "Error" not in done.stderr
