"""Angel One's order-update socket against the fake: pushed updates reach ``ORDERS``, a
transition missed while the socket was down arrives by the order-book read after the
reconnect, a silent socket is redialled, and a refused session waits for a new one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

from services.brokers.angelone.config import AngelEndpoints
from services.brokers.angelone.execution import AngelExecution
from services.brokers.angelone.order_stream import AngelOrderStream
from services.bus import ORDERS, EventBus
from services.domain import Order, OrderRequest, OrderStatus, OrderType, Product, Side
from tests.brokers.angelone.conftest import make_execution, tokens_for
from tests.fakes.angelone import FakeAngel


async def until(check: Callable[[], bool], within: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.02)


def resting(price: str) -> OrderRequest:
    return OrderRequest(
        key="NSE:SBIN", side=Side.BUY, quantity=5, order_type=OrderType.LIMIT,
        product=Product.CNC, price=Decimal(price),
    )  # fmt: skip


class Seen:
    """Every order the bus carried, latest state per order id."""

    def __init__(self, bus: EventBus) -> None:
        self.sub = bus.subscribe(ORDERS, "test-orders", lossless=True)
        self.latest: dict[str, Order] = {}

    def read(self) -> dict[str, Order]:
        for order in self.sub.drain():
            self.latest[order.order_id] = order
        return self.latest

    def status(self, order_id: str) -> OrderStatus | None:
        order = self.read().get(order_id)
        return order.status if order is not None else None


def stream_for(fake: FakeAngel, execution: AngelExecution, bus: EventBus, **kw: float) -> (
    AngelOrderStream
):
    kw.setdefault("ping_every", 0.2)
    kw.setdefault("stale_after", 2.0)
    kw.setdefault("first_delay", 0.05)
    expired: list[int] = []
    stream = AngelOrderStream(
        execution, fake.order_stream_url, bus=bus, on_session_expired=lambda: expired.append(1),
        **kw,
    )  # fmt: skip
    stream.expired = expired  # type: ignore[attr-defined]
    return stream


async def test_updates_arrive_and_a_fill_missed_while_down_is_reconciled(
    fake: FakeAngel,
) -> None:
    bus = EventBus()
    bus.bind_loop(asyncio.get_running_loop())
    seen = Seen(bus)
    execution = make_execution(fake, bus=bus, confirm_after=0.0)
    stream = stream_for(fake, execution, bus)
    stream.start()
    try:
        await until(lambda: stream.connected, what="order socket connected")
        # The book read after connecting is done before anything is counted below.
        await until(lambda: stream.reconciles == 1, what="the first reconcile")
        tokens = execution.tokens
        assert tokens is not None
        assert fake.order_socket_headers[0] == {
            "x-api-key": fake.api_key,
            "x-client-code": fake.client_code,
            "x-feed-token": tokens.feed,
        }
        a = await execution.place_order(resting("800.05"))
        b = await execution.place_order(resting("799.95"))
        await until(lambda: seen.status(a.order_id) is OrderStatus.OPEN, what="A open")
        await until(lambda: seen.status(b.order_id) is OrderStatus.OPEN, what="B open")
        await until(lambda: stream.updates >= 2, what="the placements pushed on the socket")
        await until(lambda: fake.count("details") >= 2, what="both placements read back")
        await asyncio.sleep(0.2)  # nothing else of the placements is still in flight

        # A fills at the exchange: nobody asks Angel, the socket says so.
        reads = fake.count("getOrderBook") + fake.count("details")
        updates = stream.updates
        fake.fill(a.order_id)
        await until(lambda: seen.status(a.order_id) is OrderStatus.FILLED, what="A filled")
        assert stream.updates == updates + 1
        assert fake.count("getOrderBook") + fake.count("details") == reads
        assert seen.read()[a.order_id].filled_quantity == 5

        # The socket goes down and cannot come back; B fills meanwhile (no socket to tell).
        fake.refuse_order_sockets = True
        assert fake.drop_order_sockets() == 1
        await until(lambda: not stream.connected, what="the drop noticed")
        sent = len(fake.order_updates_sent)
        fake.fill(b.order_id)
        assert len(fake.order_updates_sent) == sent  # nobody to push it to
        await until(lambda: fake.order_socket_refused >= 1, what="a refused redial")
        await asyncio.sleep(0.3)
        assert seen.status(b.order_id) is OrderStatus.OPEN

        # Back: the order book read after the reconnect brings B's fill.
        fake.refuse_order_sockets = False
        await until(lambda: stream.connects == 2, what="reconnected")
        await until(lambda: seen.status(b.order_id) is OrderStatus.FILLED, what="B reconciled")
        await until(lambda: stream.reconciles == 2, what="the reconcile after the reconnect")
        assert stream.reconciled >= 2
    finally:
        await stream.stopped()
    assert not stream.running and not stream.connected
    await until(lambda: not fake.order_sockets, what="the fake saw the socket closed")


async def test_a_silent_socket_is_redialled(fake: FakeAngel) -> None:
    bus = EventBus()
    bus.bind_loop(asyncio.get_running_loop())
    execution = make_execution(fake, bus=bus)
    stream = stream_for(fake, execution, bus, stale_after=0.8)
    stream.start()
    try:
        await until(lambda: stream.connected, what="connected")
        await asyncio.sleep(1.2)  # pongs keep a quiet socket alive past stale_after
        assert stream.connects == 1
        fake.silent = True  # no pong, no update: silent past stale_after
        await until(lambda: stream.connects >= 2, what="redialled after the silence")
    finally:
        fake.silent = False
        await stream.stopped()


async def test_a_refused_session_waits_for_a_new_one(fake: FakeAngel) -> None:
    bus = EventBus()
    bus.bind_loop(asyncio.get_running_loop())
    execution = make_execution(fake, bus=bus)
    fake.expire_sessions()
    stream = stream_for(fake, execution, bus)
    stream.start()
    try:
        await until(lambda: stream.refusals == 1, what="the handshake refused")
        await asyncio.sleep(0.5)
        assert stream.refusals == 1, "a refused session must not be retried"
        assert stream.expired == [1]  # type: ignore[attr-defined]
        assert not stream.connected
        execution.set_tokens(tokens_for(fake))  # a new login
        await until(lambda: stream.connected, what="connected with the new session")
    finally:
        await stream.stopped()


def test_the_order_socket_follows_an_overridden_feed() -> None:
    """Overriding the market feed alone (a fake, a proxy) never leaves the order socket
    dialling Angel's own host."""
    assert AngelEndpoints().order_updates_url() == "wss://tns.angelone.in/smart-order-update"
    local = AngelEndpoints(stream="ws://127.0.0.1:8123/smart-stream")
    assert local.order_updates_url() == "ws://127.0.0.1:8123/smart-order-update"
    chosen = AngelEndpoints(stream="ws://127.0.0.1:1/x", order_stream="ws://127.0.0.1:2/y")
    assert chosen.order_updates_url() == "ws://127.0.0.1:2/y"
