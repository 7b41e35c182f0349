"""Every pre-trade rule at its boundary: the value at the limit passes, one step over fails."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.broker import OrderRejected
from services.domain import OrderRequest, OrderType, Product, Side
from services.domain import format_inr as inr
from services.risk import RiskLimits
from tests.risk.support import BANK_CALL, CALL, EQUITY, FUTURE, World, limit, market, position


def test_inr_uses_lakh_and_crore_grouping() -> None:
    assert inr(Decimal(1250000)) == "₹12,50,000.00"
    assert inr(Decimal("123456789.5")) == "₹12,34,56,789.50"
    assert inr(Decimal(999)) == "₹999.00"
    assert inr(Decimal(-1000)) == "-₹1,000.00"


def test_lot_size(world: World) -> None:
    engine = world.engine()
    engine(limit(CALL, Side.BUY, 150, "100"), CALL)
    with pytest.raises(OrderRejected) as info:
        engine(limit(CALL, Side.BUY, 151, "100.05"), CALL)
    assert info.value.rule == "lot_size"
    assert "151" in str(info.value) and "75" in str(info.value)


def test_tick_size(world: World) -> None:
    engine = world.engine()
    engine(limit(EQUITY, Side.BUY, 1, "1000.05"), EQUITY)
    with pytest.raises(OrderRejected) as info:
        engine(limit(EQUITY, Side.BUY, 2, "1000.06"), EQUITY)
    assert info.value.rule == "tick_size"
    assert str(info.value).startswith("tick_size: price 1000.06")


def test_freeze_quantity_from_instrument(world: World) -> None:
    engine = world.engine(RiskLimits(max_order_quantity=None, max_order_value=None,
                                     check_margin=False))
    engine(market(FUTURE, Side.BUY, 1800), FUTURE)  # 24 lots: exactly the freeze quantity
    with pytest.raises(OrderRejected) as info:
        engine(market(FUTURE, Side.SELL, 1875), FUTURE)
    assert info.value.rule == "freeze_quantity"
    assert "1875" in str(info.value) and "1800" in str(info.value)


def test_freeze_quantity_from_profile_table(world: World) -> None:
    limits = RiskLimits(freeze_quantities={"BANKNIFTY": 600}, max_order_value=None,
                        check_margin=False)
    engine = world.engine(limits)
    engine(market(BANK_CALL, Side.BUY, 600), BANK_CALL)
    with pytest.raises(OrderRejected) as info:
        engine(market(BANK_CALL, Side.SELL, 630), BANK_CALL)
    assert info.value.rule == "freeze_quantity"


def test_max_order_quantity(world: World) -> None:
    engine = world.engine(RiskLimits(max_order_quantity=500, max_order_value=None))
    engine(limit(EQUITY, Side.BUY, 500, "1000"), EQUITY)
    with pytest.raises(OrderRejected) as info:
        engine(limit(EQUITY, Side.SELL, 501, "1000"), EQUITY)
    assert str(info.value) == "max_order_quantity: quantity 501 exceeds the limit 500"


def test_max_order_value_message_names_rule_limit_and_value(world: World) -> None:
    engine = world.engine(RiskLimits(check_margin=False))
    engine(limit(EQUITY, Side.BUY, 1000, "1000"), EQUITY)  # exactly ₹10,00,000
    with pytest.raises(OrderRejected) as info:
        engine(limit(EQUITY, Side.SELL, 1250, "1000"), EQUITY)
    assert str(info.value) == (
        "max_order_value: order value ₹12,50,000.00 exceeds the limit ₹10,00,000.00"
    )
    with pytest.raises(OrderRejected):  # one tick over the limit
        engine(limit(EQUITY, Side.BUY, 1000, "1000.05"), EQUITY)


def test_market_order_is_valued_at_last_price(world: World) -> None:
    engine = world.engine(RiskLimits(max_order_value=Decimal(100_000), check_margin=False))
    engine(market(EQUITY, Side.BUY, 100), EQUITY)
    world.prices[EQUITY.key] = Decimal("1000.05")
    with pytest.raises(OrderRejected) as info:
        engine(market(EQUITY, Side.SELL, 100), EQUITY)
    assert info.value.rule == "max_order_value"


def test_market_order_without_last_price_is_refused(world: World) -> None:
    del world.prices[EQUITY.key]
    with pytest.raises(OrderRejected) as info:
        world.engine()(market(EQUITY, Side.BUY, 1), EQUITY)
    assert info.value.rule == "price_band"


@pytest.mark.parametrize(
    ("side", "inside", "outside"),
    [(Side.BUY, "1100", "1100.05"), (Side.SELL, "900", "899.95")],
)
def test_equity_price_band_is_ten_percent(
    world: World, side: Side, inside: str, outside: str
) -> None:
    engine = world.engine(RiskLimits(max_order_value=None, check_margin=False))
    engine(limit(EQUITY, side, 1, inside), EQUITY)
    with pytest.raises(OrderRejected) as info:
        engine(limit(EQUITY, side, 1, outside), EQUITY)
    assert info.value.rule == "price_band"
    assert "₹1,000.00" in str(info.value)


def test_price_band_is_one_sided_like_the_exchange(world: World) -> None:
    engine = world.engine()
    engine(limit(EQUITY, Side.BUY, 1, "500"), EQUITY)  # a low bid cannot hurt
    engine(limit(EQUITY, Side.SELL, 1, "2000"), EQUITY)  # nor can a high offer


def test_future_price_band_is_five_percent(world: World) -> None:
    engine = world.engine(RiskLimits(max_order_value=None, check_margin=False))
    engine(limit(FUTURE, Side.BUY, 75, "26250"), FUTURE)
    with pytest.raises(OrderRejected):
        engine(limit(FUTURE, Side.BUY, 150, "26250.05"), FUTURE)


@pytest.mark.parametrize(
    ("premium", "upper"),
    [
        ("10", "30"),  # up to Rs 50: +/-Rs 20 absolute
        ("50", "70"),  # Rs 50 itself is still in the absolute band
        ("100", "140"),  # above Rs 50: +/-40 %
    ],
)
def test_option_price_band_follows_nse_lpp(world: World, premium: str, upper: str) -> None:
    world.prices[CALL.key] = Decimal(premium)
    engine = world.engine()
    engine(limit(CALL, Side.BUY, 75, upper), CALL)
    over = Decimal(upper) + CALL.tick_size
    with pytest.raises(OrderRejected) as info:
        engine(limit(CALL, Side.BUY, 150, str(over)), CALL)
    assert info.value.rule == "price_band"


def test_option_sell_band_floor(world: World) -> None:
    engine = world.engine()  # premium 100: floor 60
    engine(limit(CALL, Side.SELL, 75, "60"), CALL)
    with pytest.raises(OrderRejected):
        engine(limit(CALL, Side.SELL, 150, "59.95"), CALL)


def test_max_open_orders(world: World) -> None:
    engine = world.engine(RiskLimits(max_open_orders=5))
    world.add_open_order(limit(EQUITY, Side.BUY, 1, "990"), n=4)
    engine(limit(EQUITY, Side.BUY, 1, "991"), EQUITY)  # makes the fifth
    world.add_open_order(limit(EQUITY, Side.BUY, 1, "991"))
    with pytest.raises(OrderRejected) as info:
        engine(limit(EQUITY, Side.BUY, 1, "992"), EQUITY)
    assert str(info.value) == "max_open_orders: 5 open orders; one more would exceed the limit 5"


def test_duplicate_window(world: World) -> None:
    engine = world.engine()
    order = limit(EQUITY, Side.BUY, 10, "1000")
    engine(order, EQUITY)
    world.clock.advance(0.999)
    with pytest.raises(OrderRejected) as info:
        engine(order, EQUITY)
    assert info.value.rule == "duplicate_order"
    engine(limit(EQUITY, Side.BUY, 10, "1000.05"), EQUITY)  # another price is another order
    engine(limit(EQUITY, Side.SELL, 10, "1000"), EQUITY)  # another side too
    world.clock.advance(0.001)  # exactly 1 s after the first
    engine(order, EQUITY)


def test_order_rate(world: World) -> None:
    engine = world.engine(RiskLimits(duplicate_window_seconds=None))
    for _ in range(8):
        engine(limit(EQUITY, Side.BUY, 1, "1000"), EQUITY)
        world.clock.advance(0.1)
    # 8 orders at t = 0.0 .. 0.7; at t = 0.8 a ninth would make 9 in one second.
    with pytest.raises(OrderRejected) as info:
        engine(limit(EQUITY, Side.BUY, 1, "1000"), EQUITY)
    assert info.value.rule == "order_rate"
    assert "limit 8 per second" in str(info.value)
    world.clock.advance(0.2)  # t = 1.0: the first order left the window
    engine(limit(EQUITY, Side.BUY, 1, "1000"), EQUITY)


def test_margin(world: World) -> None:
    engine = world.engine()
    world.funds = Decimal(20_000)  # MIS equity: 20 % of 100 x 1000
    engine(limit(EQUITY, Side.BUY, 100, "1000"), EQUITY)
    with pytest.raises(OrderRejected) as info:
        engine(limit(EQUITY, Side.BUY, 100, "1000.05"), EQUITY)
    assert str(info.value) == (
        "margin: required margin ₹20,001.00 exceeds available funds ₹20,000.00"
    )


def test_margin_does_not_block_closing_a_position(world: World) -> None:
    world.funds = Decimal(0)
    world.positions.append(position(EQUITY, 100))
    engine = world.engine()
    engine(limit(EQUITY, Side.SELL, 100, "1000"), EQUITY)
    with pytest.raises(OrderRejected) as info:
        engine(limit(EQUITY, Side.SELL, 101, "1000.05"), EQUITY)  # would open a short
    assert info.value.rule == "margin"


def test_a_rule_set_to_none_is_off(world: World) -> None:
    engine = world.engine(
        RiskLimits(max_order_value=None, max_order_quantity=None, equity_price_band_percent=None,
                   check_margin=False)
    )
    engine(limit(EQUITY, Side.BUY, 50_000, "5000"), EQUITY)


def test_rejections_are_counted_by_rule_and_usage_is_reported(world: World) -> None:
    engine = world.engine(RiskLimits(max_open_orders=3))
    world.add_open_order(limit(EQUITY, Side.BUY, 1, "990"), n=2)
    engine(limit(EQUITY, Side.BUY, 1, "1000"), EQUITY)
    for price in ("1000.06", "1000.07"):
        with pytest.raises(OrderRejected):
            engine(limit(EQUITY, Side.BUY, 1, price), EQUITY)
    with pytest.raises(OrderRejected):
        engine(limit(EQUITY, Side.BUY, 1, "5000"), EQUITY)
    counts = engine.rejections()
    assert counts["tick_size"] == 2
    assert counts["price_band"] == 1
    assert counts["max_order_value"] == 0
    usage = engine.usage()
    assert usage["max_open_orders"].limit == 3
    assert usage["max_open_orders"].used == 2
    assert usage["order_rate"].used == 1
    assert usage["max_order_value"].limit == Decimal(1_000_000)
    assert engine.accepted == 1


def test_engine_is_a_pre_trade_check_for_the_order_manager(world: World) -> None:
    from services.orders import PreTradeCheck

    check: PreTradeCheck = world.engine()
    check(OrderRequest(EQUITY.key, Side.BUY, 1, OrderType.MARKET, Product.CNC), EQUITY)
