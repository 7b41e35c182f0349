"""The paper account across the day and across days: MIS square-off, T+1, carry-over."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal as D

from services.bus import CONNECTION, FILLS, ORDERS, EventBus
from services.clock import IST, ManualClock
from services.domain import Fill, Order, OrderStatus, OrderType, Product, Side
from services.paper.broker import SQUARE_OFF_COMPONENT, PaperBroker
from tests.test_paper_broker import REL, make_tick, registry, req


class Day:
    """One paper session on ``start``'s day, recording what the broker published."""

    def __init__(self, start: datetime, earlier: list[Fill] = (), earlier_ids=()) -> None:
        self.bus = EventBus()
        self.clock = ManualClock(start)
        self.broker = PaperBroker(registry(), self.bus, self.clock)
        self.orders = self.bus.subscribe(ORDERS, "t")
        self.fills_sub = self.bus.subscribe(FILLS, "t")
        self.notices = self.bus.subscribe(CONNECTION, "t")
        self.fills: list[Fill] = []
        self.order_ids: set[str] = set()
        if earlier or earlier_ids:
            self.broker.carry_forward(list(earlier), start.date(), list(earlier_ids))

    def tick(self, ltp: str, seconds: float = 0.5, **book) -> None:
        self.clock.advance(seconds)
        self.broker.on_tick(make_tick(REL, ltp, self.clock.now(), **book))
        self.fills += self.fills_sub.drain()
        self.order_ids |= {o.order_id for o in self.orders.drain()}

    def trade(self, side: Side, qty: int, price: str, product: Product) -> Order:
        order = self.broker.place(req(REL, side, qty, product=product))
        book = {"asks": [(price, 1000)]} if side is Side.BUY else {"bids": [(price, 1000)]}
        self.tick(price, **book)
        return self.broker.order(order.order_id)


def at(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=IST)


def test_mis_positions_are_squared_off_at_the_cut_off_with_a_notice() -> None:
    day = Day(at(date(2026, 3, 10), 15, 19, 50))
    day.tick("1500", depth=False)
    day.trade(Side.BUY, 10, "1500", Product.MIS)
    day.trade(Side.BUY, 5, "1500", Product.CNC)
    resting = day.broker.place(req(REL, Side.BUY, 3, OrderType.LIMIT, price="1400"))
    day.notices.drain()
    day.tick("1501", seconds=1, depth=False)
    assert day.broker.position(REL, Product.MIS).quantity == 10  # 15:19:53: not yet
    day.tick("1502", seconds=7, bids=[("1502", 100)])  # 15:20:00: the cut-off
    day.tick("1502", bids=[("1502", 100)])  # the square-off order meets the book
    assert day.broker.position(REL, Product.MIS).quantity == 0
    assert day.broker.position(REL, Product.CNC).quantity == 5  # delivery is untouched
    assert day.broker.order(resting.order_id).status is OrderStatus.CANCELLED
    assert "15:20 MIS square-off" in day.broker.order(resting.order_id).status_message
    square = [f for f in day.fills if f.side is Side.SELL]
    assert [(f.quantity, f.price) for f in square] == [(10, D("1502"))]
    squared = day.broker.order(square[0].order_id)
    assert squared.request.source == "square-off" and squared.request.tag.startswith("SQ")
    (notice,) = [n for n in day.notices.drain() if n.component == SQUARE_OFF_COMPONENT]
    assert "1 position(s) closed" in notice.detail and "1 open MIS order(s)" in notice.detail
    # Once a day: a later tick places nothing more.
    day.tick("1490", seconds=60, bids=[("1490", 100)])
    assert [f for f in day.fills if f.side is Side.SELL] == square


def test_no_square_off_on_an_exchange_holiday() -> None:
    day = Day(at(date(2026, 3, 3), 15, 19, 59))  # Holi
    day.tick("1500", depth=False)
    day.trade(Side.BUY, 10, "1500", Product.MIS)
    day.tick("1500", seconds=30, bids=[("1500", 100)])
    assert day.broker.position(REL, Product.MIS).quantity == 10


def test_cnc_buys_become_holdings_on_the_next_trading_day_holidays_respected() -> None:
    thursday = Day(at(date(2026, 4, 2), 10, 0))
    thursday.tick("1500", depth=False)
    thursday.trade(Side.BUY, 10, "1500", Product.CNC)
    fills = thursday.fills

    good_friday = Day(at(date(2026, 4, 3), 10, 0), fills, thursday.order_ids)
    assert good_friday.broker.current_holdings() == []  # T+1 is Monday: Friday is a holiday
    assert good_friday.broker.position(REL, Product.CNC).quantity == 10

    monday = Day(at(date(2026, 4, 6), 10, 0), fills, thursday.order_ids)
    (holding,) = monday.broker.current_holdings()
    assert (holding.key, holding.quantity, holding.average_price) == (REL, 10, D("1500"))
    assert monday.broker.position(REL, Product.CNC) is None


def test_the_account_carries_cash_holdings_and_charges_into_the_next_day() -> None:
    one = Day(at(date(2026, 3, 10), 10, 0))
    one.tick("1500", depth=False)
    one.trade(Side.BUY, 10, "1500", Product.MIS)
    one.trade(Side.SELL, 10, "1510", Product.MIS)  # +100 realised
    one.trade(Side.BUY, 20, "1500", Product.CNC)
    one.trade(Side.BUY, 5, "1400", Product.MIS)  # left open: no cut-off was seen
    end_of_day = one.broker.current_funds()
    charges_one = end_of_day.charges
    assert charges_one > 0

    two = Day(at(date(2026, 3, 11), 10, 0), one.fills, one.order_ids)
    funds = two.broker.current_funds()
    # Realised 100, less day one's charges, less the 20 shares now paid for and held.
    assert funds.opening_balance == D("1000000") + D("100") - charges_one - D("30000")
    assert (funds.realised_pnl, funds.charges, funds.margin_used) == (0, 0, 0)
    assert funds.available_cash == funds.opening_balance
    assert two.broker.position(REL, Product.MIS) is None  # closed, at no invented price
    (holding,) = two.broker.current_holdings()
    assert (holding.quantity, holding.average_price) == (20, D("1500"))

    # Selling 15 of the held shares: no margin, the gain is realised, the cost comes back.
    two.tick("1520", depth=False)
    sold = two.trade(Side.SELL, 15, "1520", Product.CNC)
    assert sold.status is OrderStatus.FILLED
    position = two.broker.position(REL, Product.CNC)
    assert (position.quantity, position.realised_pnl) == (0, D("300"))
    (holding,) = two.broker.current_holdings()
    assert holding.quantity == 5
    after = two.broker.current_funds()
    assert after.available_cash == (
        funds.opening_balance + D("1500") * 15 + D("300") - after.charges
    )
    assert after.charges > D("15.34")  # STT on the sale and the DP charge at least
    # More than is held is refused with the count.
    refused = two.broker.place(req(REL, Side.SELL, 6, product=Product.CNC))
    assert refused.status is OrderStatus.REJECTED and "you hold 5" in refused.status_message
    # Ids do not repeat yesterday's: the journal keys orders and fills by them.
    assert not (two.order_ids & one.order_ids)
    assert not ({f.fill_id for f in two.fills} & {f.fill_id for f in one.fills})


def test_after_the_cut_off_mis_may_close_but_not_open() -> None:
    day = Day(at(date(2026, 3, 10), 15, 25))
    day.tick("1500", depth=False)
    refused = day.broker.place(req(REL, Side.BUY, 1))
    assert refused.status is OrderStatus.REJECTED
    assert "not accepted after the 15:20 square-off" in refused.status_message
    assert day.broker.place(req(REL, Side.BUY, 1, product=Product.CNC)).status is OrderStatus.OPEN


# -- after-market orders ------------------------------------------------------------------------


def amo(side: Side, qty: int, price: str, product: Product = Product.CNC):
    return replace(req(REL, side, qty, OrderType.LIMIT, product, price=price), amo=True)


def test_an_after_market_order_waits_for_the_next_session_and_then_fills() -> None:
    day = Day(at(date(2026, 4, 2), 20, 0))  # Thursday evening; Friday 3 April is Good Friday
    day.tick("1500", depth=False)
    placed = day.broker.place(amo(Side.BUY, 10, "1500"))
    assert placed.status is OrderStatus.OPEN and placed.request.amo
    assert "09:15 on Mon 06 Apr" in placed.status_message
    day.tick("1500", asks=[("1499", 1000)])  # an offer that would fill it now
    assert day.fills == [] and day.broker.order(placed.order_id).status is OrderStatus.OPEN

    day.clock.set(at(date(2026, 4, 6), 9, 14, 59))
    day.tick("1500", seconds=0, asks=[("1499", 1000)])
    assert day.fills == []  # one second before the open
    day.tick("1500", seconds=1, asks=[("1499", 1000)])
    assert [(f.quantity, f.price) for f in day.fills] == [(10, D("1499"))]
    assert day.broker.order(placed.order_id).status is OrderStatus.FILLED


def test_an_after_market_order_placed_in_the_session_is_for_tomorrow_and_survives_the_cut_off(
) -> None:
    day = Day(at(date(2026, 3, 10), 15, 19, 50))
    day.tick("1500", depth=False)
    placed = day.broker.place(amo(Side.BUY, 5, "1500", Product.MIS))
    assert "09:15 on Wed 11 Mar" in placed.status_message
    day.tick("1500", seconds=15, asks=[("1500", 100)])  # past the 15:20 MIS square-off
    assert day.broker.order(placed.order_id).status is OrderStatus.OPEN
    assert day.fills == []


def test_a_restart_puts_yesterdays_waiting_after_market_order_back_on_the_book() -> None:
    evening = Day(at(date(2026, 3, 10), 19, 0))
    evening.tick("1500", depth=False)
    waiting = evening.broker.place(amo(Side.BUY, 4, "1500"))
    cancelled = evening.broker.cancel(evening.broker.place(amo(Side.BUY, 1, "1500")).order_id)
    plain = evening.broker.place(req(REL, Side.BUY, 2, OrderType.LIMIT, Product.CNC, price="1400"))
    earlier = [evening.broker.order(o) for o in (waiting.order_id, cancelled.order_id,
                                                 plain.order_id)]

    morning = Day(at(date(2026, 3, 11), 9, 0), [], [o.order_id for o in earlier])
    kept = morning.broker.waiting_amos(earlier, date(2026, 3, 11))
    assert [o.order_id for o in kept] == [waiting.order_id]  # not the cancelled, not the DAY
    morning.broker.restore(kept, [])
    morning.clock.set(at(date(2026, 3, 11), 9, 15))
    morning.tick("1500", asks=[("1500", 100)])
    assert [(f.order_id, f.quantity) for f in morning.fills] == [(waiting.order_id, 4)]
    fresh = morning.broker.place(req(REL, Side.BUY, 1, product=Product.CNC))
    assert fresh.order_id not in {o.order_id for o in earlier}  # ids carry on, never reused


def test_next_open_skips_weekends_and_holidays() -> None:
    from services.calendar import default_calendar

    cal = default_calendar()
    assert cal.next_open(at(date(2026, 3, 10), 8, 0)) == at(date(2026, 3, 10), 9, 15)
    assert cal.next_open(at(date(2026, 3, 10), 9, 15)) == at(date(2026, 3, 11), 9, 15)
    assert cal.next_open(at(date(2026, 4, 2), 16, 0)) == at(date(2026, 4, 6), 9, 15)
