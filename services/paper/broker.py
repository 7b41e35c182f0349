"""The paper broker: the embedded default broker, filling orders against the visible book.

Fill timing: an order is never filled inside ``place_order`` or ``modify_order``. It is
acknowledged (OPEN, TRIGGER_PENDING or REJECTED) and fills on the next usable tick for its
instrument, as an order on a real exchange reaches the book a moment after it is sent. That
tick's depth is fresh by construction and is shared fairly by all orders resting on it.

A tick is *usable* when it is not older than ``max_quote_age`` on the broker's clock (a stale
quote must not fill anything) and, for fills, carries a depth snapshot. On a usable tick:

1. stop-loss orders whose trigger the last price touched move to OPEN (SL then works as a
   LIMIT at its price, SL-M as a MARKET order);
2. working orders are matched in time priority against the tick's depth, each visible lot
   taken at most once. A MARKET order, and a LIMIT order on its first tick after being placed,
   modified or triggered, walks the opposite side up to its quantity (a limit never past its
   price); a resting LIMIT order afterwards takes at most the touch when the touch crosses
   its price; an IOC order cancels whatever that first tick did not fill.

An after-market order (``amo``) is accepted at once but rests untouched by ticks until the
next session opens (``ExchangeCalendar.next_open``), as a broker holds an AMO for the exchange;
a restart puts one that is still waiting back on the book (``waiting_amos``).

Funds follow ``services.paper.margin``: margin is blocked on acceptance, moves from order to
position as fills arrive, and is released on cancel, IOC remainder and when a position shrinks.

Every fill pays the charges a real account would (``services.costs``, at the configured
broker's tariff and the statutory rates of the fill's IST day): they are booked on the
position and come out of available cash, so paper P&L is net, like a contract note.

Across days the account behaves like a broker's (``carry_forward``): MIS positions are
squared off at the cut-off (15:20 IST by default) with MARKET orders the book shows, CNC
buys become holdings on the next trading day (T+1, exchange holidays respected), NRML
positions carry until their contract expires, and cash carries realised P&L and charges.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from services.broker import BrokerError, OrderChange, OrderNotFound, OrderRejected
from services.brokers.ports import BrokerLimits
from services.bus import (
    CONNECTION,
    FILLS,
    FUNDS,
    ORDERS,
    POSITIONS,
    TICKS,
    EventBus,
    SubscriberLagged,
)
from services.calendar import ExchangeCalendar, default_calendar
from services.clock import Clock, to_ist
from services.costs import ChargeBreakdown, ChargesUnavailable, OrderCharges
from services.domain import (
    PAISA,
    ZERO,
    ConnectionState,
    ConnectionStatus,
    Fill,
    Funds,
    Holding,
    Instrument,
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
from services.instruments import InstrumentRegistry
from services.orders import apply_change
from services.paper.margin import margin_for, position_margin, product_error
from services.paper.matching import TickBook, trigger_touched
from services.validation import OrderValidationError, validate_order

log = logging.getLogger(__name__)

BROKER_COMPONENT = "broker:paper"

DEFAULT_MAX_QUOTE_AGE = timedelta(seconds=5)
# Brokers square MIS positions off ten minutes before the close (Zerodha: 15:20 for equity).
DEFAULT_SQUARE_OFF = time(15, 20)
SQUARE_OFF_COMPONENT = "broker:paper:square-off"


@dataclass(slots=True)
class _Working:
    """Book-keeping for a working order that the immutable ``Order`` does not carry."""

    instrument: Instrument
    margin_price: Decimal  # the price the order's margin is valued at
    opening_quantity: int  # how much of the pending quantity opens or adds to a position
    cost: Decimal = ZERO  # sum of fill price x quantity, for the average price
    triggered: bool = False
    sweep: bool = True  # the next usable tick may walk the book (arrival, modify, trigger)
    # An after-market order rests, untouched by ticks, until the session that opens here.
    opens_at: datetime | None = None


def _amo_note(opens_at: datetime) -> str:
    return f"after-market order: goes to the exchange at {to_ist(opens_at):%H:%M on %a %d %b}"


def _fmt_money(value: Decimal) -> str:
    return f"{value.quantize(PAISA):f}"


# The paper venue has no broker limits of its own: orders are throttled by the risk engine.
PAPER_LIMITS = BrokerLimits(tag_max_length=64, order_windows=(), tag_alphanumeric=False)


class PaperBroker:
    name = "paper"
    limits: BrokerLimits = PAPER_LIMITS

    def __init__(
        self,
        instruments: InstrumentRegistry,
        bus: EventBus,
        clock: Clock,
        *,
        opening_balance: Decimal = Decimal("1000000"),
        max_quote_age: timedelta = DEFAULT_MAX_QUOTE_AGE,
        tariff: str = "zerodha",
        square_off_at: time | None = DEFAULT_SQUARE_OFF,
        calendar: ExchangeCalendar | None = None,
    ) -> None:
        self._instruments = instruments
        self._charges = OrderCharges(tariff)
        self._charges_total = ZERO
        self._charges_warned = False
        self.square_off_at = square_off_at
        self._calendar = calendar or default_calendar()
        self._squared_off: set[date] = set()
        self._holdings: dict[str, Holding] = {}
        # Cash carried from earlier days, and the cost of holdings sold today (it returns to
        # cash; the gain over cost is in the position's realised P&L).
        self._carried_cash = ZERO
        self._released = ZERO
        self._first_order_no = self._first_fill_no = 1
        self._bus = bus
        self._clock = clock
        self._opening_balance = opening_balance
        self.max_quote_age = max_quote_age
        self._orders: dict[str, Order] = {}
        self._working: dict[str, _Working] = {}
        self._working_by_key: dict[str, list[str]] = {}
        self._fills: list[Fill] = []
        self._positions: dict[tuple[str, Product], Position] = {}
        self._last_ticks: dict[str, Tick] = {}
        self._order_seq = itertools.count(1)
        self._fill_seq = itertools.count(1)

    # -- ExecutionClient ---------------------------------------------------------------------
    async def place_order(self, request: OrderRequest) -> Order:
        return self.place(request)

    async def modify_order(self, order_id: str, change: OrderChange) -> Order:
        return self.modify(order_id, change)

    async def cancel_order(self, order_id: str) -> Order:
        return self.cancel(order_id)

    async def order_status(self, order_id: str) -> Order:
        return self.order(order_id)

    async def order_by_tag(self, tag: str) -> Order | None:
        return next((o for o in self._orders.values() if o.request.tag == tag), None)

    async def orders(self) -> list[Order]:
        return list(self._orders.values())

    async def fills(self) -> list[Fill]:
        return list(self._fills)

    async def positions(self) -> list[Position]:
        return list(self._positions.values())

    async def holdings(self) -> list[Holding]:
        """CNC shares bought on earlier trading days (T+1); today's buys are positions."""
        return self.current_holdings()

    def current_holdings(self) -> list[Holding]:
        marks = self._last_ticks
        return [
            replace(h, last_price=marks[h.key].last_price) if h.key in marks else h
            for h in self._holdings.values()
            if h.quantity
        ]

    async def funds(self) -> Funds:
        return self.current_funds()

    # -- synchronous views (the paper book lives in memory) --------------------------------
    def order(self, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} not found")
        return order

    def position(self, key: str, product: Product) -> Position | None:
        return self._positions.get((key, product))

    # -- feed ------------------------------------------------------------------------------
    async def run(self) -> None:
        sub = self._bus.subscribe(TICKS, "paper-broker", lossless=True)
        self._bus.publish(
            CONNECTION,
            ConnectionState(
                BROKER_COMPONENT, ConnectionStatus.CONNECTED, "paper", self._clock.now()
            ),
        )
        try:
            while True:
                try:
                    batch = await sub.next_batch()
                except SubscriberLagged:
                    log.warning("paper broker fell behind the feed; some ticks were skipped")
                    continue
                self.on_ticks(batch)
        finally:
            sub.close()
            self._bus.publish(
                CONNECTION,
                ConnectionState(
                    BROKER_COMPONENT, ConnectionStatus.DISCONNECTED, "stopped", self._clock.now()
                ),
            )

    def on_tick(self, tick: Tick) -> None:
        self.on_ticks((tick,))

    def on_ticks(self, ticks: Iterable[Tick]) -> None:
        """Fold in a batch from the feed.

        Every tick is matched against the orders resting on its instrument, in order, so a
        stop-loss trigger is never skipped. Positions are marked and funds published once per
        batch, at each instrument's last price: the intermediate marks of a burst were
        superseded within the same loop iteration (and the topics coalesce them anyway).
        """
        self._maybe_square_off()
        last = self._last_ticks
        working = self._working_by_key
        changed = False
        for tick in ticks:
            last[tick.key] = tick
            ids = working.get(tick.key)
            if ids and self._is_fresh(tick):
                changed |= self._trigger(tick, ids)
                if tick.depth is not None:
                    book = TickBook(tick.depth)
                    for order_id in list(ids):
                        changed |= self._match(order_id, book, tick)
        marked = self._mark_all() if self._positions else []
        for position in marked:
            self._bus.publish(POSITIONS, position)
        if marked or changed:
            self._bus.publish(FUNDS, self.current_funds())

    def _mark_all(self) -> list[Position]:
        """Mark every position whose instrument's last price moved; return those marked."""
        last = self._last_ticks
        marked: list[Position] = []
        for slot, position in self._positions.items():
            tick = last.get(slot[0])
            if tick is not None and position.last_price != tick.last_price:
                marked.append(replace(position, last_price=tick.last_price))
        for position in marked:
            self._positions[(position.key, position.product)] = position
        return marked

    def _is_fresh(self, tick: Tick) -> bool:
        return self._clock.now() - tick.ts <= self.max_quote_age

    def _trigger(self, tick: Tick, ids: list[str]) -> bool:
        changed = False
        for order_id in list(ids):
            order = self._orders[order_id]
            trigger = order.request.trigger_price
            if order.status is not OrderStatus.TRIGGER_PENDING or trigger is None:
                continue
            work = self._working[order_id]
            if work.opens_at is not None and self._clock.now() < work.opens_at:
                continue  # an after-market order: not at the exchange yet
            if trigger_touched(order.side, tick.last_price, trigger):
                work.triggered = True
                work.sweep = True
                self._update(
                    order.evolve(
                        OrderStatus.OPEN,
                        self._clock.now(),
                        status_message=f"triggered at {tick.last_price}",
                    )
                )
                changed = True
        return changed

    def _match(self, order_id: str, book: TickBook, tick: Tick) -> bool:
        order = self._orders[order_id]
        if order.status is OrderStatus.TRIGGER_PENDING:
            return False
        work = self._working[order_id]
        if work.opens_at is not None and self._clock.now() < work.opens_at:
            return False  # an after-market order: not at the exchange yet
        is_market = order.request.order_type in (OrderType.MARKET, OrderType.SL_M)
        limit = None if is_market else order.request.price
        takes = book.take(
            order.side, order.pending_quantity, limit, touch_only=not (is_market or work.sweep)
        )
        work.sweep = False
        for take in takes:
            order = self._fill(order, work, take.price, take.quantity, tick)
        if order.request.validity is Validity.IOC and order.status.is_working:
            filled = order.filled_quantity
            message = (
                f"IOC: {filled} of {order.quantity} filled, unfilled {order.pending_quantity} "
                "cancelled"
                if filled
                else "IOC: nothing available at an acceptable price; cancelled"
            )
            self._update(
                order.evolve(OrderStatus.CANCELLED, self._clock.now(), status_message=message)
            )
            return True
        return bool(takes)

    def _fill(
        self, order: Order, work: _Working, price: Decimal, quantity: int, tick: Tick
    ) -> Order:
        now = self._clock.now()
        fill = Fill(
            fill_id=f"PT{next(self._fill_seq):06d}",
            order_id=order.order_id,
            key=order.key,
            side=order.side,
            product=order.request.product,
            quantity=quantity,
            price=price,
            ts=now,
        )
        self._fills.append(fill)
        filled = order.filled_quantity + quantity
        work.cost += price * quantity
        status = OrderStatus.FILLED if filled == order.quantity else OrderStatus.PARTIALLY_FILLED
        updated = order.evolve(
            status, now, filled_quantity=filled, average_price=work.cost / filled
        )
        pkey = (order.key, order.request.product)
        position = self._positions.get(pkey) or Position(
            order.key, order.request.product, last_price=tick.last_price
        )
        position = self._book_fill(position, fill)
        self._positions[pkey] = position
        self._bus.publish(FILLS, fill)
        self._update(updated)
        self._bus.publish(POSITIONS, position)
        return updated

    # -- restart -----------------------------------------------------------------------------
    def restore(self, orders: list[Order], fills: list[Fill]) -> None:
        """Resume a session from the journal after a restart (before any tick or order).

        Positions are rebuilt by replaying the fills, so average prices and realised P&L come
        out exactly as they were; working orders go back on the book with their margin, and
        the id counters continue after the highest id seen, so no id is reused.
        """
        if self._orders or self._fills:
            raise BrokerError("restore() must run before the session starts trading")
        for fill in sorted(fills, key=lambda f: (f.ts, f.fill_id)):
            pkey = (fill.key, fill.product)
            position = self._positions.get(pkey) or Position(fill.key, fill.product)
            self._positions[pkey] = self._book_fill(position, fill)
            self._fills.append(fill)
        for order in sorted(orders, key=lambda o: (o.placed_at, o.order_id)):
            self._orders[order.order_id] = order
            instrument = self._instruments.get(order.key)
            if not order.status.is_working or instrument is None:
                continue
            margin_price = (
                self._margin_price(order.request) or order.average_price or order.request.price
            )
            if margin_price is None:
                continue  # a MARKET order with no price to value it: it waits for a tick
            self._working[order.order_id] = _Working(
                instrument=instrument,
                margin_price=margin_price,
                opening_quantity=self._opening_quantity(
                    order.request, order.pending_quantity, exclude=order.order_id
                ),
                cost=order.average_price * order.filled_quantity,
                triggered=order.status is not OrderStatus.TRIGGER_PENDING,
                opens_at=self._calendar.next_open(order.placed_at) if order.request.amo else None,
            )
            self._working_by_key.setdefault(order.key, []).append(order.order_id)
        self._order_seq = itertools.count(
            max(_next_number(self._orders, "PA"), self._first_order_no)
        )
        self._fill_seq = itertools.count(
            max(_next_number({f.fill_id: f for f in fills}, "PT"), self._first_fill_no)
        )
        for position in self._positions.values():
            self._bus.publish(POSITIONS, position)
        self._bus.publish(FUNDS, self.current_funds())

    def _book_fill(self, position: Position, fill: Fill) -> Position:
        """Apply ``fill`` to ``position`` and book its charges (replayed alike on restore)."""
        charges = self._fill_charges(fill)
        self._charges_total += charges.total
        quantity = fill.quantity
        from_holding = self._from_holding(position, fill)
        if from_holding:
            # Shares sold out of the demat account: the gain over their cost is realised on
            # today's CNC position, and their cost comes back to cash.
            holding = self._holdings[fill.key]
            self._holdings[fill.key] = replace(holding, quantity=holding.quantity - from_holding)
            self._released += holding.average_price * from_holding
            position = replace(
                position,
                realised_pnl=position.realised_pnl
                + (fill.price - holding.average_price) * from_holding,
                sell_quantity=position.sell_quantity + from_holding,
            )
            quantity -= from_holding
        moved = position.apply_fill(fill.side, quantity, fill.price) if quantity else position
        return replace(moved, charges=position.charges + charges.total)

    def _from_holding(self, position: Position, fill: Fill) -> int:
        """How much of a CNC sell comes out of holdings (what today's long cannot cover)."""
        if fill.product is not Product.CNC or fill.side is not Side.SELL:
            return 0
        holding = self._holdings.get(fill.key)
        if holding is None or holding.quantity <= 0:
            return 0
        return min(holding.quantity, max(fill.quantity - max(position.quantity, 0), 0))

    def _fill_charges(self, fill: Fill) -> ChargeBreakdown:
        instrument = self._instruments.get(fill.key)
        if instrument is None:
            return ChargeBreakdown()
        try:
            return self._charges.on_fill(
                order_id=fill.order_id,
                instrument=instrument,
                product=fill.product,
                side=fill.side,
                quantity=fill.quantity,
                price=fill.price,
                day=to_ist(fill.ts).date(),
            )
        except ChargesUnavailable as exc:
            if not self._charges_warned:
                self._charges_warned = True
                log.warning("paper fills are not charged: %s", exc)
            return ChargeBreakdown()

    # -- across days ---------------------------------------------------------------------------
    def carry_forward(
        self, earlier_fills: Sequence[Fill], today: date, earlier_order_ids: Sequence[str] = ()
    ) -> None:
        """Open today's account from every fill of earlier days (before ``restore``).

        Earlier days are replayed as a broker settles them: charges at each day's rates, MIS
        left open at a day's end closed at its average price (the terminal was not running
        at the cut-off, so no price was seen: no P&L is invented), CNC longs moved to
        holdings once their next trading day has come (T+1), NRML positions carried while
        their contract lives. Cash carries realised P&L less charges less holdings' cost.
        """
        if self._orders or self._fills:
            raise BrokerError("carry_forward() must run before the session starts trading")
        positions: dict[tuple[str, Product], Position] = {}
        bought_on: dict[str, date] = {}
        fills = sorted((f for f in earlier_fills if _ist_day(f) < today), key=_fill_order)
        realised = charges = ZERO
        day: date | None = None
        for fill in fills:
            if _ist_day(fill) != day:
                day = _ist_day(fill)
                for pkey, held in positions.items():  # MIS never lives past its day
                    if pkey[1] is Product.MIS and held.quantity:
                        positions[pkey] = replace(held, quantity=0, average_price=ZERO)
            pkey = (fill.key, fill.product)
            before = positions.get(pkey) or Position(fill.key, fill.product)
            after = self._book_fill(before, fill)
            realised += after.realised_pnl - before.realised_pnl
            charges += after.charges - before.charges
            positions[pkey] = after
            if fill.product is Product.CNC and fill.side is Side.BUY:
                bought_on[fill.key] = _ist_day(fill)
        self._charges_total = ZERO  # today's funds show today's charges
        self._released = ZERO
        holdings_cost = sum((h.average_price * h.quantity for h in self._holdings.values()), ZERO)
        for (key, product), position in positions.items():
            if position.quantity == 0:
                continue
            instrument = self._instruments.get(key)
            if product is Product.CNC and position.quantity > 0:
                settles = self._calendar.next_trading_day(bought_on.get(key, today))
                if settles <= today:
                    self._add_holding(key, position.quantity, position.average_price)
                    holdings_cost += position.average_price * position.quantity
                    continue
            if product is Product.MIS:
                continue  # closed at its average: no price was seen at the cut-off
            expiry = instrument.expiry if instrument is not None else None
            if expiry is not None and expiry < today:
                continue  # expired: settled by the exchange, outside the paper account
            self._positions[(key, product)] = Position(
                key,
                product,
                quantity=position.quantity,
                average_price=position.average_price,
                last_price=position.last_price,
                multiplier=position.multiplier,
            )
        self._carried_cash = realised - charges - holdings_cost
        # Ids stay unique across days: the journal keys orders and fills by them.
        self._first_order_no = _next_number(dict.fromkeys(earlier_order_ids), "PA")
        self._first_fill_no = _next_number({f.fill_id: f for f in earlier_fills}, "PT")
        self._order_seq = itertools.count(self._first_order_no)
        self._fill_seq = itertools.count(self._first_fill_no)

    def waiting_amos(self, earlier_orders: Sequence[Order], today: date) -> list[Order]:
        """The after-market orders of earlier days still waiting for a session that opens
        today or later: a restart puts them back on the book (``restore``) with today's."""
        return [
            o for o in earlier_orders
            if o.request.amo and o.status.is_working
            and to_ist(self._calendar.next_open(o.placed_at)).date() >= today
        ]

    def _add_holding(self, key: str, quantity: int, price: Decimal) -> None:
        held = self._holdings.get(key)
        if held is None or held.quantity == 0:
            self._holdings[key] = Holding(key, quantity, price)
            return
        total = held.quantity + quantity
        cost = held.average_price * held.quantity + price * quantity
        self._holdings[key] = Holding(key, total, cost / total)

    def _maybe_square_off(self) -> None:
        """At the cut-off on a trading day, close every MIS position as a broker's RMS does."""
        if self.square_off_at is None:
            return
        now = to_ist(self._clock.now())
        day = now.date()
        if day in self._squared_off or now.time() < self.square_off_at:
            return
        self._squared_off.add(day)
        if not self._calendar.is_trading_day(day):
            return
        cancelled = placed = 0
        for order_id in list(self._working):
            order = self._orders[order_id]
            opens_at = self._working[order_id].opens_at
            if opens_at is not None and opens_at > self._clock.now():
                continue  # an after-market order for a later session
            if order.request.product is Product.MIS:
                self._update(
                    order.evolve(
                        OrderStatus.CANCELLED,
                        self._clock.now(),
                        status_message=f"cancelled by the {self.square_off_at:%H:%M} MIS "
                        "square-off",
                    )
                )
                cancelled += 1
        refused: list[str] = []
        for (key, product), position in list(self._positions.items()):
            if product is not Product.MIS or position.quantity == 0:
                continue
            side = Side.SELL if position.quantity > 0 else Side.BUY
            order = self.place(
                OrderRequest(
                    key,
                    side,
                    abs(position.quantity),
                    OrderType.MARKET,
                    Product.MIS,
                    tag=f"SQ{day:%y%m%d}{placed:04d}",
                    source="square-off",
                )
            )
            if order.status is OrderStatus.REJECTED:
                refused.append(f"{key}: {order.status_message}")
            else:
                placed += 1
        if not (cancelled or placed or refused):
            return
        detail = (
            f"MIS square-off at {self.square_off_at:%H:%M}: {placed} position(s) closed at "
            f"market, {cancelled} open MIS order(s) cancelled"
        )
        if refused:
            detail += "; not closed: " + "; ".join(refused)
        log.info("%s", detail)
        self._bus.publish(
            CONNECTION,
            ConnectionState(SQUARE_OFF_COMPONENT, ConnectionStatus.CONNECTED, detail, now),
        )
        self._bus.publish(FUNDS, self.current_funds())

    def order_charges(self, order_id: str) -> ChargeBreakdown:
        """What ``order_id`` has paid so far, line by line (the day summary's contract note)."""
        return self._charges.order_total(order_id)

    # -- order entry -----------------------------------------------------------------------
    def place(self, request: OrderRequest) -> Order:
        """Accept or reject ``request`` synchronously; see the module docstring for fills."""
        now = self._clock.now()
        order_id = f"PA{next(self._order_seq):06d}"
        order = Order(order_id, request, OrderStatus.PENDING, placed_at=now, updated_at=now)
        instrument = self._instruments.get(request.key)
        problem = self._entry_problem(request, instrument)
        if problem is not None or instrument is None:
            return self._reject(order, problem or f"unknown symbol {request.key}")
        margin_price = self._margin_price(request)
        if margin_price is None:
            return self._reject(
                order, f"no last price for {request.key} yet: cannot value a MARKET order"
            )
        opening = self._opening_quantity(request, request.quantity, exclude=None)
        required = margin_for(instrument, request.product, request.side, opening, margin_price)
        available = self.current_funds().available_cash
        if required > available:
            return self._reject(
                order,
                f"insufficient funds: required {_fmt_money(required)}, "
                f"available {_fmt_money(available)}",
            )
        status = (
            OrderStatus.TRIGGER_PENDING if request.order_type.needs_trigger else OrderStatus.OPEN
        )
        opens_at = self._calendar.next_open(now) if request.amo else None
        self._working[order_id] = _Working(
            instrument=instrument,
            margin_price=margin_price,
            opening_quantity=opening,
            opens_at=opens_at,
        )
        self._working_by_key.setdefault(request.key, []).append(order_id)
        accepted = order.evolve(
            status, now, status_message="" if opens_at is None else _amo_note(opens_at)
        )
        self._update(accepted)
        self._bus.publish(FUNDS, self.current_funds())
        return accepted

    def modify(self, order_id: str, change: OrderChange) -> Order:
        order = self._require_working(order_id, "modified")
        work = self._working[order_id]
        request = apply_change(order.request, change)
        if request.quantity < order.filled_quantity:
            raise OrderRejected(
                f"quantity {request.quantity} is below the filled quantity "
                f"{order.filled_quantity} of order {order_id}",
                rule="modify",
            )
        new_type = request.order_type
        if order.status is OrderStatus.TRIGGER_PENDING and new_type.needs_trigger:
            status = OrderStatus.TRIGGER_PENDING
        elif order.status is OrderStatus.TRIGGER_PENDING:
            status = OrderStatus.OPEN
        elif new_type.needs_trigger and not work.triggered:
            raise OrderRejected(
                f"order {order_id} is {order.status}: it cannot become a stop-loss order",
                rule="modify",
            )
        else:
            status = order.status
        if request.quantity == order.filled_quantity:
            status = OrderStatus.FILLED
        last = self._last_ticks.get(order.key)
        try:
            validate_order(
                request,
                work.instrument,
                last.last_price if last and status is OrderStatus.TRIGGER_PENDING else None,
            )
        except OrderValidationError as exc:
            raise OrderRejected(exc.message, rule="validation") from exc
        pending = request.quantity - order.filled_quantity
        problem = self._cnc_sell_problem(request, pending, order_id)
        if problem:
            raise OrderRejected(problem, rule="holding")
        margin_price = self._margin_price(request) or work.margin_price
        opening = self._opening_quantity(request, pending, exclude=order_id)
        required = margin_for(work.instrument, request.product, request.side, opening, margin_price)
        available = self.current_funds().available_cash + self._order_margin(order, work)
        if required > available:
            raise OrderRejected(
                f"insufficient funds: required {_fmt_money(required)}, "
                f"available {_fmt_money(available)}",
                rule="margin",
            )
        work.margin_price = margin_price
        work.opening_quantity = opening
        work.sweep = True
        updated = order.evolve(
            status, self._clock.now(), request=request, status_message="modified"
        )
        self._update(updated)
        self._bus.publish(FUNDS, self.current_funds())
        return updated

    def cancel(self, order_id: str) -> Order:
        order = self._require_working(order_id, "cancelled")
        updated = order.evolve(
            OrderStatus.CANCELLED, self._clock.now(), status_message="cancelled by user"
        )
        self._update(updated)
        self._bus.publish(FUNDS, self.current_funds())
        return updated

    def _require_working(self, order_id: str, verb: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} not found")
        if order.status.is_terminal:
            raise OrderRejected(
                f"order {order_id} is already {order.status}: it cannot be {verb}", rule="state"
            )
        return order

    def _reject(self, order: Order, message: str) -> Order:
        rejected = order.evolve(OrderStatus.REJECTED, order.placed_at, status_message=message)
        self._update(rejected)
        return rejected

    def _update(self, order: Order) -> None:
        """Store and publish ``order``; forget its book-keeping once it is terminal."""
        self._orders[order.order_id] = order
        if order.status.is_terminal and self._working.pop(order.order_id, None) is not None:
            ids = self._working_by_key.get(order.key, [])
            if order.order_id in ids:
                ids.remove(order.order_id)
            if not ids:
                self._working_by_key.pop(order.key, None)
        self._bus.publish(ORDERS, order)

    def _entry_problem(self, request: OrderRequest, instrument: Instrument | None) -> str | None:
        if request.validity is Validity.TTL:
            # As every live adapter: a TTL order needs a duration the request cannot carry.
            return "TTL validity needs a duration, which the order ticket does not set; use DAY"
        try:
            validate_order(request, instrument)
        except OrderValidationError as exc:
            return exc.message
        assert instrument is not None  # validate_order refuses unknown symbols
        return (
            product_error(instrument, request.product)
            or self._cnc_sell_problem(request, request.quantity, None)
            or self._late_mis_problem(request)
        )

    def _late_mis_problem(self, request: OrderRequest) -> str | None:
        """After the square-off cut-off a broker accepts MIS orders that close, not open."""
        if request.product is not Product.MIS or self.square_off_at is None:
            return None
        now = to_ist(self._clock.now())
        if now.time() < self.square_off_at or not self._calendar.is_trading_day(now.date()):
            return None
        if self._opening_quantity(request, request.quantity, exclude=None) == 0:
            return None
        return (
            f"MIS orders that open a position are not accepted after the "
            f"{self.square_off_at:%H:%M} square-off; use CNC or NRML"
        )

    def _cnc_sell_problem(
        self, request: OrderRequest, quantity: int, exclude: str | None
    ) -> str | None:
        if request.product is not Product.CNC or request.side is not Side.SELL:
            return None
        position = self._positions.get((request.key, Product.CNC))
        held = max(position.quantity, 0) if position else 0
        holding = self._holdings.get(request.key)
        held += holding.quantity if holding else 0
        selling = self._pending(request.key, Product.CNC, Side.SELL, exclude)
        if quantity <= held - selling:
            return None
        already = f" ({selling} already in pending sell orders)" if selling else ""
        return f"CNC sell of {quantity} {request.key} needs a CNC holding: you hold {held}{already}"

    def _pending(self, key: str, product: Product, side: Side, exclude: str | None) -> int:
        total = 0
        for order_id in self._working_by_key.get(key, ()):
            order = self._orders[order_id]
            if order_id != exclude and order.request.product is product and order.side is side:
                total += order.pending_quantity
        return total

    def _opening_quantity(self, request: OrderRequest, pending: int, exclude: str | None) -> int:
        """The part of ``pending`` that opens or adds to a position (the rest closes one)."""
        position = self._positions.get((request.key, request.product))
        against = 0
        if position is not None and position.quantity * request.side.sign < 0:
            against = abs(position.quantity)
        if request.product is Product.CNC and request.side is Side.SELL:
            holding = self._holdings.get(request.key)
            against += holding.quantity if holding else 0
        closable = max(
            against - self._pending(request.key, request.product, request.side, exclude), 0
        )
        return pending - min(pending, closable)

    def _margin_price(self, request: OrderRequest) -> Decimal | None:
        if request.order_type in (OrderType.LIMIT, OrderType.SL):
            return request.price
        if request.order_type is OrderType.SL_M:
            return request.trigger_price
        last = self._last_ticks.get(request.key)
        return last.last_price if last is not None else None

    # -- funds -----------------------------------------------------------------------------
    def _order_margin(self, order: Order, work: _Working) -> Decimal:
        quantity = min(order.pending_quantity, work.opening_quantity)
        return margin_for(
            work.instrument, order.request.product, order.side, quantity, work.margin_price
        )

    def current_funds(self) -> Funds:
        margin = ZERO
        for order_id, work in self._working.items():
            margin += self._order_margin(self._orders[order_id], work)
        realised = unrealised = ZERO
        for (key, _product), position in self._positions.items():
            instrument = self._instruments.get(key)
            if instrument is not None:
                margin += position_margin(instrument, position)
            realised += position.realised_pnl
            unrealised += position.unrealised_pnl
        return Funds(
            opening_balance=self._opening_balance + self._carried_cash,
            available_cash=self._opening_balance
            + self._carried_cash
            + self._released
            + realised
            - self._charges_total
            - margin,
            margin_used=margin,
            realised_pnl=realised,
            unrealised_pnl=unrealised,
            charges=self._charges_total,
        )


def _next_number(ids: Mapping[str, object], prefix: str) -> int:
    """Return one more than the highest ``<prefix><digits>`` id in ``ids`` (1 when none)."""
    numbers = [
        int(i[len(prefix) :]) for i in ids if i.startswith(prefix) and i[len(prefix) :].isdigit()
    ]
    return max(numbers, default=0) + 1


def _ist_day(fill: Fill) -> date:
    return to_ist(fill.ts).date()


def _fill_order(fill: Fill) -> tuple[object, str]:
    return (fill.ts, fill.fill_id)
