from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from services.domain import (
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Tick,
)

T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


def make_order(order_id: str, tag: str | None = None, price: str = "2500.05") -> Order:
    request = OrderRequest(
        key="NSE:RELIANCE",
        side=Side.BUY,
        quantity=10,
        order_type=OrderType.LIMIT,
        product=Product.MIS,
        price=Decimal(price),
        tag=tag,
        source="ticket",
    )
    return Order(order_id, request, OrderStatus.PENDING, T0, T0)


def make_fill(fill_id: str, order_id: str) -> Fill:
    return Fill(fill_id, order_id, "NSE:RELIANCE", Side.BUY, Product.MIS, 5, Decimal("2500.05"), T0)


def make_tick(key: str, ts: datetime, i: int) -> Tick:
    price = Decimal("100.00") + Decimal(i % 50) / 20
    return Tick(
        key, ts, price, 1, i, Decimal("100"), Decimal("103"), Decimal("97"), Decimal("99.5")
    )
