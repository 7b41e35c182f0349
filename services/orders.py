"""The order manager: the one door every order goes through, whoever sends it.

The ticket, hotkeys, the HTTP API and models all call ``submit``; the order is validated
against the exchange's rules, then every pre-trade check (the risk engine plugs in here), and
only then handed to the broker, so a refused order never reaches any broker. Afterwards the
broker is the source of truth: the snapshots here follow its events on the bus, refuse any
update that would move an order backwards through its state machine (a reordered or repeated
message), and are reloaded from the broker by ``resync`` when a subscription lagged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Protocol, TypeVar, runtime_checkable

from services.broker import BrokerError, OrderChange, OrderNotFound, OrderRejected
from services.brokers.ports import ExecutionClient
from services.bus import FILLS, FUNDS, ORDERS, POSITIONS, EventBus, SubscriberLagged, Subscription
from services.clock import Clock, to_ist
from services.domain import (
    ORDER_TRANSITIONS,
    Fill,
    Funds,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Product,
)
from services.instruments import InstrumentRegistry
from services.validation import validate_order

log = logging.getLogger(__name__)

T = TypeVar("T")

LATENCY_SAMPLES = 1024


class QuoteSource(Protocol):
    def last_price(self, key: str) -> Decimal | None: ...


class OrderJournalPort(Protocol):
    """Durable records of the order path (the encrypted database's journal and audit log).

    ``record_intent`` must be durable when it returns: it runs before the broker is called, so
    after a crash the terminal knows of every order it may have sent. What follows the
    broker's answer (``record_ack``, the ``order_placed`` audit) is queued behind it instead
    of awaited: the caller has its answer one or two synchronous commits sooner, and a crash
    before they land leaves the intent, which the restart resolves by its tag at the broker
    (``services.brokers.live.resolve_unacknowledged``). A venue with ``journals_intents``
    (the order node, which makes the intent durable itself before any broker sees it) gets
    no intent written before its answer: the terminal's copy is then a record, not the
    safeguard, and is the answer (``record_ack``), or the intent when no answer came.
    """

    async def record_intent(self, order: Order) -> None: ...

    async def record_ack(self, intent_id: str, order: Order) -> None: ...

    async def audit(self, kind: str, actor: str, details: dict[str, object]) -> None: ...


def new_tag() -> str:
    """Return our own order tag: unique, alphanumeric and within Kite's 20-character limit."""
    return "dt" + secrets.token_hex(6)


@runtime_checkable
class ModifyCheck(Protocol):
    """A pre-trade check that also vets modifications (the risk engine)."""

    def check_modify(
        self, request: OrderRequest, instrument: Instrument, original: Order
    ) -> None: ...


class PreTradeCheck(Protocol):
    def __call__(self, request: OrderRequest, instrument: Instrument) -> None:
        """Return to let the order through; raise ``OrderRejected(msg, rule=...)`` to stop it."""
        ...


def apply_change(request: OrderRequest, change: OrderChange) -> OrderRequest:
    """Return ``request`` as ``change`` modifies it.

    Fields the new order type does not take are dropped (a stop-loss turned into a LIMIT loses
    its trigger, a LIMIT turned into a MARKET order its price), so the result validates like a
    fresh order.
    """
    order_type = change.order_type or request.order_type
    price = change.price if change.price is not None else request.price
    trigger = change.trigger_price if change.trigger_price is not None else request.trigger_price
    return replace(
        request,
        quantity=change.quantity if change.quantity is not None else request.quantity,
        order_type=order_type,
        price=price if order_type.needs_price else None,
        trigger_price=trigger if order_type.needs_trigger else None,
    )


class OrderManager:
    def __init__(
        self,
        broker: ExecutionClient,
        instruments: InstrumentRegistry,
        quotes: QuoteSource,
        bus: EventBus,
        clock: Clock,
        checks: Sequence[PreTradeCheck] = (),
        *,
        on_ack: Callable[[float], None] | None = None,
        journal: OrderJournalPort | None = None,
        admission: Callable[[], str | None] | None = None,
    ) -> None:
        self._broker = broker
        self._instruments = instruments
        self._quotes = quotes
        self._bus = bus
        self._clock = clock
        self.checks: list[PreTradeCheck] = list(checks)
        self.on_ack = on_ack
        self.journal = journal
        # Asked again right before the broker call: a reason when new orders must not go out.
        self.admission: Callable[[], str | None] | None = admission
        # Seconds from submit to the broker's acknowledgement, newest last, for metrics.
        self.order_latency: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        # Why the last ``cancel_all`` could not cancel some orders, by order id.
        self.cancel_failures: dict[str, str] = {}
        self._orders: dict[str, Order] = {}
        self._fills: dict[str, Fill] = {}
        self._positions: dict[tuple[str, Product], Position] = {}
        self._funds: Funds | None = None
        self._in_flight: dict[str, Order] = {}
        self._in_flight_done: dict[str, asyncio.Event] = {}
        self._in_flight_seq = 0
        # The journal writes after an acknowledgement, queued in order (``settle_journal``).
        self._journal_writes: set[asyncio.Task[None]] = set()
        self.journal_errors = 0
        # Subscribed now, not in run(), so events published before run() starts are kept.
        self._order_sub = bus.subscribe(ORDERS, "order-manager")
        self._fill_sub = bus.subscribe(FILLS, "order-manager")
        self._position_sub = bus.subscribe(POSITIONS, "order-manager")
        self._funds_sub = bus.subscribe(FUNDS, "order-manager")

    # -- order entry -----------------------------------------------------------------------
    async def submit(self, request: OrderRequest) -> Order:
        """Validate, run the pre-trade checks, then place ``request`` with the broker.

        Raises ``OrderValidationError`` or the check's ``OrderRejected`` unchanged; the broker
        is not called in either case. A broker's own refusal comes back as a REJECTED order.
        """
        if request.tag is None:
            request = replace(request, tag=new_tag())
        tag = request.tag
        assert tag is not None
        instrument = self._instruments.get(request.key)
        today = to_ist(self._clock.now()).date()
        validate_order(request, instrument, self._quotes.last_price(request.key), today)
        assert instrument is not None  # validate_order refuses unknown symbols
        try:
            for check in self.checks:
                check(request, instrument)
        except OrderRejected as e:
            # The refusal goes into the order book like a broker's rejection, so the trader
            # sees the rule and its reason where they look for their orders.
            now = self._clock.now()
            rejected = Order(tag, request, OrderStatus.REJECTED, now, now, status_message=str(e))
            self._bus.publish(ORDERS, rejected)
            if self.journal is not None:
                await self.journal.audit(
                    "risk_rejected", request.source, {**_describe(request), "rule": e.rule}
                )
            raise
        return await self._send(request, tag, admit=True)

    async def submit_exempt(self, request: OrderRequest, *, reason: str) -> Order:
        """Send ``request`` past the pre-trade checks and the trading state: the kill switch's
        square-off orders, which must go out while trading is HALTED.

        Still validated, journaled before sending and audited (``risk_exempt``) like any order.
        """
        if request.tag is None:
            request = replace(request, tag=new_tag())
        tag = request.tag
        assert tag is not None
        validate_order(request, self._instruments.get(request.key))
        if self.journal is not None:
            await self.journal.audit(
                "risk_exempt", request.source, {**_describe(request), "reason": reason}
            )
        return await self._send(request, tag, admit=False)

    async def settle_in_flight(self) -> None:
        """Wait until every order sent so far has its broker answer (bound it by a timeout)."""
        waiting = [done.wait() for done in self._in_flight_done.values()]
        if waiting:
            await asyncio.gather(*waiting)

    async def _send(self, request: OrderRequest, tag: str, *, admit: bool) -> Order:
        # Until the broker answers, the order counts as open (PENDING) for the checks of any
        # order submitted meanwhile, so concurrent submits cannot slip past max_open_orders.
        now = self._clock.now()
        intent = Order(tag, request, OrderStatus.PENDING, now, now)
        self._in_flight[tag] = intent
        self._in_flight_done[tag] = asyncio.Event()
        started = time.perf_counter()
        journal = self.journal
        # A venue that makes the intent durable itself before any broker sees the order (the
        # order node) does not wait for this journal's copy. Nor is the copy written while the
        # order is out: the answer replaces it (``record_ack``), so the journal gets the answer
        # alone, queued after it arrives, or the intent when there is no answer (an unknown
        # outcome stays PENDING, resolved by its tag). No write of this side's then competes
        # for the disk with the venue's own synchronous commit of the intent.
        queued = journal is not None and getattr(self._broker, "journals_intents", False)
        try:
            if journal is not None and not queued:
                await journal.record_intent(intent)
            # The journal write awaited: a kill switch may have halted trading meanwhile.
            refusal = self.admission() if admit and self.admission is not None else None
            if refusal is not None:
                order = intent.evolve(
                    OrderStatus.REJECTED, self._clock.now(), status_message=refusal
                )
                self._bus.publish(ORDERS, order)
                if journal is not None and queued:
                    self._journal_later(tag, lambda: journal.record_ack(tag, order))
                elif journal is not None:
                    await journal.record_ack(tag, order)
                raise OrderRejected(refusal, rule="trading_state")
            try:
                order = await self._broker.place_order(request)
            except BaseException:
                if journal is not None and queued:
                    self._journal_later(tag, lambda: journal.record_intent(intent))
                raise
        finally:
            del self._in_flight[tag]
            self._in_flight_done.pop(tag).set()
        elapsed = time.perf_counter() - started
        self.order_latency.append(elapsed)
        if self.on_ack is not None:
            self.on_ack(elapsed)
        self._apply_order(order)
        if journal is not None:
            details = {**_describe(request), "order_id": order.order_id, "status": order.status}
            self._journal_later(
                tag,
                lambda: journal.record_ack(tag, order),
                lambda: journal.audit("order_placed", request.source, details),
            )
        return order

    def _journal_later(self, tag: str, *writes: Callable[[], Awaitable[None]]) -> None:
        """Queue journal writes without making the caller wait (the ack and its audit entry;
        the intent too, for a venue that journals it durably itself).

        Tasks start in the order they were created and each hands its write to the journal's
        single thread at its first step, so the writes land in the order they were queued
        (an intent before its ack, the ack before its audit entry). A failure is counted and
        logged, never raised: what is missing, a restart resolves by the tag at the venue.
        """

        async def write() -> None:
            try:
                for step in writes:
                    await step()
            except Exception:
                self.journal_errors += 1
                log.exception("journaling order %s failed; a restart resolves it by its tag "
                              "at the venue", tag)  # fmt: skip

        task = asyncio.get_running_loop().create_task(write(), name=f"order-journal:{tag}")
        self._journal_writes.add(task)
        task.add_done_callback(self._journal_writes.discard)

    async def settle_journal(self) -> None:
        """Wait until every acknowledgement queued so far is written (shutdown, tests)."""
        while self._journal_writes:
            await asyncio.gather(*self._journal_writes, return_exceptions=True)

    async def modify(self, order_id: str, change: OrderChange) -> Order:
        """Modify a working order; the new order is validated here before the broker sees it."""
        known = self._orders.get(order_id)
        if known is None:
            # Never modified blind: an order we do not know has not passed our checks.
            raise OrderNotFound(f"order {order_id} is not in the order book; refresh it first")
        if known.status.is_working:
            request = apply_change(known.request, change)
            last = (
                self._quotes.last_price(request.key)
                if known.status is OrderStatus.TRIGGER_PENDING
                else None
            )
            instrument = self._instruments.get(request.key)
            validate_order(request, instrument, last)
            assert instrument is not None  # validate_order refuses unknown symbols
            try:
                for check in self.checks:
                    if isinstance(check, ModifyCheck):
                        check.check_modify(request, instrument, known)
            except OrderRejected as e:
                if self.journal is not None:
                    await self.journal.audit(
                        "risk_rejected",
                        known.request.source,
                        {**_describe(request), "order_id": order_id, "rule": e.rule},
                    )
                raise
        order = await self._broker.modify_order(order_id, change)
        self._apply_order(order)
        if self.journal is not None:
            await self.journal.audit(
                "order_modified",
                order.request.source,
                {**_describe(order.request), "order_id": order_id},
            )
        return order

    async def cancel(self, order_id: str) -> Order:
        order = await self._broker.cancel_order(order_id)
        self._apply_order(order)
        if self.journal is not None:
            await self.journal.audit(
                "order_cancelled", order.request.source, {"order_id": order_id, "key": order.key}
            )
        return order

    async def cancel_all(self) -> list[str]:
        """Cancel every working order; return the ids cancelled.

        A failure (the order filled meanwhile, the broker refused) does not stop the others: it
        is logged and kept in ``cancel_failures``.
        """
        self.cancel_failures = {}
        cancelled: list[str] = []
        for order in self.orders():
            if not order.status.is_working:
                continue
            try:
                await self.cancel(order.order_id)
            except BrokerError as exc:
                log.warning("cancel_all: %s not cancelled: %s", order.order_id, exc)
                self.cancel_failures[order.order_id] = str(exc)
            else:
                cancelled.append(order.order_id)
        return cancelled

    # -- snapshots -------------------------------------------------------------------------
    def orders(self) -> list[Order]:
        """All orders of the session, newest first."""
        newest_first = list(reversed(self._orders.values()))
        return sorted(newest_first, key=lambda o: o.placed_at, reverse=True)

    def order(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    async def find_by_tag(self, tag: str) -> Order | None:
        """The order we sent with ``tag``, as we know it or else as the broker reports it.

        For an outcome that is not known (the process died or the broker did not answer
        after the intent was journaled): an order only we rejected, never acknowledged by the
        broker, is no evidence that the broker has it, and is not returned.
        """
        for order in self._orders.values():
            if order.request.tag == tag and not _never_sent(order):
                return order
        finder = getattr(self._broker, "order_by_tag", None)
        if finder is not None:
            found: Order | None = await finder(tag)
        else:
            found = next((o for o in await self._broker.orders() if o.request.tag == tag), None)
        if found is not None and not _never_sent(found):
            self._apply_order(found)
            return found
        return None

    def open_orders(self) -> list[Order]:
        """Working orders, including those sent and not yet acknowledged by the broker.

        Unsorted: the risk engine asks on every order, and sorting the whole session's
        orders each time would grow the check with the day's order count.
        """
        working = (o for o in self._orders.values() if o.status.is_working)
        return [*self._in_flight.values(), *working]

    def positions(self) -> list[Position]:
        return [self._positions[k] for k in sorted(self._positions)]

    def funds(self) -> Funds | None:
        return self._funds

    def fills(self) -> list[Fill]:
        """All fills of the session, newest first."""
        return list(reversed(self._fills.values()))

    # -- following the broker --------------------------------------------------------------
    async def run(self) -> None:
        """Apply the broker's events to the snapshots until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._follow(self._order_sub, self._apply_orders))
            group.create_task(self._follow(self._fill_sub, self._apply_fills))
            group.create_task(self._follow(self._position_sub, self._apply_positions))
            group.create_task(self._follow(self._funds_sub, self._apply_funds))

    def apply_pending(self) -> None:
        """Apply every event waiting now, without waiting (for tests and synchronous callers).

        Raises ``SubscriberLagged`` if a subscription fell behind; call ``resync`` then.
        """
        self._apply_orders(self._order_sub.drain())
        self._apply_fills(self._fill_sub.drain())
        self._apply_positions(self._position_sub.drain())
        self._apply_funds(self._funds_sub.drain())

    async def resync(self) -> None:
        """Reload every snapshot from the broker, dropping events queued before the reload."""
        self._drain()
        self._replace(*(await _read(self._broker)))

    @property
    def venue(self) -> ExecutionClient:
        """Where orders go now."""
        return self._broker

    def in_flight(self) -> list[Order]:
        """Orders sent and not yet answered by the venue."""
        return list(self._in_flight.values())

    async def use_venue(self, venue: ExecutionClient) -> None:
        """Send every order to ``venue`` from now on; the snapshots become its own.

        Its orders, fills, positions and funds are read first, so a venue that cannot be read
        raises here and nothing changes. Raises ``VenueBusy`` while an order is in flight: its
        answer belongs to the venue it was sent to.
        """
        if self._in_flight:
            raise VenueBusy(_busy(self._in_flight))
        snapshot = await _read(venue)
        if self._in_flight:  # sent while the new venue was being read
            raise VenueBusy(_busy(self._in_flight))
        self._broker = venue
        self._drain()  # the old venue's events still queued
        self._replace(*snapshot)

    def _drain(self) -> None:
        for sub in (self._order_sub, self._fill_sub, self._position_sub, self._funds_sub):
            try:
                sub.drain()
            except SubscriberLagged:
                sub.drain()

    def _replace(
        self, orders: list[Order], fills: list[Fill], positions: list[Position], funds: Funds
    ) -> None:
        self._orders = {o.order_id: o for o in sorted(orders, key=lambda o: o.placed_at)}
        self._fills = {f.fill_id: f for f in fills}
        self._positions = {(p.key, p.product): p for p in positions}
        self._funds = funds

    def close(self) -> None:
        for sub in (self._order_sub, self._fill_sub, self._position_sub, self._funds_sub):
            sub.close()

    async def _follow(self, sub: Subscription[T], apply: Callable[[list[T]], None]) -> None:
        while True:
            try:
                batch = await sub.next_batch()
            except SubscriberLagged:
                log.warning("order manager lagged on %s; resyncing from the broker", sub.topic)
                await self.resync()
                continue
            apply(batch)

    def apply_broker_update(self, order: Order) -> None:
        """Apply an order as the broker reports it now (reconciliation of a stuck order)."""
        self._apply_order(order)

    def _apply_orders(self, orders: list[Order]) -> None:
        for order in orders:
            self._apply_order(order)

    def _apply_order(self, order: Order) -> None:
        current = self._orders.get(order.order_id)
        if current is not None and current != order:
            legal = order.status in ORDER_TRANSITIONS[current.status]
            if not legal or order.filled_quantity < current.filled_quantity:
                log.debug(
                    "ignoring stale update for %s: %s -> %s",
                    order.order_id,
                    current.status,
                    order.status,
                )
                return
        self._orders[order.order_id] = order

    def _apply_fills(self, fills: list[Fill]) -> None:
        for fill in fills:
            self._fills.setdefault(fill.fill_id, fill)

    def _apply_positions(self, positions: list[Position]) -> None:
        for position in positions:
            self._positions[(position.key, position.product)] = position

    def _apply_funds(self, funds: list[Funds]) -> None:
        if funds:
            self._funds = funds[-1]


class VenueBusy(BrokerError):
    """The venue cannot change now: an order sent to the current one has no answer yet."""


def _busy(in_flight: dict[str, Order]) -> str:
    first = next(iter(in_flight.values()))
    return (f"{len(in_flight)} order(s) in flight ({first.key} {first.side.value} "
            f"{first.quantity}, tag {first.order_id}): switch the venue once it has its "
            "answer")  # fmt: skip


async def _read(
    venue: ExecutionClient,
) -> tuple[list[Order], list[Fill], list[Position], Funds]:
    """Everything the snapshots hold, as ``venue`` reports it now."""
    return await venue.orders(), await venue.fills(), await venue.positions(), await venue.funds()


def _never_sent(order: Order) -> bool:
    """Our own refusal or an intent without an acknowledgement: keyed by its tag."""
    return order.order_id == order.request.tag and order.status in (
        OrderStatus.REJECTED, OrderStatus.PENDING)


def _describe(request: OrderRequest) -> dict[str, object]:
    """The audit log's view of an order: what was asked, never who the account is."""
    return {
        "key": request.key,
        "side": request.side,
        "quantity": request.quantity,
        "order_type": request.order_type,
        "product": request.product,
        "validity": request.validity,
        "price": None if request.price is None else str(request.price),
        "trigger_price": None if request.trigger_price is None else str(request.trigger_price),
        "tag": request.tag,
    }
