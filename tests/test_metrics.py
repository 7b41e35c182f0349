"""The metrics module: exact pulled gauges, separate registries, loop lag and ack latency."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from decimal import Decimal

from services.bus import ORDERS, TICKS, EventBus
from services.clock import IST
from services.domain import (
    Funds,
    Holding,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
    Tick,
)
from services.metrics import FeedSource, Metrics, PortfolioSource, RiskSource

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=IST)


def order(oid: str, status: OrderStatus) -> Order:
    request = OrderRequest(
        "NSE:INFY", Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=Decimal("1500.00")
    )
    return Order(oid, request, status, T0, T0 + timedelta(seconds=1))


def tick(key: str) -> Tick:
    p = Decimal("100.00")
    return Tick(key, T0, p, 1, 10, p, p, p, p)


def test_orders_gauge_is_exact_per_state_and_lists_every_state() -> None:
    book = [
        order("1", OrderStatus.OPEN),
        order("2", OrderStatus.OPEN),
        order("3", OrderStatus.FILLED),
        order("4", OrderStatus.REJECTED),
    ]
    m = Metrics(process=False)
    m.watch_orders(lambda: book)
    assert m.sample("dalal_orders", {"state": "OPEN"}) == 2
    assert m.sample("dalal_orders", {"state": "FILLED"}) == 1
    for status in OrderStatus:  # zero states are exported too, so rate() and alerts see them
        assert m.sample("dalal_orders", {"state": status.value}) is not None
    book[0] = order("1", OrderStatus.CANCELLED)  # read at scrape time: no stale counter
    assert m.sample("dalal_orders", {"state": "OPEN"}) == 1
    assert m.sample("dalal_orders", {"state": "CANCELLED"}) == 1


def test_bus_and_feed_counters_follow_their_sources() -> None:
    bus = EventBus()
    m = Metrics(process=False)
    m.watch_bus(bus)
    received = [0]
    age: list[float | None] = [None]
    m.watch_feed(FeedSource("sim", lambda: received[0], lambda: age[0]))

    assert m.sample("dalal_feed_last_tick_age_seconds", {"feed": "sim"}) is None
    for _ in range(3):
        bus.publish(TICKS, tick("NSE:INFY"))
    bus.publish(ORDERS, order("1", OrderStatus.OPEN))
    received[0], age[0] = 3, 0.25
    assert m.sample("dalal_bus_published_total", {"topic": "ticks"}) == 3
    assert m.sample("dalal_bus_published_total", {"topic": "orders"}) == 1
    assert m.sample("dalal_ticks_received_total", {"feed": "sim"}) == 3
    assert m.sample("dalal_feed_last_tick_age_seconds", {"feed": "sim"}) == 0.25


def test_each_instance_has_its_own_registry_with_process_metrics() -> None:
    a, b = Metrics(version="1.2.3"), Metrics()  # the global registry would refuse the second
    a.order_ack_observer("paper")(0.003)
    assert a.sample("dalal_order_ack_seconds_count", {"broker": "paper"}) == 1
    assert b.sample("dalal_order_ack_seconds_count", {"broker": "paper"}) is None
    assert a.sample("dalal_build_info", {"version": "1.2.3"}) == 1
    body, content_type = a.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert "process_resident_memory_bytes" in text
    assert "python_info" in text
    assert 'dalal_order_ack_seconds_bucket{broker="paper",le="0.005"} 1.0' in text


def test_exposition_negotiates_openmetrics() -> None:
    body, content_type = Metrics(process=False).exposition("application/openmetrics-text")
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().rstrip().endswith("# EOF")


async def test_loop_lag_records_the_time_the_loop_was_blocked() -> None:
    m = Metrics(process=False)
    task = asyncio.create_task(m.measure_loop_lag(interval=0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.12)  # noqa: ASYNC251 - a callback hogging the loop, like a blocking SDK call
    await asyncio.sleep(0.05)
    task.cancel()
    count = m.sample("dalal_event_loop_lag_seconds_count")
    assert count is not None and count >= 2
    # The blocked wake-up lands above 0.1 s; the quiet ones stay far below.
    slow = count - (m.sample("dalal_event_loop_lag_seconds_bucket", {"le": "0.1"}) or 0)
    assert slow >= 1
    assert (m.sample("dalal_event_loop_lag_seconds_sum") or 0) >= 0.1


def test_risk_portfolio_and_model_figures_are_read_at_scrape_time() -> None:
    rejections = {"max_order_value": 1}
    state = ["ACTIVE"]
    positions = [
        Position("NSE:INFY", Product.MIS, 10, Decimal("1500"), Decimal("25.50"), Decimal("1510")),
        Position("NSE:TCS", Product.MIS, 0, Decimal("0"), Decimal("-5.25"), Decimal("3100")),
    ]
    m = Metrics(process=False)
    m.watch_risk(RiskSource(lambda: rejections, lambda: state[0]))
    m.watch_portfolio(
        PortfolioSource(
            lambda: positions,
            lambda: Funds(Decimal(100000), Decimal("90000.50"), Decimal("9999.50")),
            lambda: [Holding("NSE:ITC", 100, Decimal(400), Decimal("410.25"))],
        )
    )
    m.watch_model_accuracy(lambda: {("momentum", 3): 0.54})

    assert m.sample("dalal_risk_rejections_total", {"rule": "max_order_value"}) == 1
    assert m.sample("dalal_trading_state", {"state": "ACTIVE"}) == 1
    rejections["max_order_value"] = 4
    state[0] = "HALTED"
    assert m.sample("dalal_risk_rejections_total", {"rule": "max_order_value"}) == 4
    assert m.sample("dalal_trading_state", {"state": "ACTIVE"}) == 0
    assert m.sample("dalal_trading_state", {"state": "HALTED"}) == 1
    assert m.sample("dalal_positions_open") == 1
    assert m.sample("dalal_pnl_rupees", {"kind": "realised"}) == 20.25
    assert m.sample("dalal_pnl_rupees", {"kind": "unrealised"}) == 100.0
    assert m.sample("dalal_funds_rupees", {"kind": "margin_used"}) == 9999.5
    assert m.sample("dalal_holdings_value_rupees") == 41025.0
    assert m.sample("dalal_model_live_accuracy", {"model": "momentum", "version": "3"}) == 0.54
