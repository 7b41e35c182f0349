"""Vocabulary rules that everything else relies on: P&L arithmetic and the order state machine."""

from datetime import datetime
from decimal import Decimal

import pytest

from services.clock import IST
from services.domain import (
    InvalidTransition,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
    is_on_tick,
    round_to_tick,
)

D = Decimal
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=IST)


def test_position_average_price_and_realised_pnl_are_exact() -> None:
    p = Position("NSE:INFY", Product.MIS)
    p = p.apply_fill(Side.BUY, 10, D("1500.05"))
    p = p.apply_fill(Side.BUY, 30, D("1501.45"))
    assert p.quantity == 40 and p.average_price == D("1501.10")
    p = p.apply_fill(Side.SELL, 15, D("1510.10"))
    assert p.quantity == 25 and p.average_price == D("1501.10")
    assert p.realised_pnl == D("135.00")
    p = p.apply_fill(Side.SELL, 25, D("1490.10"))
    assert p.quantity == 0 and p.average_price == 0 and p.realised_pnl == D("-140.00")


def test_position_flip_through_zero_opens_the_rest_at_the_fill_price() -> None:
    p = Position("NFO:NIFTY26DECFUT", Product.NRML).apply_fill(Side.BUY, 65, D("26000"))
    p = p.apply_fill(Side.SELL, 130, D("26010"))
    assert p.quantity == -65 and p.average_price == D("26010")
    assert p.realised_pnl == D("650")
    p = p.__class__(**{**{f: getattr(p, f) for f in p.__slots__}, "last_price": D("26000")})
    assert p.unrealised_pnl == D("650")


def test_tick_grid_helpers() -> None:
    assert is_on_tick(D("101.05"), D("0.05"))
    assert not is_on_tick(D("101.03"), D("0.05"))
    assert round_to_tick(D("101.03"), D("0.05")) == D("101.05")
    assert round_to_tick(D("101.02"), D("0.05")) == D("101.00")


def order(status: OrderStatus) -> Order:
    req = OrderRequest("NSE:INFY", Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=D("1500"))
    return Order("PA1", req, status, T0, T0)


@pytest.mark.parametrize(
    "terminal", [OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED]
)
def test_terminal_orders_cannot_move(terminal: OrderStatus) -> None:
    for target in OrderStatus:
        with pytest.raises(InvalidTransition):
            order(terminal).evolve(target, T0)


def test_legal_path_and_an_illegal_backwards_move() -> None:
    o = order(OrderStatus.PENDING).evolve(OrderStatus.OPEN, T0)
    o = o.evolve(OrderStatus.PARTIALLY_FILLED, T0, filled_quantity=1)
    assert o.filled_quantity == 1
    with pytest.raises(InvalidTransition):
        o.evolve(OrderStatus.OPEN, T0)


def test_the_registry_forgets_expired_contracts() -> None:
    from datetime import date, timedelta

    from services.instruments import InstrumentRegistry, bundled_universe

    instruments, _ = bundled_universe(date(2026, 11, 25))
    registry = InstrumentRegistry(instruments)
    future = registry.get("NFO:NIFTY26DECFUT")
    assert future is not None and future.expiry is not None
    first = min(i.expiry for i in instruments if i.expiry is not None)  # a NIFTY weekly
    assert registry.remove_expired(first) == 0  # valid through its expiry day
    gone = registry.remove_expired(future.expiry + timedelta(days=1))
    assert gone > 0 and registry.get(future.key) is None
    assert registry.get("NSE:RELIANCE") is not None
    assert registry.by_token(future.token) is None


def test_rupees_are_grouped_in_lakhs_and_crores() -> None:
    from services.domain import format_inr

    assert format_inr(D("999.5")) == "₹999.50"
    assert format_inr(D("100000")) == "₹1,00,000.00"
    assert format_inr(D("12345678.905")) == "₹1,23,45,678.90"  # banker's rounding of paise
    assert format_inr(D("-2500")) == "-₹2,500.00"
