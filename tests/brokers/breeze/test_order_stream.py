"""Breeze's order notifications against the fake: a notification brings the order's new
state onto ``ORDERS`` (read back once through the real SDK), a fill missed while the socket
was down arrives by the order-list read after the reconnect, and a refused session waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

from services.brokers.breeze.execution import BreezeExecution
from services.brokers.breeze.order_stream import BreezeOrderStream
from services.brokers.breeze.sdk import load_sdk
from services.brokers.breeze.wire import order_notice
from services.bus import ORDERS, EventBus
from services.domain import Order, OrderRequest, OrderStatus, OrderType, Product, Side
from tests.brokers.breeze.conftest import Rig
from tests.fakes.breeze.server import FakeBreeze


async def until(check: Callable[[], bool], within: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.02)


def resting(price: str) -> OrderRequest:
    return OrderRequest(
        key="NSE:INFY", side=Side.BUY, quantity=3, order_type=OrderType.LIMIT,
        product=Product.CNC, price=Decimal(price),
    )  # fmt: skip


class Seen:
    def __init__(self, bus: EventBus) -> None:
        self.sub = bus.subscribe(ORDERS, "test-orders", lossless=True)
        self.latest: dict[str, Order] = {}

    def status(self, order_id: str) -> OrderStatus | None:
        for order in self.sub.drain():
            self.latest[order.order_id] = order
        order = self.latest.get(order_id)
        return order.status if order is not None else None


async def started(rig: Rig) -> tuple[BreezeExecution, BreezeOrderStream, Seen]:
    rig.bus.bind_loop(asyncio.get_running_loop())
    seen = Seen(rig.bus)
    await rig.execution()  # logs in (stores the session) if needed
    parts = rig.parts()
    execution, stream = parts.execution, parts.order_stream
    assert isinstance(execution, BreezeExecution) and isinstance(stream, BreezeOrderStream)
    stream.start()
    return execution, stream, seen


async def test_notifications_bring_orders_and_a_missed_fill_is_reconciled(
    rig: Rig, fake: FakeBreeze
) -> None:
    execution, stream, seen = await started(rig)
    try:
        await until(lambda: stream.connected, what="order notifications connected")
        await until(lambda: stream.reconciles == 1, what="the first reconcile")
        a = await execution.place_order(resting("1500.00"))
        b = await execution.place_order(resting("1499.00"))
        await until(lambda: seen.status(a.order_id) is OrderStatus.OPEN, what="A open")
        await until(lambda: seen.status(b.order_id) is OrderStatus.OPEN, what="B open")

        # A fills at the exchange: the notification names it and it is read back once.
        reads = stream.reads
        fake.fill(a.order_id)
        await until(lambda: seen.status(a.order_id) is OrderStatus.FILLED, what="A filled")
        assert stream.reads >= reads + 1
        assert seen.latest[a.order_id].average_price == Decimal("1500.00")

        # Down and refused; B fills meanwhile and its notification reaches nobody.
        fake.refuse_sockets = True
        assert fake.drop_sockets() >= 1
        await until(lambda: not stream.connected, what="the drop noticed")
        notices = stream.notices
        fake.fill(b.order_id)
        await until(lambda: fake.socket_refusals >= 1, what="a redial refused")
        assert stream.refusals == 0  # a server that is down is not a refused session
        assert stream.notices == notices
        assert seen.status(b.order_id) is OrderStatus.OPEN

        # Back: the order lists read after the reconnect bring B's fill.
        fake.refuse_sockets = False
        await until(lambda: stream.connects >= 2, within=15, what="reconnected")
        await until(lambda: seen.status(b.order_id) is OrderStatus.FILLED, what="B reconciled")
        await until(lambda: stream.reconciles == 2, what="the reconcile after the reconnect")
        assert stream.reconciled >= 2
    finally:
        await stream.stopped()
    assert not stream.running and not stream.connected


async def test_a_refused_session_waits_for_a_new_one(rig: Rig, fake: FakeBreeze) -> None:
    await rig.login()
    fake.expire_session()
    _, stream, _ = await started(rig)
    try:
        await until(lambda: stream.refusals == 1, what="the session refused")
        await asyncio.sleep(0.5)
        assert stream.refusals == 1, "a refused session key must not be retried"
        assert rig.expired_calls >= 1
        assert not stream.connected
    finally:
        await stream.stopped()


def test_the_fakes_notification_is_what_the_sdk_parses(fake: FakeBreeze) -> None:
    """The fake's ``order`` list read by breeze-connect's own ``parse_data`` and by ours."""
    sdk = load_sdk(fake.endpoints)
    client = sdk.BreezeConnect(api_key=fake.api_key)
    order = {
        "order_id": "20261125N300000007", "exchange_code": "NSE", "stock_code": "INFTEC",
        "product_type": "Cash", "action": "Buy", "order_type": "Limit", "validity": "Day",
        "stoploss": "0.00", "quantity": "10", "price": "1500.00", "pending_quantity": "4",
        "cancelled_quantity": "0", "average_price": "1499.50", "status": "Partially Executed",
        "right": None, "strike_price": 0.0, "expiry_date": None, "_filled": 6,
    }  # fmt: skip
    parsed = client.parse_data(fake.order_notice(order))
    assert parsed["orderReference"] == "20261125N300000007"
    assert parsed["orderStatus"] == "Partially Executed"
    assert parsed["orderExchangeCode"] == "NSE" and parsed["stockCode"] == "INFTEC"
    assert parsed["orderExecutedQuantity"] == "6" and parsed["averageExecutedRate"] == "1499.50"
    ours = order_notice(fake.order_notice(order))
    assert ours is not None
    assert (ours.order_id, ours.exchange, ours.status) == ("20261125N300000007", "NSE", "P")
    option = {
        **order, "exchange_code": "NFO", "stock_code": "NIFTY", "product_type": "Options",
        "right": "Call", "strike_price": 24000.0, "expiry_date": "30-Dec-2026",
    }  # fmt: skip
    parsed = client.parse_data(fake.order_notice(option))
    assert parsed["orderReference"] == "20261125N300000007"
    assert parsed["orderStatus"] == "Partially Executed" and parsed["optionType"] == "Call"
    assert parsed["averageExecutedRate"] == "1499.50"
    # Lists that are not orders (iClick tips, 19 items) are not taken for one.
    assert order_notice(["TIP", *["x"] * 18]) is None
