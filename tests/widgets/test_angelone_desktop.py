"""The desktop on Angel One: SmartWebSocketV2 from the fake fills the watchlist, and an order
placed from the ticket rests at Angel and is cancelled from the order book.

Real services (``app.wiring.build_services`` with ``broker = "angelone"``) on the qasync
loop, the real smartapi-python SDK (REST and SmartWebSocketV2) against the fake on 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from app.settings import AngelOneSettings, Settings
from app.wiring import build_services
from services.brokers.angelone.session import CREDENTIALS, SESSION
from services.clock import IST
from tests.fakes.angelone import FakeAngel
from tests.kite_app.conftest import MemorySecrets
from tests.threads import adapter_threads
from tests.widgets.broker_window import cancel_in_book, open_window, place_limit_buy

WATCH = ["NSE:SBIN", "NSE:INFY"]


@pytest.fixture
def fake() -> Iterator[FakeAngel]:
    with FakeAngel() as server:
        yield server


@pytest.fixture
def ticking(fake: FakeAngel) -> Iterator[None]:
    """The fake exchange pushes a packet for every subscribed token every 0.2 s."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.2):
            fake.push_ticks()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


def test_angel_ticks_reach_the_watchlist_and_an_order_is_placed_and_cancelled(
    qtbot, qloop, fake, ticking, tmp_path
):
    jwt, refresh, feed = fake.issue_session()
    login = {"api_key": fake.api_key, "client_code": fake.client_code, "pin": fake.pin}
    secrets = MemorySecrets(
        {
            CREDENTIALS: login,
            SESSION: {
                "access_token": jwt, "refresh_token": refresh, "feed_token": feed,
                "client_code": fake.client_code,
                "expires_at": (datetime.now(IST) + timedelta(hours=2)).isoformat(),
            },
        }
    )  # fmt: skip
    settings = Settings(
        broker="angelone",
        watchlist=WATCH,
        angelone=AngelOneSettings(
            api_root=fake.base_url, stream_url=fake.stream_url, scrip_master_url=fake.master_url
        ),
    )
    before = set(threading.enumerate())
    services = build_services(settings, secrets=secrets)
    qloop.run(services.start(), timeout=30)
    w = open_window(qtbot, services, WATCH, tmp_path)
    try:
        assert services.feed_name == "angelone"
        qloop.until(
            lambda: w.watchlist.model.text("NSE:SBIN", "LTP") == "812.40",
            timeout=20,
            what="SBIN from SmartWebSocketV2",
        )
        qloop.until(lambda: w.watchlist.model.text("NSE:INFY", "LTP") == "1,510.05")

        # A limit buy below the market from the ticket rests OPEN at Angel.
        order_id = place_limit_buy(w, qtbot, qloop, "NSE:SBIN", 3, "800.05")
        sent = fake.orders[order_id]
        assert (sent["tradingsymbol"], sent["price"], sent["quantity"]) == ("SBIN-EQ", 800.05, "3")

        cancel_in_book(w, qloop, order_id)
        assert fake.orders[order_id]["orderstatus"] == "cancelled"
        qloop.until(
            lambda: "connected" in w.status.connection_text("feed:angelone"),
            what="the status bar's Angel feed",
        )
        # The live session also runs Angel's order-update socket (on the fake's host).
        qloop.until(lambda: fake.order_socket_connects >= 1, what="the order-update socket")
    finally:
        qloop.run(w.stop())
        qloop.run(services.stop(), timeout=30)
    # Nothing the adapter started outlives the services' stop (the next test's window).
    assert adapter_threads(before) == []
