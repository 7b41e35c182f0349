"""Hand-made instruments and an in-memory world for the risk tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.clock import IST, ManualClock
from services.domain import (
    Exchange,
    Instrument,
    InstrumentKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
)
from services.risk import CallbackContext, RiskEngine, RiskLimits, StateStore

START = datetime(2026, 1, 6, 10, 0, tzinfo=IST)
EXPIRY = date(2026, 1, 27)

EQUITY = Instrument(Exchange.NSE, "INFY", "1", "Infosys", InstrumentKind.EQUITY, Decimal("0.05"), 1)
FUTURE = Instrument(
    Exchange.NFO, "NIFTY26JANFUT", "2", "NIFTY", InstrumentKind.FUTURE, Decimal("0.05"), 75,
    expiry=EXPIRY, underlying="NSE:NIFTY 50", freeze_quantity=1800,
)
CALL = Instrument(
    Exchange.NFO, "NIFTY26JAN25000CE", "3", "NIFTY", InstrumentKind.CALL, Decimal("0.05"), 75,
    expiry=EXPIRY, strike=Decimal(25000), underlying="NSE:NIFTY 50", freeze_quantity=1800,
)
# No freeze quantity in the instrument data: the profile's table must supply it.
BANK_CALL = Instrument(
    Exchange.NFO, "BANKNIFTY26JAN50000CE", "4", "BANKNIFTY", InstrumentKind.CALL,
    Decimal("0.05"), 30, expiry=EXPIRY, strike=Decimal(50000), underlying="NSE:NIFTY BANK",
)


@dataclass
class World:
    """What the engine sees: prices, orders, positions and funds, all set by the test."""

    clock: ManualClock
    prices: dict[str, Decimal] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    funds: Decimal | None = None
    audit_log: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def context(self) -> CallbackContext:
        return CallbackContext(
            clock=self.clock,
            last_price_of=self.prices.get,
            open_orders_of=lambda: self.orders,
            positions_of=lambda: self.positions,
            funds_of=lambda: self.funds,
        )

    def audit(self, kind: str, actor: str, details: Mapping[str, Any]) -> None:
        self.audit_log.append((kind, actor, dict(details)))

    def engine(
        self, limits: RiskLimits | None = None, store: StateStore | None = None
    ) -> RiskEngine:
        return RiskEngine(limits or RiskLimits(), self.context(), store=store, audit=self.audit)

    def add_open_order(self, request: OrderRequest, n: int = 1) -> None:
        now = self.clock.now()
        for _ in range(n):
            oid = f"O{len(self.orders) + 1}"
            self.orders.append(Order(oid, request, OrderStatus.OPEN, now, now))

    def audit_kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.audit_log]


def make_world() -> World:
    w = World(clock=ManualClock(START))
    w.prices.update(
        {EQUITY.key: Decimal(1000), FUTURE.key: Decimal(25000), CALL.key: Decimal(100),
         BANK_CALL.key: Decimal(200)}
    )
    return w


def limit(
    inst: Instrument, side: Side, qty: int, price: str, product: Product = Product.MIS
) -> OrderRequest:
    return OrderRequest(inst.key, side, qty, OrderType.LIMIT, product, price=Decimal(price))


def market(inst: Instrument, side: Side, qty: int, product: Product = Product.MIS) -> OrderRequest:
    return OrderRequest(inst.key, side, qty, OrderType.MARKET, product)


def position(inst: Instrument, qty: int, product: Product = Product.MIS) -> Position:
    return Position(inst.key, product, quantity=qty, average_price=Decimal(100))
