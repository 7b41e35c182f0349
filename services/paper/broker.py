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

Funds follow ``services.paper.margin``: margin is blocked on acceptance, moves from order to
position as fills arrive, and is released on cancel, IOC remainder and when a position shrinks.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
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
from services.clock import Clock
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


@dataclass(slots=True)
class _Working:
    """Book-keeping for a working order that the immutable ``Order`` does not carry."""

    instrument: Instrument
    margin_price: Decimal  # the price the order's margin is valued at
    opening_quantity: int  # how much of the pending quantity opens or adds to a position
    cost: Decimal = ZERO  # sum of fill price x quantity, for the average price
    triggered: bool = False
    sweep: bool = True  # the next usable tick may walk the book (arrival, modify, trigger)


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
    ) -> None:
        self._instruments = instruments
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
        """Paper trading starts flat every session: today's CNC buys are positions."""
        return []

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
                for tick in batch:
                    self.on_tick(tick)
        finally:
            sub.close()
            self._bus.publish(
                CONNECTION,
                ConnectionState(
                    BROKER_COMPONENT, ConnectionStatus.DISCONNECTED, "stopped", self._clock.now()
                ),
            )

    def on_tick(self, tick: Tick) -> None:
        self._last_ticks[tick.key] = tick
        marked = self._mark(tick)
        ids = self._working_by_key.get(tick.key)
        changed = False
        if ids and self._is_fresh(tick):
            changed = self._trigger(tick, ids)
            if tick.depth is not None:
                book = TickBook(tick.depth)
                for order_id in list(ids):
                    changed |= self._match(order_id, book, tick)
        for position in marked:
            self._bus.publish(POSITIONS, self._positions[(position.key, position.product)])
        if marked or changed:
            self._bus.publish(FUNDS, self.current_funds())

    def _is_fresh(self, tick: Tick) -> bool:
        return self._clock.now() - tick.ts <= self.max_quote_age

    def _mark(self, tick: Tick) -> list[Position]:
        marked: list[Position] = []
        for product in Product:
            position = self._positions.get((tick.key, product))
            if position is not None and position.last_price != tick.last_price:
                position = replace(position, last_price=tick.last_price)
                self._positions[(tick.key, product)] = position
                marked.append(position)
        return marked

    def _trigger(self, tick: Tick, ids: list[str]) -> bool:
        changed = False
        for order_id in list(ids):
            order = self._orders[order_id]
            trigger = order.request.trigger_price
            if order.status is not OrderStatus.TRIGGER_PENDING or trigger is None:
                continue
            if trigger_touched(order.side, tick.last_price, trigger):
                work = self._working[order_id]
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
        position = position.apply_fill(order.side, quantity, price)
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
            self._positions[pkey] = position.apply_fill(fill.side, fill.quantity, fill.price)
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
            )
            self._working_by_key.setdefault(order.key, []).append(order.order_id)
        self._order_seq = itertools.count(_next_number(self._orders, "PA"))
        self._fill_seq = itertools.count(_next_number({f.fill_id: f for f in fills}, "PT"))
        for position in self._positions.values():
            self._bus.publish(POSITIONS, position)
        self._bus.publish(FUNDS, self.current_funds())

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
        self._working[order_id] = _Working(
            instrument=instrument,
            margin_price=margin_price,
            opening_quantity=opening,
        )
        self._working_by_key.setdefault(request.key, []).append(order_id)
        accepted = order.evolve(status, now)
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
        try:
            validate_order(request, instrument)
        except OrderValidationError as exc:
            return exc.message
        assert instrument is not None  # validate_order refuses unknown symbols
        return product_error(instrument, request.product) or self._cnc_sell_problem(
            request, request.quantity, None
        )

    def _cnc_sell_problem(
        self, request: OrderRequest, quantity: int, exclude: str | None
    ) -> str | None:
        if request.product is not Product.CNC or request.side is not Side.SELL:
            return None
        position = self._positions.get((request.key, Product.CNC))
        held = max(position.quantity, 0) if position else 0
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
            opening_balance=self._opening_balance,
            available_cash=self._opening_balance + realised - margin,
            margin_used=margin,
            realised_pnl=realised,
            unrealised_pnl=unrealised,
        )


def _next_number(ids: Mapping[str, object], prefix: str) -> int:
    """Return one more than the highest ``<prefix><digits>`` id in ``ids`` (1 when none)."""
    numbers = [
        int(i[len(prefix) :]) for i in ids if i.startswith(prefix) and i[len(prefix) :].isdigit()
    ]
    return max(numbers, default=0) + 1
