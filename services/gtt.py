"""Good-till-triggered orders on any broker, the paper broker included: single and OCO.

A GTT rests here, not at the exchange: when the last price reaches its trigger, the order it
carries goes through the normal order path (``OrderManager.submit``: validation, pre-trade
risk, journal). A *single* GTT has one trigger: it fires when the price reaches the trigger
from the side it was on when placed. An *OCO* (one cancels other) has a stop-loss trigger
below the price and a target trigger above it; whichever is reached first fires and the
other is void, which is how a position is bracketed after entry. Brokers with native GTTs
(Kite, Upstox: ``services.brokers.ports.GttVenue``) keep theirs server-side, and the desktop
sends its GTTs there when that broker is the venue; this book serves the paper broker and
every venue without one.

Triggers are read from a lossless tick subscription, so a fast spike through a level is not
coalesced away; if the book ever lags the feed it resynchronises by checking each active GTT
against the latest price (a level crossed during the gap still fires) and the bus counts it.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from services.bus import TICKS, EventBus, SubscriberLagged, Topic
from services.clock import Clock
from services.domain import Order, OrderRequest, OrderStatus, Tick

log = logging.getLogger(__name__)


class GttKind(enum.StrEnum):
    SINGLE = "single"
    OCO = "oco"


class GttStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    TRIGGERED = "TRIGGERED"  # its order was sent (see order_id and message)
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"  # triggered, but the order was refused
    EXPIRED = "EXPIRED"  # a broker's GTT that reached its end date untriggered


class GttError(ValueError):
    """A GTT that cannot be placed as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class GttLeg:
    trigger: Decimal
    order: OrderRequest
    rising: bool  # fires when the price reaches the trigger from below


@dataclass(frozen=True, slots=True)
class Gtt:
    """One GTT, whoever holds it: this book (an integer id) or a broker's port
    (``services.brokers.ports.GttVenue``; the broker's own id, an integer at Kite, text at
    Upstox)."""

    gtt_id: int | str
    key: str
    kind: GttKind
    legs: tuple[GttLeg, ...]
    created_at: datetime
    status: GttStatus = GttStatus.ACTIVE
    fired_leg: int | None = None
    order_id: str | None = None
    message: str = ""


GTTS: Topic[Gtt] = Topic("gtts")


class GttBook:
    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        submit: Callable[[OrderRequest], Awaitable[Order]],
        last_price: Callable[[str], Decimal | None],
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._submit = submit
        self._last_price = last_price
        self._gtts: dict[int | str, Gtt] = {}
        self._ids = itertools.count(1)
        self._sending: set[asyncio.Task[None]] = set()
        self.resyncs = 0
        self._watched: set[str] | None = None  # keys with an active GTT; None: recompute

    # -- placing ---------------------------------------------------------------------------
    def _price_now(self, key: str) -> Decimal:
        price = self._last_price(key)
        if price is None:
            raise GttError(f"no last price for {key}: a trigger needs one to compare with")
        return price

    def place_single(self, trigger: Decimal, order: OrderRequest) -> Gtt:
        """Send ``order`` when the price reaches ``trigger`` from where it is now."""
        price = self._price_now(order.key)
        if trigger == price:
            raise GttError(f"trigger {trigger} equals the last price: it would fire at once")
        return self._add(GttKind.SINGLE, order.key, (GttLeg(trigger, order, trigger > price),))

    def place_oco(
        self,
        stop_trigger: Decimal,
        stop_order: OrderRequest,
        target_trigger: Decimal,
        target_order: OrderRequest,
    ) -> Gtt:
        """Bracket a position: the stop fires below the price, the target above; first wins."""
        if stop_order.key != target_order.key:
            raise GttError("both legs of an OCO must be for the same instrument")
        price = self._price_now(stop_order.key)
        if not stop_trigger < price < target_trigger:
            raise GttError(
                f"an OCO needs its stop below and its target above the last price {price} "
                f"(stop {stop_trigger}, target {target_trigger})"
            )
        legs = (
            GttLeg(stop_trigger, stop_order, rising=False),
            GttLeg(target_trigger, target_order, rising=True),
        )
        return self._add(GttKind.OCO, stop_order.key, legs)

    def _add(self, kind: GttKind, key: str, legs: tuple[GttLeg, ...]) -> Gtt:
        return self._set(Gtt(next(self._ids), key, kind, legs, self._clock.now()))

    def cancel(self, gtt_id: int | str) -> Gtt:
        gtt = self._gtts.get(gtt_id)
        if gtt is None:
            raise GttError(f"no GTT {gtt_id}")
        if gtt.status is not GttStatus.ACTIVE:
            raise GttError(f"GTT {gtt_id} is {gtt.status.value}, not active")
        return self._set(replace(gtt, status=GttStatus.CANCELLED))

    def gtts(self) -> list[Gtt]:
        return list(self._gtts.values())  # ids rise with insertion: oldest first

    def _set(self, gtt: Gtt) -> Gtt:
        self._gtts[gtt.gtt_id] = gtt
        self._watched = None
        self._bus.publish(GTTS, gtt)
        return gtt

    # -- triggering ------------------------------------------------------------------------
    def on_tick(self, tick: Tick) -> list[Gtt]:
        """Fire every active GTT on ``tick.key`` whose trigger the price has reached."""
        fired: list[Gtt] = []
        watched = self._watched
        if watched is None:
            watched = self._watched = {
                g.key for g in self._gtts.values() if g.status is GttStatus.ACTIVE
            }
        if tick.key not in watched:
            return fired
        price = tick.last_price
        for gtt in list(self._gtts.values()):
            if gtt.key != tick.key or gtt.status is not GttStatus.ACTIVE:
                continue
            for n, leg in enumerate(gtt.legs):
                reached = price >= leg.trigger if leg.rising else price <= leg.trigger
                if reached:
                    done = self._set(
                        replace(gtt, status=GttStatus.TRIGGERED, fired_leg=n, message="sending")
                    )
                    fired.append(done)
                    task = asyncio.get_running_loop().create_task(self._send(done, leg))
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
                    break
        return fired

    async def _send(self, gtt: Gtt, leg: GttLeg) -> None:
        try:
            order = await self._submit(leg.order)
        except Exception as e:  # a refusal is the GTT's outcome, shown to the trader
            self._set(replace(gtt, status=GttStatus.FAILED, message=str(e)))
            return
        if order.status is OrderStatus.REJECTED:
            self._set(
                replace(
                    gtt, status=GttStatus.FAILED, order_id=order.order_id,
                    message=order.status_message,
                )
            )
            return
        self._set(replace(gtt, order_id=order.order_id, message=f"order {order.order_id}"))

    def _resync(self) -> None:
        """After a lag: compare each active GTT with the latest price instead of the gap."""
        self.resyncs += 1
        for key in {g.key for g in self._gtts.values() if g.status is GttStatus.ACTIVE}:
            price = self._last_price(key)
            if price is not None:
                now = self._clock.now()
                self.on_tick(Tick(key, now, price, 0, 0, price, price, price, price))

    async def run(self) -> None:
        sub = self._bus.subscribe(TICKS, "gtt-book", lossless=True)
        try:
            while True:
                try:
                    batch = await sub.next_batch()
                except SubscriberLagged:
                    log.warning("GTT book fell behind the feed; checking triggers afresh")
                    self._resync()
                    continue
                for tick in batch:
                    self.on_tick(tick)
        finally:
            sub.close()
            for task in list(self._sending):
                task.cancel()
