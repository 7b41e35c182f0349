"""smartapi-python imported the way the adapter does it: no network, no files, loopback only.

The import runs in a fresh interpreter (this process may have imported the SDK already) with
a guard on every socket: any connection or name lookup that is not loopback is recorded and
refused. Without ``load_sdk`` the same import tries to reach api.ipify.org, which the guard
sees too, so the guard is known to work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.brokers.angelone.conftest import pythonpath_env
from tests.fakes.angelone import FakeAngel

GUARD = r"""
import json, os, socket, sys, time
attempts = []
_connect = socket.socket.connect
_getaddrinfo = socket.getaddrinfo
def _loopback(host):
    return host in ("127.0.0.1", "::1", "localhost")
def connect(self, address):
    host = address[0] if isinstance(address, tuple) else str(address)
    if not _loopback(host):
        attempts.append(("connect", host))
        raise OSError("network refused by test guard")
    return _connect(self, address)
def getaddrinfo(host, *args, **kwargs):
    if not _loopback(str(host)):
        attempts.append(("resolve", str(host)))
        raise socket.gaierror("name lookup refused by test guard")
    return _getaddrinfo(host, *args, **kwargs)
socket.socket.connect = connect
socket.getaddrinfo = getaddrinfo
started = time.monotonic()
"""


def run(code: str, cwd: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", GUARD + code],
        cwd=cwd,
        env=pythonpath_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_plain_import_reaches_for_the_network(tmp_path: Path) -> None:
    """The guard works: the SDK's own import tries the public-IP service."""
    result = run(
        "import SmartApi\nprint(json.dumps({'attempts': attempts}))\n",
        tmp_path,
    )
    attempts: list[list[str]] = result["attempts"]  # type: ignore[assignment]
    hosts = [host for _, host in attempts]
    assert "api.ipify.org" in hosts


def test_load_sdk_makes_no_network_call_and_writes_no_files(tmp_path: Path) -> None:
    result = run(
        "from services.brokers.angelone.sdk import load_sdk\n"
        "sdk = load_sdk()\n"
        "client = sdk.SmartConnect(api_key='k', root='http://127.0.0.1:9')\n"
        "ws = sdk.SmartWebSocketV2('jwt', 'k', 'C1', 'feed', max_retry_attempt=0)\n"
        "import requests\n"
        "print(json.dumps({'attempts': attempts, 'elapsed': time.monotonic() - started,\n"
        "  'restored': requests.get.__module__, 'logs': os.path.exists('logs'),\n"
        "  'root': client.root}))\n",
        tmp_path,
    )
    assert result["attempts"] == []
    assert result["logs"] is False
    assert result["restored"] == "requests.api"  # the patch does not outlive the import
    assert result["root"] == "http://127.0.0.1:9"
    assert float(result["elapsed"]) < 30  # type: ignore[arg-type]


def test_sdk_errors_carrying_the_token_never_reach_the_console(
    fake: FakeAngel, tmp_path: Path
) -> None:
    """A failed request makes the SDK log its headers (the API key; on a transport error the
    JWT too); none of it is printed."""
    jwt, _, _ = fake.issue_session()
    fake.expire_sessions()
    code = (
        "from services.brokers.angelone.sdk import load_sdk\n"
        f"client = load_sdk().SmartConnect(api_key={fake.api_key!r}, access_token={jwt!r},"
        f" root={fake.base_url!r})\n"
        "body = client.orderBook()\n"
        "print(json.dumps({'code': body['errorcode']}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", GUARD + code],
        cwd=tmp_path,
        env=pythonpath_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"code": "AG8002"}
    assert jwt not in out.stderr and jwt not in out.stdout
    assert fake.api_key not in out.stderr
    assert not (tmp_path / "logs").exists()
