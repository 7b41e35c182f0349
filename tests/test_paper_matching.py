"""The paper broker's pure pieces: depth walking, trigger rule and margin model."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.domain import Depth, DepthLevel, Position, Product, Side
from services.instruments import InstrumentRegistry, bundled_universe
from services.paper.margin import margin_for, position_margin, product_error
from services.paper.matching import Take, TickBook, price_ok, trigger_touched

D = Decimal
REG = InstrumentRegistry(bundled_universe(date(2026, 3, 10))[0])
RELIANCE = REG.get("NSE:RELIANCE")
FUT = REG.get("NFO:NIFTY26MARFUT")
CALL = REG.get("NFO:NIFTY26MAR26000CE")


def book(bids: list[tuple[str, int]], asks: list[tuple[str, int]]) -> TickBook:
    return TickBook(
        Depth(
            bids=tuple(DepthLevel(D(p), q, 1) for p, q in bids),
            asks=tuple(DepthLevel(D(p), q, 1) for p, q in asks),
        )
    )


def test_buy_walks_asks_best_first_up_to_quantity() -> None:
    b = book([("99.95", 10)], [("100.00", 3), ("100.05", 4), ("100.10", 50)])
    assert b.take(Side.BUY, 10) == [
        Take(D("100.00"), 3),
        Take(D("100.05"), 4),
        Take(D("100.10"), 3),
    ]


def test_sell_walks_bids_and_stops_at_limit() -> None:
    b = book([("99.95", 2), ("99.90", 2), ("99.85", 100)], [("100.00", 3)])
    takes = b.take(Side.SELL, 10, D("99.90"))
    assert takes == [Take(D("99.95"), 2), Take(D("99.90"), 2)]
    assert all(t.price >= D("99.90") for t in takes)


def test_visible_quantity_is_consumed_once() -> None:
    b = book([], [("100.00", 6)])
    assert b.take(Side.BUY, 5) == [Take(D("100.00"), 5)]
    assert b.take(Side.BUY, 5) == [Take(D("100.00"), 1)]
    assert b.take(Side.BUY, 5) == []
    assert b.available(Side.BUY) == 0


def test_touch_only_takes_the_best_level_alone() -> None:
    b = book([], [("100.00", 2), ("100.05", 20)])
    assert b.take(Side.BUY, 10, D("100.05"), touch_only=True) == [Take(D("100.00"), 2)]
    # The touch is spent: a resting order gets nothing more from deeper levels on this tick.
    assert b.take(Side.BUY, 10, D("100.05"), touch_only=True) == []


def test_empty_side_fills_nothing() -> None:
    assert book([("99.95", 10)], []).take(Side.BUY, 1) == []


def test_price_ok_and_trigger_rules() -> None:
    assert price_ok(Side.BUY, D("100"), D("100")) and not price_ok(Side.BUY, D("100.05"), D("100"))
    assert price_ok(Side.SELL, D("100"), D("100")) and not price_ok(Side.SELL, D("99.95"), D("100"))
    assert trigger_touched(Side.BUY, D("101"), D("101"))
    assert not trigger_touched(Side.BUY, D("100.95"), D("101"))
    assert trigger_touched(Side.SELL, D("99"), D("99"))
    assert not trigger_touched(Side.SELL, D("99.05"), D("99"))


@pytest.mark.parametrize(
    ("which", "product", "side", "qty", "price", "expected"),
    [
        ("eq", Product.CNC, Side.BUY, 10, "1500", "15000.00"),
        ("eq", Product.MIS, Side.BUY, 10, "1500", "3000.00"),
        ("eq", Product.MIS, Side.SELL, 3, "1500.05", "900.03"),  # 900.03 from 900.030: exact
        ("eq", Product.MIS, Side.SELL, 1, "0.05", "0.01"),  # 0.01 rounded up from 0.010
        ("fut", Product.NRML, Side.BUY, 65, "26000", "253500.00"),
        ("fut", Product.NRML, Side.SELL, 65, "26000", "253500.00"),
        ("opt", Product.NRML, Side.BUY, 65, "120.50", "7832.50"),
        ("opt", Product.NRML, Side.SELL, 65, "120.50", "253500.00"),  # 15% of strike notional
    ],
)
def test_margin_model(
    which: str, product: Product, side: Side, qty: int, price: str, expected: str
) -> None:
    inst = {"eq": RELIANCE, "fut": FUT, "opt": CALL}[which]
    assert inst is not None
    assert margin_for(inst, product, side, qty, D(price)) == D(expected)


def test_margin_rounds_up_to_the_paisa() -> None:
    assert RELIANCE is not None
    assert margin_for(RELIANCE, Product.MIS, Side.BUY, 1, D("1500.03")) == D("300.01")


def test_position_margin_uses_average_price_and_direction() -> None:
    assert CALL is not None
    short = Position(CALL.key, Product.NRML, quantity=-65, average_price=D("100"))
    long = Position(CALL.key, Product.NRML, quantity=65, average_price=D("100"))
    assert position_margin(CALL, short) == D("253500.00")
    assert position_margin(CALL, long) == D("6500.00")
    assert position_margin(CALL, Position(CALL.key, Product.NRML)) == 0


def test_products_match_instrument_kinds() -> None:
    assert RELIANCE is not None and FUT is not None
    assert product_error(RELIANCE, Product.CNC) is None
    assert product_error(FUT, Product.MIS) is None
    assert "CNC is for delivery equity" in (product_error(FUT, Product.CNC) or "")
    assert "NRML is for derivatives" in (product_error(RELIANCE, Product.NRML) or "")
