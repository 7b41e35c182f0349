"""The desktop on Upstox: log in through the fake's OAuth leg, Feed V3 protobuf ticks fill
the watchlist and the chart, and an order placed from the ticket rests at Upstox and is
cancelled from the order book (its state arriving on the portfolio stream).

Real services (``app.wiring.build_services`` with ``broker = "upstox"``) on the qasync loop,
the real upstox-python-sdk against the fake on 127.0.0.1.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import pytest

from app.settings import Settings, UpstoxSettings
from app.wiring import build_services
from services.brokers.upstox.session import UpstoxSession
from services.clock import SystemClock
from tests.brokers.upstox.test_upstox_session_stream import Store, free_port
from tests.fakes.upstox import FakeUpstox
from tests.widgets.broker_window import cancel_in_book, open_window, place_limit_buy

WATCH = ["NSE:INFY", "NSE:SBIN"]
INFY = "NSE_EQ|INE009A01021"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def browser(url: str) -> None:
    try:
        urllib.request.build_opener(_NoRedirect).open(url, timeout=5)
    except urllib.error.HTTPError as exc:
        urllib.request.urlopen(exc.headers["Location"], timeout=5).read()


@pytest.fixture
def fake() -> Iterator[FakeUpstox]:
    with FakeUpstox(access_token=None) as server:
        yield server


@pytest.fixture
def ticking(fake: FakeUpstox) -> Iterator[None]:
    """The fake exchange sends a tick for every subscribed instrument every 0.2 s."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.2):
            for key in fake.subscribed():
                fake.push(key)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


def test_upstox_login_ticks_to_watchlist_and_chart_and_an_order_placed_and_cancelled(
    qtbot, qloop, fake, ticking, tmp_path
):
    secrets = Store()
    secrets.set("upstox", {"api_key": fake.client_id, "api_secret": fake.client_secret})
    upstox = UpstoxSettings(
        base_url=fake.base_url, redirect_url=f"http://127.0.0.1:{free_port()}/cb/upstox"
    )
    session = UpstoxSession(
        secrets,
        endpoints=upstox.endpoints(),
        redirect_uri=upstox.redirect_url,
        clock=SystemClock(),
    )
    token = qloop.run(session.login(browser, within=20), timeout=30)
    assert token.access_token in fake.access_tokens  # the only token the fake accepts
    settings = Settings(broker="upstox", watchlist=WATCH, upstox=upstox)
    services = build_services(settings, secrets=secrets)
    qloop.run(services.start(), timeout=30)
    w = open_window(qtbot, services, WATCH, tmp_path)
    try:
        assert services.feed_name == "upstox"
        fake.set_price(INFY, "1575.35")
        qloop.until(
            lambda: w.watchlist.model.text("NSE:INFY", "LTP") == "1,575.35",
            timeout=20,
            what="INFY from the Upstox feed",
        )
        qloop.until(lambda: w.watchlist.model.text("NSE:SBIN", "LTP") == "812.40")
        w.watchlist.select_key("NSE:INFY")
        qloop.until(
            lambda: w.chart.key == "NSE:INFY"
            and len(w.chart.series) > 0
            and abs(float(w.chart.series.column("close")[-1]) - 1575.35) < 1e-6,
            what="the chart's last bar at the streamed price",
        )

        # A limit buy below the market from the ticket rests OPEN at Upstox.
        order_id = place_limit_buy(w, qtbot, qloop, "NSE:INFY", 3, "1500.00")
        assert [(o["order_id"], o["price"], o["quantity"]) for o in fake.live_orders()] == [
            (order_id, 1500.0, 3)
        ]
        assert fake.placed[0]["instrument_token"] == INFY
        assert w.order_book.model.get(order_id).request.price == Decimal("1500.00")

        # Cancelled from the order book: Upstox has it cancelled, the book says so.
        cancel_in_book(w, qloop, order_id)
        assert fake.orders[order_id]["status"] == "cancelled"
        # The status bar follows the feed: connected (a state from before the window is
        # replayed to it), then reconnected after the exchange drops the socket.
        assert w.status.connection_text("feed:upstox").endswith("feed upstox connected")
        assert services.live is not None
        feed = services.live.feed
        connects = feed.status().connects
        fake.drop_feed()
        qloop.until(
            lambda: feed.status().connects > connects
            and w.status.connection_text("feed:upstox").endswith("feed upstox connected"),
            timeout=30,
            what="the status bar showing the Upstox feed reconnected",
        )
    finally:
        qloop.run(w.stop())
        qloop.run(services.stop())
