"""The desktop's stream client on its own: clock skew shown, gaps refused, snapshots applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.brokers.node.stream import COMPONENT, NodeStream, _Resync
from services.bus import CONNECTION, ORDERS, EventBus
from services.clock import ManualClock

NOW = datetime(2026, 3, 10, 4, 30, tzinfo=UTC)


def hello(epoch: str, seq: int, skew: float = 0.0) -> dict[str, object]:
    server = NOW + timedelta(seconds=skew)
    return {"type": "hello", "protocol": "dalal.stream.v1", "epoch": epoch, "seq": seq,
            "server_time": server.isoformat()}  # fmt: skip


def order_event(seq: int, order_id: str) -> dict[str, object]:
    return {"type": "event", "seq": seq, "kind": "order", "time": NOW.isoformat(), "data": {
        "order_id": order_id, "key": "NSE:INFY", "side": "BUY", "quantity": 1,
        "order_type": "LIMIT", "product": "CNC", "validity": "DAY", "price": "1400.05",
        "trigger_price": None, "tag": "dt1", "source": "api", "status": "OPEN",
        "filled_quantity": 0, "average_price": "0", "status_message": "",
        "placed_at": NOW.isoformat(), "updated_at": NOW.isoformat()}}  # fmt: skip


def test_clock_skew_is_measured_and_shown() -> None:
    bus = EventBus()
    states = bus.subscribe(CONNECTION, "test")
    stream = NodeStream("http://127.0.0.1:1", "dk_x", bus, ManualClock(NOW))
    stream._handle(hello("a" * 16, 0, skew=-7.5))
    assert stream.connected and stream.skew_seconds == pytest.approx(-7.5)
    shown = [s for s in states.drain() if s.component == COMPONENT][-1]
    assert "clock differs from this one by -7.5 s" in shown.detail


def test_events_apply_in_order_and_a_gap_forces_a_resume() -> None:
    bus = EventBus()
    orders = bus.subscribe(ORDERS, "test", lossless=True)
    stream = NodeStream("http://127.0.0.1:1", "dk_x", bus, ManualClock(NOW))
    stream._handle(hello("b" * 16, 4))
    stream._handle({"type": "snapshot", "epoch": "b" * 16, "seq": 4, "orders": [], "fills": [],
                    "positions": [], "funds": None,
                    "trading_state": {"state": "ACTIVE", "reason": ""}})  # fmt: skip
    stream._handle(order_event(5, "o1"))
    stream._handle(order_event(5, "o1"))  # a repeat is ignored, never applied twice
    assert [o.order_id for o in orders.drain()] == ["o1"] and stream.seq == 5
    with pytest.raises(_Resync):
        stream._handle(order_event(7, "o2"))  # 6 is missing: reconnect with since=5
    assert stream.seq == 5 and orders.drain() == []
    # Decimal prices arrive exactly.
    stream._handle(order_event(6, "o2"))
    assert str(orders.drain()[0].request.price) == "1400.05"
