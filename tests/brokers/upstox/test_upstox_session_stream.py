"""The OAuth login leg through the SDK against the fake, and the portfolio stream's order
updates reconciled against the order book after a reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from services.brokers.errors import CredentialsMissing, SessionExpired
from services.brokers.upstox.errors import map_error
from services.brokers.upstox.portfolio import UpstoxOrderStream
from services.brokers.upstox.session import SESSION, UpstoxSession, token_expiry
from services.bus import ORDERS, EventBus
from services.clock import IST, ManualClock
from services.domain import Order, OrderRequest, OrderStatus, OrderType, Product, Side
from tests.brokers.upstox.conftest import endpoints_for, make_execution
from tests.fakes.upstox import FakeUpstox


class Store:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, str]] = {}

    def get(self, broker: str) -> dict[str, str] | None:
        return self.entries.get(broker)

    def set(self, broker: str, fields: dict[str, str]) -> None:
        self.entries[broker] = dict(fields)

    def delete(self, broker: str) -> bool:
        return self.entries.pop(broker, None) is not None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def follow(url: str) -> dict[str, str]:
    """What the browser does: open the dialog, land on the redirect URI; its query."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(url, timeout=5)
    except urllib.error.HTTPError as exc:
        location = exc.headers["Location"]
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    raise AssertionError("the dialog did not redirect")


def session_for(fake: FakeUpstox, clock: ManualClock) -> tuple[UpstoxSession, Store]:
    store = Store()
    store.set("upstox", {"api_key": fake.client_id, "api_secret": fake.client_secret})
    session = UpstoxSession(
        store, endpoints=endpoints_for(fake), redirect_uri=fake.redirect_uri, clock=clock
    )
    return session, store


async def test_login_checks_state_trades_the_code_once_and_stores_the_token(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    session, store = session_for(fake, clock)
    url = session.login_url()
    query = parse_qs(urlsplit(url).query)
    assert query["redirect_uri"] == [fake.redirect_uri] and query["response_type"] == ["code"]
    callback = follow(url)
    assert callback["state"] == session.state
    token = await asyncio.wait_for(session.complete_login(callback), 10)
    assert token.access_token in fake.access_tokens
    assert token.expires_at == datetime(2026, 11, 26, 3, 30, tzinfo=IST)
    assert store.get(SESSION) == {
        "access_token": token.access_token,
        "expires_at": token.expires_at.isoformat(),
    }
    assert session.current(clock.now()) == token
    assert session.current(datetime(2026, 11, 26, 3, 30, tzinfo=IST)) is None
    # The code is single-use, and a state that is not the login's own is refused.
    session.login_url()
    with pytest.raises(SessionExpired, match="single-use"):
        await session.complete_login({**callback, "state": session.state or ""})
    session.login_url()
    forged = follow(session.login_url().replace(session.state or "", "forged"))
    with pytest.raises(SessionExpired, match="state"):
        await session.complete_login(forged)
    assert await session.renew(clock.now()) is None
    session.forget()
    assert session.current(clock.now()) is None


async def test_login_without_credentials_says_which_command(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    session = UpstoxSession(Store(), endpoints=endpoints_for(fake), clock=clock)
    with pytest.raises(CredentialsMissing, match="dalal credentials set upstox"):
        session.login_url()


def test_token_expires_at_the_next_0330_ist() -> None:
    assert token_expiry(datetime(2026, 11, 25, 2, 0, tzinfo=IST)) == datetime(
        2026, 11, 25, 3, 30, tzinfo=IST
    )
    assert token_expiry(datetime(2026, 11, 25, 23, 59, tzinfo=IST)) == datetime(
        2026, 11, 26, 3, 30, tzinfo=IST
    )


def test_transport_failures_map_to_outcome_unknown_or_unavailable() -> None:
    import urllib3

    timeout = urllib3.exceptions.ReadTimeoutError(None, "/v3/order/place", "read timed out")
    refused = urllib3.exceptions.MaxRetryError(
        None, "/v3/order/place", urllib3.exceptions.NewConnectionError(None, "refused")
    )
    assert type(map_error(timeout, "place order")).__name__ == "OutcomeUnknown"
    assert type(map_error(refused, "place order")).__name__ == "BrokerUnavailable"


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.01)


async def test_order_updates_stream_and_are_reconciled_after_a_reconnect(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    bus = EventBus()
    seen: dict[str, Order] = {}
    sub = bus.subscribe(ORDERS, "test", lossless=True)
    execution = make_execution(fake, clock)
    stream = UpstoxOrderStream(
        execution.api, bus, execution, backoff_initial=0.05, backoff_max=0.3
    )

    def pump() -> None:
        for order in sub.drain():
            seen[order.order_id] = order

    stream.start()
    try:
        await until(lambda: stream.connected)
        order = await execution.place_order(
            OrderRequest("NSE:INFY", Side.BUY, 2, OrderType.LIMIT, Product.CNC,
                         price=Decimal("1570.10"))
        )
        await until(lambda: pump() or order.order_id in seen)
        assert seen[order.order_id].status is OrderStatus.OPEN
        fake.fill(order.order_id, 1)
        await until(
            lambda: pump() or seen[order.order_id].status is OrderStatus.PARTIALLY_FILLED
        )
        # A cancel the stream never reports (changed in the book, no update pushed), then the
        # socket drops: reconciliation after the reconnect catches up. (Waiting to see the
        # stream down raced its 50 ms reconnect.)
        with fake._lock:
            fake.orders[order.order_id]["status"] = "cancelled"
        fake.drop_portfolio()
        await until(lambda: stream.connects == 2, 10)
        await until(lambda: pump() or seen[order.order_id].status is OrderStatus.CANCELLED)
        assert seen[order.order_id].filled_quantity == 1
        assert stream.reconciled >= 1 and fake.portfolio_connects == 2
    finally:
        await stream.stopped()
        execution.api.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def browser_that_follows(
    fake: FakeUpstox, tamper: Callable[[str], str] = str
) -> Callable[[str], None]:
    """A browser: the dialog (the fake logs the trader in) and then the redirect, as given."""

    def open_browser(url: str) -> None:
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            opener.open(url, timeout=5)
        except urllib.error.HTTPError as exc:
            location = tamper(exc.headers["Location"])
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(location, timeout=5).read()

    return open_browser


async def test_interactive_login_catches_the_redirect_on_loopback(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    session, store = session_for(fake, clock)
    session._redirect_uri = f"http://127.0.0.1:{free_port()}/cb/upstox"
    shown: list[str] = []
    token = await session.login(
        browser_that_follows(fake), within=10, on_listening=shown.append
    )
    assert token.access_token in fake.access_tokens
    assert shown and "state=" in shown[0]
    assert store.get(SESSION) is not None


async def test_interactive_login_ignores_a_forged_redirect_and_times_out(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    session, _ = session_for(fake, clock)
    session._redirect_uri = f"http://127.0.0.1:{free_port()}/cb/upstox"

    def forge(location: str) -> str:
        return location.replace("state=", "state=forged")

    with pytest.raises(SessionExpired, match="within 1 s"):
        await session.login(browser_that_follows(fake, forge), within=1)
    with pytest.raises(SessionExpired, match=r"must be http://127\.0\.0\.1"):
        session._redirect_uri = "http://localhost:5000/cb"
        await session.login(browser_that_follows(fake), within=1)
