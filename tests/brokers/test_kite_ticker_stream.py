"""KiteTicker through the real SDK (Twisted) against the fake's WebSocket, in a subprocess.

Covers: modes ltp/quote/full decoded into rupee ticks with IST exchange times, order updates
from the socket, reconnect and resubscribe (same modes) after the server drops the socket,
and a silent feed detected as dead and reconnected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def observed() -> dict[str, Any]:
    env = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(REPO)}  # IST must not come from TZ
    proc = subprocess.run(
        [sys.executable, "-m", "tests.brokers.kite_ticker_scenario"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_modes_decode_into_ticks(observed: dict[str, Any]) -> None:
    assert observed["subscribed"] is True
    first = observed["first"]
    assert first["NSE:INFY"] == {
        "last_price": "1573.7",
        "close": "1573.6",
        "utcoffset": 19800.0,
        "bids": 5,
    }
    assert first["NSE:NIFTY 50"]["last_price"] == "24350.15"  # ltp mode
    assert first["NSE:NIFTY 50"]["bids"] == 0
    assert first["CDS:USDINRFUT"]["last_price"] == "84.125"  # 1e7 divisor
    assert observed["decode_errors"] == 0


@pytest.mark.slow
def test_order_updates_arrive_from_the_socket(observed: dict[str, Any]) -> None:
    updates = observed["order_updates"]
    assert "OPEN" in updates
    assert updates[-1] == "PARTIALLY_FILLED"


@pytest.mark.slow
def test_reconnect_resubscribes_with_the_same_modes(observed: dict[str, Any]) -> None:
    assert observed["reconnected"] is True
    assert observed["resubscribed"] == [{"408065": "full", "256265": "ltp", "489475": "quote"}]
    assert observed["after_reconnect"]["NSE:INFY"]["last_price"] == "1600.5"
    assert "DISCONNECTED" in observed["states"]
    assert observed["states"].count("CONNECTED") >= 2


@pytest.mark.slow
def test_silent_feed_is_dead_and_reconnected(observed: dict[str, Any]) -> None:
    assert observed["dead_feed_detected"] is True
    assert observed["connects"] >= 3
