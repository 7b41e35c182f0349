"""The desktop on ICICI Direct Breeze: the fake ICICI's stream fills the watchlist, and an
order placed from the ticket rests at Breeze and is cancelled from the order book.

Real services (``app.wiring.build_services`` with ``broker = "breeze"``) on the qasync loop,
the real breeze-connect SDK and Socket.IO client against the fake on 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

from app.settings import BreezeSettings, Settings
from app.wiring import build_services
from services.brokers.breeze.session import BreezeSecrets, BreezeSession
from services.clock import SystemClock
from tests.brokers.breeze.conftest import MemorySecrets
from tests.fakes.breeze.server import FakeBreeze
from tests.threads import adapter_threads
from tests.widgets.broker_window import cancel_in_book, open_window, place_limit_buy

WATCH = ["NSE:RELIANCE", "NSE:INFY"]


@pytest.fixture
def fake() -> Iterator[FakeBreeze]:
    with FakeBreeze() as server:
        yield server


@pytest.fixture
def ticking(fake: FakeBreeze) -> Iterator[None]:
    """The fake exchange pushes a tick for every subscribed instrument every 0.2 s."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.2):
            fake.push_ticks()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


def test_breeze_ticks_reach_the_watchlist_and_an_order_is_placed_and_cancelled(
    qtbot, qloop, fake, ticking, tmp_path
):
    secrets = MemorySecrets()
    secrets.set("breeze", {"api_key": fake.api_key, "api_secret": fake.api_secret})
    session = BreezeSession(BreezeSecrets(secrets), SystemClock(), endpoints=fake.endpoints)
    qloop.run(session.complete_login({"API_Session": fake.issue_api_session()}), timeout=30)
    settings = Settings(
        broker="breeze", watchlist=WATCH, breeze=BreezeSettings(base_url=fake.base_url)
    )
    before = set(threading.enumerate())
    services = build_services(settings, secrets=secrets)
    # The window after the start: Breeze's instruments exist once the day's master is in.
    qloop.run(services.start(), timeout=30)
    w = open_window(qtbot, services, WATCH, tmp_path)
    try:
        assert services.feed_name == "breeze"
        # Breeze's prices, exactly as the fake streams them, in the watchlist.
        qloop.until(
            lambda: w.watchlist.model.text("NSE:RELIANCE", "LTP") == "2,950.40",
            timeout=30,
            what="RELIANCE from the Breeze stream",
        )
        qloop.until(lambda: w.watchlist.model.text("NSE:INFY", "LTP") == "1,573.70", timeout=30)

        # A limit buy below the market from the ticket rests OPEN at Breeze.
        order_id = place_limit_buy(w, qtbot, qloop, "NSE:INFY", 3, "1500.00", timeout=30)
        placed = fake.placed()
        assert [(o["order_id"], o["stock_code"], o["price"]) for o in placed] == [
            (order_id, "INFTEC", "1500.00")
        ]
        assert w.order_book.model.get(order_id).request.price == Decimal("1500.00")

        # Cancelled from the order book: Breeze has it cancelled, the book says so.
        cancel_in_book(w, qloop, order_id, timeout=30)
        assert fake.placed()[0]["status"] == "Cancelled"
        assert "connected" in w.status.connection_text("feed:breeze")
        # The live session also joins ICICI's order notifications (a second connection).
        qloop.until(lambda: fake.socket_connects >= 2, timeout=30, what="order notifications")
    finally:
        qloop.run(w.stop())
        qloop.run(services.stop(), timeout=30)
    # Nothing the adapter started outlives the services' stop (the next test's window).
    assert adapter_threads(before) == []
