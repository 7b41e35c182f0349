"""breeze-connect's import-time side effects are contained (research/brokers.md §1.3).

Each check runs in a fresh interpreter, because the SDK can be imported only once per process:
a socket guard records every connection attempt that is not to loopback (and refuses it), and
the child reports what the import left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

CHILD = r"""
import json, os, socket, sys

attempts = []
real_connect = socket.socket.connect
real_getaddrinfo = socket.getaddrinfo

def _loopback(host):
    return host in ("127.0.0.1", "::1", "localhost") or str(host).startswith("127.")

def guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if not _loopback(host):
        attempts.append(str(host))
        raise OSError("network blocked by the test")
    return real_connect(self, address)

def guarded_getaddrinfo(host, *args, **kwargs):
    if host is not None and not _loopback(host):
        attempts.append(str(host))
        raise OSError("name resolution blocked by the test")
    return real_getaddrinfo(host, *args, **kwargs)

socket.socket.connect = guarded_connect
socket.getaddrinfo = guarded_getaddrinfo

# A top-level module named ``config`` of our own, imported before the SDK.
sys.path.insert(0, os.environ["OWN_CONFIG_DIR"])
import config as own_config
path_before = list(sys.path)

import urllib3.util.connection as u3
ipv6_before = u3.HAS_IPV6

from services.brokers.breeze import sdk
from services.brokers.breeze.config import BreezeEndpoints

module = sdk.load_sdk(BreezeEndpoints())  # production URLs: must still touch no network
import config as after
print(json.dumps({
    "attempts": attempts,
    "logs_dir": os.path.exists("logs"),
    "path_unchanged": sys.path == path_before,
    "own_config_kept": after is own_config and after.MARKER == "ours",
    "sdk_config_private": module.config is not own_config,
    "sdk_api_url": module.config.API_URL,
    "sdk_master_url": module.config.SECURITY_MASTER_URL[:28],
    "ipv6_restored": u3.HAS_IPV6 == ipv6_before,
    "sdk_loggers_disabled": all(
        __import__("logging").getLogger(n).disabled for n in ("APILogger", "WebsocketLogger")
    ),
    "requests_with_timeout": type(module.requests).__name__,
}))
"""


def test_importing_the_sdk_touches_no_network_and_leaves_nothing_behind(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "config.py").write_text('MARKER = "ours"\n')
    work = tmp_path / "cwd"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OWN_CONFIG_DIR": str(own)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["attempts"] == []  # no connection (and no DNS) beyond loopback
    assert report["logs_dir"] is False  # the SDK's ./logs was never created
    assert report["path_unchanged"] is True  # its folder is not left on sys.path
    assert report["own_config_kept"] is True  # our top-level ``config`` still wins
    assert report["sdk_config_private"] is True
    assert report["sdk_api_url"] == "https://api.icicidirect.com/breezeapi/api/v1/"
    assert report["sdk_master_url"] == "data:application/zip;base64,"
    assert report["ipv6_restored"] is True
    assert report["sdk_loggers_disabled"] is True
    assert report["requests_with_timeout"] == "TimeoutRequests"
    assert not (work / "logs").exists()


def test_the_cli_does_not_import_the_sdk() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, app.cli, services.brokers.registry, services.brokers.breeze.config;"
            "print('breeze_connect' in sys.modules, 'socketio' in sys.modules)",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "False"]
