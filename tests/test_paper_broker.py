"""The paper broker against handcrafted ticks: fills, partial fills, triggers, margin, races."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

import pytest

from services.broker import BrokerError, OrderChange, OrderNotFound, OrderRejected
from services.bus import CONNECTION, FILLS, FUNDS, ORDERS, POSITIONS, TICKS, EventBus
from services.clock import IST, ManualClock
from services.domain import (
    ConnectionStatus,
    Depth,
    DepthLevel,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
    Tick,
    Validity,
)
from services.instruments import InstrumentRegistry, bundled_universe
from services.paper import DEFAULT_MAX_QUOTE_AGE, PaperBroker

D = Decimal
SESSION = date(2026, 3, 10)
START = datetime(2026, 3, 10, 10, 0, tzinfo=IST)
REL = "NSE:RELIANCE"
FUT = "NFO:NIFTY26MARFUT"
CALL = "NFO:NIFTY26MAR26000CE"

Levels = Sequence[tuple[str, int]]


def registry() -> InstrumentRegistry:
    return InstrumentRegistry(bundled_universe(SESSION)[0])


def make_tick(
    key: str,
    ltp: str,
    ts: datetime,
    *,
    bids: Levels = (),
    asks: Levels = (),
    depth: bool = True,
) -> Tick:
    """A tick with exactly the depth given: nothing is inferred from the last price."""
    book = (
        Depth(
            bids=tuple(DepthLevel(D(p), q, 1) for p, q in bids),
            asks=tuple(DepthLevel(D(p), q, 1) for p, q in asks),
        )
        if depth
        else None
    )
    price = D(ltp)
    return Tick(key, ts, price, 1, 1000, price, price, price, price, book)


def req(
    key: str,
    side: Side,
    qty: int,
    order_type: OrderType = OrderType.MARKET,
    product: Product = Product.MIS,
    *,
    price: str | None = None,
    trigger: str | None = None,
    validity: Validity = Validity.DAY,
) -> OrderRequest:
    return OrderRequest(
        key=key,
        side=side,
        quantity=qty,
        order_type=order_type,
        product=product,
        validity=validity,
        price=D(price) if price is not None else None,
        trigger_price=D(trigger) if trigger is not None else None,
    )


class Env:
    def __init__(
        self, opening_balance: str = "1000000", max_quote_age: timedelta = DEFAULT_MAX_QUOTE_AGE
    ) -> None:
        self.bus = EventBus()
        self.clock = ManualClock(START)
        self.broker = PaperBroker(
            registry(),
            self.bus,
            self.clock,
            opening_balance=D(opening_balance),
            max_quote_age=max_quote_age,
        )
        self.orders_sub = self.bus.subscribe(ORDERS, "test")
        self.fills_sub = self.bus.subscribe(FILLS, "test")
        self.positions_sub = self.bus.subscribe(POSITIONS, "test")
        self.funds_sub = self.bus.subscribe(FUNDS, "test")

    def tick(
        self, key: str, ltp: str, *, bids: Levels = (), asks: Levels = (), depth: bool = True
    ) -> None:
        """Advance the clock half a second and feed a fresh tick to the broker."""
        self.clock.advance(0.5)
        tick = make_tick(key, ltp, self.clock.now(), bids=bids, asks=asks, depth=depth)
        self.broker.on_tick(tick)

    def prime(self, key: str = REL, ltp: str = "1500") -> None:
        """Give the broker a last price (no depth): MARKET orders are valued at it."""
        self.tick(key, ltp, depth=False)

    def place(self, request: OrderRequest) -> Order:
        return self.broker.place(request)

    def order(self, order_id: str) -> Order:
        return self.broker.order(order_id)

    def position(self, key: str = REL, product: Product = Product.MIS) -> Position:
        position = self.broker.position(key, product)
        assert position is not None
        return position

    def statuses(self, order_id: str) -> list[OrderStatus]:
        return [o.status for o in self.orders_sub.drain() if o.order_id == order_id]

    def fills(self) -> list[Fill]:
        return self.fills_sub.drain()


@pytest.fixture
def env() -> Env:
    return Env()


# -- every order type x product ------------------------------------------------------------

# (product, key, quantity, last price, trigger tick price, ask after the trigger)
VENUES = {
    Product.CNC: (REL, 10, "1500.00", "1501.00", "1501.05"),
    Product.MIS: (REL, 10, "1500.00", "1501.00", "1501.05"),
    Product.NRML: (FUT, 65, "26000.00", "26010.00", "26010.05"),
}
RATE = {Product.CNC: D(1), Product.MIS: D("0.20"), Product.NRML: D("0.15")}


@pytest.mark.parametrize("product", list(Product))
@pytest.mark.parametrize("order_type", list(OrderType))
def test_every_order_type_and_product_fills_against_depth(
    env: Env, order_type: OrderType, product: Product
) -> None:
    key, qty, ltp, trig_ltp, trig_ask = VENUES[product]
    near_ask = str(D(ltp) + D("0.05"))
    env.tick(key, ltp, bids=[(str(D(ltp) - D("0.05")), 500)], asks=[(near_ask, 500)])
    if order_type is OrderType.MARKET:
        request = req(key, Side.BUY, qty, order_type, product)
    elif order_type is OrderType.LIMIT:
        request = req(key, Side.BUY, qty, order_type, product, price=str(D(ltp) + D("1")))
    elif order_type is OrderType.SL:
        request = req(
            key, Side.BUY, qty, order_type, product, price=str(D(trig_ltp) + 1), trigger=trig_ltp
        )
    else:
        request = req(key, Side.BUY, qty, order_type, product, trigger=trig_ltp)

    order = env.place(request)
    assert order.order_id == "PA000001"
    expected_status = OrderStatus.TRIGGER_PENDING if order_type.needs_trigger else OrderStatus.OPEN
    assert order.status is expected_status
    assert env.fills() == []  # acknowledged, never filled inside place()

    if order_type.needs_trigger:
        env.tick(key, ltp, bids=[(ltp, 500)], asks=[(near_ask, 500)])  # below the trigger
        assert env.order(order.order_id).status is OrderStatus.TRIGGER_PENDING
        env.tick(key, trig_ltp, bids=[(trig_ltp, 500)], asks=[(trig_ask, 500)])
        fill_price = D(trig_ask)
        seen = [OrderStatus.TRIGGER_PENDING, OrderStatus.OPEN, OrderStatus.FILLED]
    else:
        env.tick(key, ltp, bids=[(ltp, 500)], asks=[(near_ask, 500)])
        fill_price = D(near_ask)
        seen = [OrderStatus.OPEN, OrderStatus.FILLED]

    done = env.order(order.order_id)
    assert done.status is OrderStatus.FILLED
    assert done.filled_quantity == qty and done.average_price == fill_price
    assert env.statuses(order.order_id) == seen
    fills = env.fills()
    assert [(f.fill_id, f.quantity, f.price, f.product) for f in fills] == [
        ("PT000001", qty, fill_price, product)
    ]
    position = env.broker.position(key, product)
    assert position is not None and position.quantity == qty
    assert position.average_price == fill_price
    funds = env.broker.current_funds()
    assert funds.margin_used == (fill_price * qty * RATE[product]).quantize(
        D("0.01"), ROUND_CEILING
    )
    assert funds.charges > 0  # every fill pays charges (tests/costs checks the figures)
    assert funds.available_cash == D("1000000") - funds.margin_used - funds.charges


# -- partial fills, IOC, limits ------------------------------------------------------------


def test_market_order_fills_visible_depth_and_keeps_working(env: Env) -> None:
    env.prime()
    order = env.place(req(REL, Side.BUY, 10))
    env.tick(REL, "1500", bids=[("1499.95", 100)], asks=[("1500.05", 3), ("1500.10", 4)])
    part = env.order(order.order_id)
    assert part.status is OrderStatus.PARTIALLY_FILLED
    assert part.filled_quantity == 7
    assert part.average_price == (D("1500.05") * 3 + D("1500.10") * 4) / 7
    env.tick(REL, "1500.10", asks=[("1500.15", 5)])
    done = env.order(order.order_id)
    assert done.status is OrderStatus.FILLED and done.filled_quantity == 10
    assert [(f.quantity, f.price) for f in env.fills()] == [
        (3, D("1500.05")),
        (4, D("1500.10")),
        (3, D("1500.15")),
    ]


def test_ioc_market_cancels_the_unfilled_rest_and_releases_its_margin(env: Env) -> None:
    env.prime()
    order = env.place(req(REL, Side.BUY, 10, validity=Validity.IOC))
    env.tick(REL, "1500", asks=[("1500.00", 3), ("1500.10", 4)])
    done = env.order(order.order_id)
    assert done.status is OrderStatus.CANCELLED
    assert done.filled_quantity == 7
    assert "7 of 10 filled" in done.status_message and "cancelled" in done.status_message
    assert env.statuses(order.order_id) == [
        OrderStatus.OPEN,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.CANCELLED,
    ]
    # Only the position's margin is left: 20% of (1500 x 3 + 1500.10 x 4) = 20% of 10500.40.
    assert env.broker.current_funds().margin_used == D("2100.08")


def test_ioc_limit_with_nothing_at_its_price_is_cancelled_unfilled(env: Env) -> None:
    order = env.place(req(REL, Side.BUY, 5, OrderType.LIMIT, price="1499", validity=Validity.IOC))
    env.tick(REL, "1500", asks=[("1500.00", 100)])
    done = env.order(order.order_id)
    assert done.status is OrderStatus.CANCELLED and done.filled_quantity == 0
    assert env.fills() == []
    assert env.broker.current_funds().margin_used == 0


def test_limit_buy_never_fills_above_its_price_and_rests_at_the_touch(env: Env) -> None:
    order = env.place(req(REL, Side.BUY, 10, OrderType.LIMIT, price="1500.10"))
    env.tick(REL, "1500", asks=[("1500.05", 3), ("1500.10", 2), ("1500.15", 100)])
    assert env.order(order.order_id).filled_quantity == 5
    assert env.order(order.order_id).status is OrderStatus.PARTIALLY_FILLED
    # Resting now: at most the touch per tick, and only while the touch crosses the limit.
    env.tick(REL, "1500", asks=[("1500.00", 2), ("1499.95", 10)])
    assert env.order(order.order_id).filled_quantity == 7
    env.tick(REL, "1500.20", asks=[("1500.15", 100)])
    assert env.order(order.order_id).filled_quantity == 7
    env.tick(REL, "1500", asks=[("1500.10", 100)])
    assert env.order(order.order_id).status is OrderStatus.FILLED
    prices = [f.price for f in env.fills()]
    assert prices == [D("1500.05"), D("1500.10"), D("1500.00"), D("1500.10")]
    assert max(prices) <= D("1500.10")


def test_limit_sell_never_fills_below_its_price(env: Env) -> None:
    order = env.place(req(REL, Side.SELL, 10, OrderType.LIMIT, price="1500"))
    env.tick(REL, "1500", bids=[("1500.10", 4), ("1500.00", 1), ("1499.95", 500)])
    assert env.order(order.order_id).filled_quantity == 5
    assert min(f.price for f in env.fills()) >= D("1500")
    env.tick(REL, "1499.90", bids=[("1499.95", 500)])
    assert env.order(order.order_id).filled_quantity == 5


def test_one_ticks_depth_is_shared_across_orders_in_time_priority(env: Env) -> None:
    env.prime()
    first = env.place(req(REL, Side.BUY, 5))
    second = env.place(req(REL, Side.BUY, 5))
    env.tick(REL, "1500", asks=[("1500.05", 6)])
    assert env.order(first.order_id).filled_quantity == 5
    assert env.order(second.order_id).filled_quantity == 1


def test_no_fill_without_depth_or_from_a_stale_tick(env: Env) -> None:
    env.prime()
    order = env.place(req(REL, Side.BUY, 5))
    env.tick(REL, "1500", depth=False)  # last price alone is never a fill price
    stale = make_tick(REL, "1500", env.clock.now() - timedelta(seconds=6), asks=[("1500", 100)])
    env.broker.on_tick(stale)
    assert env.order(order.order_id).status is OrderStatus.OPEN
    assert env.fills() == []
    env.tick(REL, "1500", asks=[("1500.05", 100)])
    assert env.order(order.order_id).status is OrderStatus.FILLED


def test_quote_age_limit_is_configurable() -> None:
    env = Env(max_quote_age=timedelta(seconds=60))
    env.prime()
    order = env.place(req(REL, Side.BUY, 5))
    env.broker.on_tick(
        make_tick(REL, "1500", env.clock.now() - timedelta(seconds=30), asks=[("1500", 100)])
    )
    assert env.order(order.order_id).status is OrderStatus.FILLED


# -- stop-loss -----------------------------------------------------------------------------


def test_sell_sl_m_triggers_when_price_falls_to_trigger(env: Env) -> None:
    env.prime()
    env.place(req(REL, Side.BUY, 10, product=Product.CNC))
    env.tick(REL, "1500", asks=[("1500", 10)])
    order = env.place(req(REL, Side.SELL, 10, OrderType.SL_M, Product.CNC, trigger="1490"))
    assert order.status is OrderStatus.TRIGGER_PENDING
    env.tick(REL, "1490.05", bids=[("1490.00", 100)])
    assert env.order(order.order_id).status is OrderStatus.TRIGGER_PENDING
    env.tick(REL, "1490", bids=[("1489.95", 4), ("1489.90", 100)])
    done = env.order(order.order_id)
    assert done.status is OrderStatus.FILLED
    assert done.average_price == (D("1489.95") * 4 + D("1489.90") * 6) / 10


def test_sell_sl_works_as_a_limit_after_trigger(env: Env) -> None:
    order = env.place(req(REL, Side.SELL, 10, OrderType.SL, price="1489", trigger="1490"))
    env.tick(REL, "1489.50", depth=False)  # triggers; no depth, so no fill yet
    assert env.order(order.order_id).status is OrderStatus.OPEN
    env.tick(REL, "1489.50", bids=[("1489.50", 5), ("1488.90", 100)])
    triggered = env.order(order.order_id)
    assert triggered.status is OrderStatus.PARTIALLY_FILLED and triggered.filled_quantity == 5
    assert all(f.price >= D("1489") for f in env.fills())


def test_buy_sl_does_not_trigger_below_its_trigger(env: Env) -> None:
    order = env.place(req(REL, Side.BUY, 1, OrderType.SL, price="1510", trigger="1505"))
    env.tick(REL, "1504.95", asks=[("1505", 100)])
    assert env.order(order.order_id).status is OrderStatus.TRIGGER_PENDING
    env.tick(REL, "1505.50", asks=[("1505.55", 100)])
    assert env.order(order.order_id).average_price == D("1505.55")


# -- margin and funds ----------------------------------------------------------------------


def test_margin_blocked_on_accept_and_released_on_cancel(env: Env) -> None:
    order = env.place(req(REL, Side.BUY, 10, OrderType.LIMIT, Product.CNC, price="1500"))
    funds = env.broker.current_funds()
    assert funds.margin_used == D("15000.00")
    assert funds.available_cash == D("985000.00")
    assert env.funds_sub.drain()[-1] == funds
    env.broker.cancel(order.order_id)
    funds = env.broker.current_funds()
    assert (funds.margin_used, funds.available_cash) == (0, D("1000000"))


@pytest.mark.parametrize(
    ("key", "side", "qty", "price", "blocked"),
    [
        (REL, Side.SELL, 10, "1500", "3000.00"),  # MIS short equity: 20%
        (FUT, Side.BUY, 65, "26000", "253500.00"),  # futures: 15% of notional
        (CALL, Side.BUY, 65, "120.50", "7832.50"),  # option buy: full premium
        (CALL, Side.SELL, 65, "120.50", "253500.00"),  # option writing: 15% of strike notional
    ],
)
def test_margin_blocked_per_model(
    env: Env, key: str, side: Side, qty: int, price: str, blocked: str
) -> None:
    product = Product.MIS if key == REL else Product.NRML
    env.place(req(key, side, qty, OrderType.LIMIT, product, price=price))
    assert env.broker.current_funds().margin_used == D(blocked)


def test_insufficient_funds_is_rejected_with_amounts() -> None:
    env = Env(opening_balance="10000")
    order = env.place(req(REL, Side.BUY, 10, OrderType.LIMIT, Product.CNC, price="1500"))
    assert order.status is OrderStatus.REJECTED
    assert order.status_message == "insufficient funds: required 15000.00, available 10000.00"
    assert env.statuses(order.order_id) == [OrderStatus.REJECTED]
    assert env.broker.current_funds().available_cash == D("10000")


def test_market_order_without_any_price_is_rejected(env: Env) -> None:
    order = env.place(req(REL, Side.BUY, 1))
    assert order.status is OrderStatus.REJECTED
    assert "no last price" in order.status_message


def test_wrong_product_for_instrument_is_rejected(env: Env) -> None:
    order = env.place(req(FUT, Side.BUY, 65, OrderType.LIMIT, Product.CNC, price="26000"))
    assert order.status is OrderStatus.REJECTED
    assert "CNC is for delivery equity" in order.status_message


def test_cnc_sell_needs_a_holding(env: Env) -> None:
    env.tick(REL, "1500", asks=[("1500", 100)], bids=[("1499.95", 100)])
    refused = env.place(req(REL, Side.SELL, 5, OrderType.LIMIT, Product.CNC, price="1500"))
    assert refused.status is OrderStatus.REJECTED
    assert refused.status_message == "CNC sell of 5 NSE:RELIANCE needs a CNC holding: you hold 0"
    env.place(req(REL, Side.BUY, 5, product=Product.CNC))
    env.tick(REL, "1500", asks=[("1500", 100)])
    first = env.place(req(REL, Side.SELL, 3, OrderType.LIMIT, Product.CNC, price="1510"))
    assert first.status is OrderStatus.OPEN
    second = env.place(req(REL, Side.SELL, 3, OrderType.LIMIT, Product.CNC, price="1510"))
    assert second.status is OrderStatus.REJECTED
    assert "you hold 5 (3 already in pending sell orders)" in second.status_message
    # A MIS short needs no holding.
    assert env.place(req(REL, Side.SELL, 3, product=Product.MIS)).status is OrderStatus.OPEN


def test_positions_and_pnl_are_exact(env: Env) -> None:
    env.prime()
    env.place(req(REL, Side.BUY, 10))
    env.tick(REL, "1500", asks=[("1500", 10)])
    env.place(req(REL, Side.BUY, 10))
    env.tick(REL, "1501", asks=[("1501", 10)])
    env.tick(REL, "1502", asks=[("1502.05", 10)], bids=[("1502", 10)])
    pos = env.position()
    assert (pos.quantity, pos.average_price, pos.last_price) == (20, D("1500.5"), D("1502"))
    assert pos.unrealised_pnl == D("30.0")
    assert env.positions_sub.drain()[-1] == pos  # marks are published

    env.place(req(REL, Side.SELL, 5))
    env.tick(REL, "1503", bids=[("1503", 10)])
    pos = env.position()
    assert (pos.quantity, pos.average_price, pos.realised_pnl) == (15, D("1500.5"), D("12.5"))
    funds = env.broker.current_funds()
    assert funds.realised_pnl == D("12.5")
    assert funds.unrealised_pnl == (D("1503") - D("1500.5")) * 15
    assert funds.margin_used == D("4501.50")  # 20% of 15 x 1500.5
    # Zerodha MIS charges on the three orders so far, worked line by line in
    # test_paper_round_trip_pays_zerodha_intraday_charges: 6.34 + 6.34 + 4.94.
    assert funds.charges == D("17.62")
    assert funds.available_cash == D("1000000") + D("12.5") - D("4501.50") - D("17.62")

    env.place(req(REL, Side.SELL, 15))
    env.tick(REL, "1499", bids=[("1499", 100)])
    pos = env.position()
    assert (pos.quantity, pos.realised_pnl) == (0, D("12.5") + (D("1499") - D("1500.5")) * 15)
    funds = env.broker.current_funds()
    assert funds.margin_used == 0
    assert funds.charges == pos.charges == D("32.42")  # + 14.80 for the 15-share sell
    assert pos.net_pnl == pos.realised_pnl - D("32.42") == D("-42.42")
    assert funds.available_cash == D("1000000") + pos.realised_pnl - D("32.42") == D("999957.58")


def test_short_position_books_profit_when_covered(env: Env) -> None:
    env.prime()
    env.place(req(REL, Side.SELL, 10))
    env.tick(REL, "1500", bids=[("1500", 10)])
    # Covering blocks no new margin: the buy closes the short.
    env.place(req(REL, Side.BUY, 10, OrderType.LIMIT, price="1495"))
    assert env.broker.current_funds().margin_used == D("3000.00")
    env.tick(REL, "1490", asks=[("1490", 10)])
    funds = env.broker.current_funds()
    # Charges: the MIS sell 9.89 (brokerage 4.50, STT 4, exchange 0.45, SEBI 0.02, IPFT
    # 0.02, GST 0.90); the buy 6.27 (4.47, stamp 0.45, 0.44, 0.01, 0.01, GST 0.89).
    assert (funds.realised_pnl, funds.margin_used, funds.charges, funds.available_cash) == (
        D("100"),
        0,
        D("16.16"),
        D("1000083.84"),
    )


# -- modify and cancel races ---------------------------------------------------------------


def test_cancel_after_fill_and_double_cancel_name_the_state(env: Env) -> None:
    env.prime()
    filled = env.place(req(REL, Side.BUY, 1))
    resting = env.place(req(REL, Side.BUY, 1, OrderType.LIMIT, price="1400"))
    env.tick(REL, "1500", asks=[("1500", 10)])
    with pytest.raises(BrokerError, match="is already FILLED"):
        env.broker.cancel(filled.order_id)
    with pytest.raises(BrokerError, match="is already FILLED"):
        env.broker.modify(filled.order_id, OrderChange(quantity=2))
    assert env.broker.cancel(resting.order_id).status is OrderStatus.CANCELLED
    with pytest.raises(BrokerError, match="is already CANCELLED"):
        env.broker.cancel(resting.order_id)


async def test_unknown_order_id_is_not_found(env: Env) -> None:
    with pytest.raises(OrderNotFound):
        await env.broker.cancel_order("PA999999")
    with pytest.raises(OrderNotFound):
        await env.broker.modify_order("PA999999", OrderChange(quantity=1))


def test_rejected_order_cannot_be_cancelled() -> None:
    env = Env(opening_balance="1")
    order = env.place(req(REL, Side.BUY, 10, OrderType.LIMIT, Product.CNC, price="1500"))
    with pytest.raises(BrokerError, match="REJECTED"):
        env.broker.cancel(order.order_id)


def test_modify_after_partial_fill(env: Env) -> None:
    order = env.place(req(REL, Side.BUY, 10, OrderType.LIMIT, price="1500"))
    env.tick(REL, "1500", asks=[("1500", 4)])
    with pytest.raises(OrderRejected, match="below the filled quantity 4"):
        env.broker.modify(order.order_id, OrderChange(quantity=3))
    with pytest.raises(OrderRejected) as off_grid:
        env.broker.modify(order.order_id, OrderChange(price=D("1500.03")))
    assert str(off_grid.value) == "price 1500.03 is not a multiple of tick size 0.05"
    modified = env.broker.modify(order.order_id, OrderChange(quantity=6))
    assert (modified.status, modified.quantity, modified.pending_quantity) == (
        OrderStatus.PARTIALLY_FILLED,
        6,
        2,
    )
    # Blocked margin follows the pending quantity: position 4 x 1500 + order 2 x 1500, at 20%.
    assert env.broker.current_funds().margin_used == D("1800.00")
    env.tick(REL, "1500", asks=[("1500", 100)])
    assert env.order(order.order_id).status is OrderStatus.FILLED
    assert env.order(order.order_id).filled_quantity == 6


def test_modify_making_a_resting_order_marketable_fills_on_next_tick(env: Env) -> None:
    order = env.place(req(REL, Side.BUY, 5, OrderType.LIMIT, price="1499"))
    env.tick(REL, "1500", asks=[("1500.05", 3), ("1500.10", 3)])
    assert env.order(order.order_id).status is OrderStatus.OPEN
    modified = env.broker.modify(order.order_id, OrderChange(price=D("1500.10")))
    assert modified.status is OrderStatus.OPEN and env.fills() == []
    env.tick(REL, "1500", asks=[("1500.05", 3), ("1500.10", 3)])
    assert env.order(order.order_id).status is OrderStatus.FILLED


def test_modify_stop_loss_to_limit_and_refuse_limit_to_stop_loss(env: Env) -> None:
    stop = env.place(req(REL, Side.BUY, 5, OrderType.SL, price="1510", trigger="1505"))
    as_limit = env.broker.modify(stop.order_id, OrderChange(order_type=OrderType.LIMIT))
    assert as_limit.status is OrderStatus.OPEN and as_limit.request.trigger_price is None
    limit = env.place(req(REL, Side.BUY, 5, OrderType.LIMIT, price="1400"))
    with pytest.raises(OrderRejected, match="cannot become a stop-loss"):
        env.broker.modify(
            limit.order_id, OrderChange(order_type=OrderType.SL_M, trigger_price=D("1505"))
        )


def test_modify_that_needs_more_margin_than_available_is_refused() -> None:
    env = Env(opening_balance="20000")
    order = env.place(req(REL, Side.BUY, 10, OrderType.LIMIT, Product.CNC, price="1500"))
    with pytest.raises(OrderRejected) as refused:
        env.broker.modify(order.order_id, OrderChange(quantity=20))
    # The order's own 15000 counts as available for its modification.
    assert str(refused.value) == "insufficient funds: required 30000.00, available 20000.00"
    assert env.order(order.order_id).quantity == 10


# -- feed loop -----------------------------------------------------------------------------


async def test_run_fills_from_the_tick_topic(env: Env) -> None:
    env.prime()
    task = asyncio.create_task(env.broker.run())
    await asyncio.sleep(0)
    order = await env.broker.place_order(req(REL, Side.BUY, 2))
    env.bus.publish(TICKS, make_tick(REL, "1500", env.clock.now(), asks=[("1500", 5)]))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert env.order(order.order_id).status is OrderStatus.FILLED
    assert env.bus.subscriber_count(TICKS) == 0


def test_modify_down_to_the_filled_quantity_completes_the_order(env: Env) -> None:
    order = env.place(req(REL, Side.BUY, 10, OrderType.LIMIT, price="1500"))
    env.tick(REL, "1500", asks=[("1500", 4)])
    done = env.broker.modify(order.order_id, OrderChange(quantity=4))
    assert (done.status, done.filled_quantity, done.pending_quantity) == (OrderStatus.FILLED, 4, 0)
    assert env.broker.current_funds().margin_used == D("1200.00")  # the position's 20% only


def test_modify_rechecks_a_resting_stop_against_the_last_price(env: Env) -> None:
    env.tick(REL, "1500", depth=False)
    stop = env.place(req(REL, Side.BUY, 5, OrderType.SL_M, trigger="1505"))
    with pytest.raises(OrderRejected) as refused:
        env.broker.modify(stop.order_id, OrderChange(trigger_price=D("1495")))
    assert "must be above the last price 1500" in str(refused.value)
    moved = env.broker.modify(stop.order_id, OrderChange(trigger_price=D("1510")))
    assert moved.status is OrderStatus.TRIGGER_PENDING
    assert env.broker.current_funds().margin_used == D("1510.00")  # 20% of 5 x 1510


async def test_run_announces_the_broker_connection_and_its_end() -> None:
    bus = EventBus()
    states = bus.subscribe(CONNECTION, "status-bar")
    broker = PaperBroker(registry(), bus, ManualClock(START))
    task = asyncio.create_task(broker.run())
    await asyncio.sleep(0)
    (up,) = states.drain()
    assert (up.component, up.status) == ("broker:paper", ConnectionStatus.CONNECTED)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    (down,) = states.drain()
    assert down.status is ConnectionStatus.DISCONNECTED


def test_a_resumed_session_charges_exactly_what_it_charged_before(env: Env) -> None:
    env.prime()
    env.place(req(REL, Side.BUY, 10))
    env.tick(REL, "1500", asks=[("1500", 4)])  # a partial fill: 4 of 10
    env.tick(REL, "1500.5", asks=[("1500.5", 10)])  # the rest
    env.place(req(REL, Side.SELL, 10))
    env.tick(REL, "1503", bids=[("1503", 100)])
    before = env.broker.current_funds()
    assert before.charges > 0
    orders = [env.order(o.order_id) for o in env.orders_sub.drain()]
    fills = env.fills()
    resumed = PaperBroker(registry(), EventBus(), ManualClock(env.clock.now()))
    resumed.restore(list({o.order_id: o for o in orders}.values()), fills)
    after = resumed.current_funds()
    assert (after.charges, after.available_cash) == (before.charges, before.available_cash)
    # The order that filled in two parts paid one capped brokerage line, not two.
    first = fills[0].order_id
    assert resumed.order_charges(first) == env.broker.order_charges(first)


def test_a_stop_touched_only_inside_a_batch_fills_and_the_batch_marks_once(env: Env) -> None:
    """A burst arrives as one batch: the stop is checked on every tick (the dip to the
    trigger is in the middle), while positions and funds are published once, at the last."""
    env.prime()
    env.place(req(REL, Side.BUY, 10, product=Product.CNC))
    env.tick(REL, "1500", asks=[("1500", 10)])
    stop = env.place(req(REL, Side.SELL, 10, OrderType.SL_M, Product.CNC, trigger="1490"))
    env.positions_sub.drain()
    funds_before = env.bus.published.get("funds", 0)
    now = env.clock.now() + timedelta(seconds=1)
    burst = [
        make_tick(REL, "1495", now, bids=[("1494.95", 100)]),
        make_tick(REL, "1490", now, bids=[("1489.95", 100)]),  # the only touch
        make_tick(REL, "1496", now, bids=[("1495.95", 100)]),
        make_tick(REL, "1497", now, bids=[("1496.95", 100)]),
    ]
    env.clock.advance(1)
    env.broker.on_ticks(burst)
    done = env.order(stop.order_id)
    assert done.status is OrderStatus.FILLED and done.average_price == D("1489.95")
    marks = env.positions_sub.drain()
    assert marks[-1].quantity == 0 and marks[-1].last_price == D("1497")
    assert env.bus.published["funds"] == funds_before + 1  # one figure for the whole batch
