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

With a profile database the book survives a restart (``GttRepository``): a GTT is written
before it is acknowledged, and a fired one is marked "sending" on disk *before* its order is
sent, so a crash between the two leaves a GTT that says so and is never fired again (sending
it twice would be the worse error). Writes run on the book's own thread, never on the loop.

Triggers are read from a lossless tick subscription, so a fast spike through a level is not
coalesced away; if the book ever lags the feed it resynchronises by checking each active GTT
against the latest price (a level crossed during the gap still fires) and the bus counts it.
"""

from __future__ import annotations

import asyncio
import decimal
import enum
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.bus import TICKS, EventBus, SubscriberLagged, Topic
from services.clock import Clock
from services.domain import Order, OrderRequest, OrderStatus, OrderType, Tick
from services.node.wire import decode_request, encode_request
from services.storage import Database
from services.storage.codec import from_iso, to_iso

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


class GttNotFound(GttError):
    """No GTT by that id where this session's GTTs are held."""


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


@dataclass(frozen=True, slots=True)
class LegChange:
    """A leg's new trigger and, for a LIMIT order, its new limit price (a trailing stop moves
    both); None keeps a MARKET order's."""

    trigger: Decimal
    price: Decimal | None = None


def changed_legs(
    gtt: Gtt, changes: list[LegChange], last_price: Decimal
) -> tuple[GttLeg, ...]:
    """The legs of ``gtt`` moved as ``changes`` say, checked as a new GTT would be.

    Every venue modifies through this, so a move is refused for the same reasons, in the
    same words, whoever holds the GTT.
    """
    if gtt.status is not GttStatus.ACTIVE:
        raise GttError(f"GTT {gtt.gtt_id} is {gtt.status.value}, not active")
    if len(changes) != len(gtt.legs):
        raise GttError(f"GTT {gtt.gtt_id} has {len(gtt.legs)} leg(s); {len(changes)} given")
    legs = []
    for leg, change in zip(gtt.legs, changes, strict=True):
        if not change.trigger.is_finite() or change.trigger <= 0:
            raise GttError("a GTT trigger must be a positive price")
        order = leg.order
        if order.order_type is OrderType.LIMIT:
            price = change.price if change.price is not None else order.price
            if price is None or not price.is_finite() or price <= 0:
                raise GttError("a GTT's limit order needs a positive price")
            order = replace(order, price=price)
        elif change.price is not None:
            raise GttError(f"a {order.order_type.value} order has no limit price to change")
        legs.append(GttLeg(change.trigger, order, leg.rising))
    if gtt.kind is GttKind.SINGLE:
        (only,) = legs
        if only.trigger == last_price:
            raise GttError(f"trigger {only.trigger} equals the last price: it would fire at once")
        return (replace(only, rising=only.trigger > last_price),)
    stop, target = legs
    if not stop.trigger < last_price < target.trigger:
        raise GttError(
            f"an OCO needs its stop below and its target above the last price {last_price} "
            f"(stop {stop.trigger}, target {target.trigger})"
        )
    return (stop, target)

SENDING = "sending"  # a fired GTT's message until its order is answered
INTERRUPTED = (
    "the terminal stopped while this GTT's order was being sent: check the order book "
    "before placing it again"
)


def gtt_to_dict(gtt: Gtt) -> dict[str, Any]:
    """A GTT as JSON values, exact decimal strings and order requests as on the node's wire:
    the form it is stored in and the form the order node's API sends."""
    return {
        "gtt_id": gtt.gtt_id,
        "key": gtt.key,
        "kind": gtt.kind.value,
        "legs": [
            {
                "trigger": str(leg.trigger),
                "rising": leg.rising,
                "order": {**encode_request(leg.order), "source": leg.order.source},
            }
            for leg in gtt.legs
        ],
        "created_at": to_iso(gtt.created_at),
        "status": gtt.status.value,
        "fired_leg": gtt.fired_leg,
        "order_id": gtt.order_id,
        "message": gtt.message,
    }


def gtt_from_dict(raw: dict[str, Any]) -> Gtt:
    """Raises KeyError, TypeError or ValueError (WireError among them) on a malformed GTT."""
    legs = tuple(
        GttLeg(Decimal(leg["trigger"]), decode_request(leg["order"]), bool(leg["rising"]))
        for leg in raw["legs"]
    )
    gtt_id = raw["gtt_id"]
    if not isinstance(gtt_id, (int, str)) or isinstance(gtt_id, bool):
        raise TypeError(f"gtt_id {gtt_id!r} is not a number or text")
    return Gtt(
        gtt_id, str(raw["key"]), GttKind(raw["kind"]), legs, from_iso(raw["created_at"]),
        GttStatus(raw["status"]), raw.get("fired_leg"), raw.get("order_id"),
        str(raw.get("message", "")),
    )


def gtt_record(gtt: Gtt) -> str:
    """The stored form (``GttRepository``)."""
    return json.dumps(gtt_to_dict(gtt))


def gtt_from_record(gtt_id: int, record: str) -> Gtt:
    return gtt_from_dict({**json.loads(record), "gtt_id": gtt_id})


class GttBook:
    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        submit: Callable[[OrderRequest], Awaitable[Order]],
        last_price: Callable[[str], Decimal | None],
        store: Database | None = None,
    ) -> None:
        self._bus = bus
        self._store = store
        self._writer = (
            ThreadPoolExecutor(1, thread_name_prefix="dalal-gtt") if store is not None else None
        )
        self._loaded = False
        self.write_errors = 0
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

    async def place_single(self, trigger: Decimal, order: OrderRequest) -> Gtt:
        """Send ``order`` when the price reaches ``trigger`` from where it is now."""
        price = self._price_now(order.key)
        if trigger == price:
            raise GttError(f"trigger {trigger} equals the last price: it would fire at once")
        legs = (GttLeg(trigger, order, trigger > price),)
        return await self._add(GttKind.SINGLE, order.key, legs)

    async def place_oco(
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
        return await self._add(GttKind.OCO, stop_order.key, legs)

    async def _add(self, kind: GttKind, key: str, legs: tuple[GttLeg, ...]) -> Gtt:
        await self.load()  # ids continue after the stored ones
        gtt = Gtt(next(self._ids), key, kind, legs, self._clock.now())
        await self._save(gtt)  # on disk before the trader is told it rests
        return self._set(gtt)

    async def cancel(self, gtt_id: int | str) -> Gtt:
        gtt = self._gtts.get(gtt_id)
        if gtt is None:
            raise GttNotFound(f"no GTT {gtt_id}")
        if gtt.status is not GttStatus.ACTIVE:
            raise GttError(f"GTT {gtt_id} is {gtt.status.value}, not active")
        cancelled = replace(gtt, status=GttStatus.CANCELLED)
        await self._save(cancelled)
        return self._set(cancelled)

    async def modify(self, gtt_id: int | str, changes: list[LegChange]) -> Gtt:
        """Move an active GTT's triggers (and limit prices) in place; same id, same orders."""
        gtt = self._gtts.get(gtt_id)
        if gtt is None:
            raise GttNotFound(f"no GTT {gtt_id}")
        moved = replace(gtt, legs=changed_legs(gtt, changes, self._price_now(gtt.key)))
        await self._save(moved)
        return self._set(moved)

    def gtts(self) -> list[Gtt]:
        return list(self._gtts.values())  # ids rise with insertion: oldest first

    def _set(self, gtt: Gtt) -> Gtt:
        self._gtts[gtt.gtt_id] = gtt
        self._watched = None
        self._bus.publish(GTTS, gtt)
        return gtt

    # -- storage ---------------------------------------------------------------------------
    async def _save(self, gtt: Gtt) -> None:
        if self._writer is None or self._store is None or not isinstance(gtt.gtt_id, int):
            return
        record = gtt_record(gtt)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._store.gtts.put, gtt.gtt_id, record)

    async def load(self) -> None:
        """Put back the stored GTTs; ``run`` calls it once, and so does the first placing.

        A GTT stored as "sending" fired while the last session ended, and whether its order
        left is for the order book to say: it is marked FAILED with that instruction, never
        fired again.
        """
        if self._loaded:
            return
        self._loaded = True
        if self._writer is None or self._store is None:
            return
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._writer, self._store.gtts.all)
        last = 0
        for gtt_id, record in rows:
            last = max(last, gtt_id)
            try:
                gtt = gtt_from_record(gtt_id, record)
            except (KeyError, TypeError, ValueError, decimal.InvalidOperation) as e:
                log.warning("stored GTT %s is unreadable (%s); left out of the book", gtt_id, e)
                continue
            if gtt.status is GttStatus.TRIGGERED and gtt.message == SENDING:
                gtt = replace(gtt, status=GttStatus.FAILED, message=INTERRUPTED)
                await self._save(gtt)
            self._gtts[gtt_id] = gtt
        self._ids = itertools.count(last + 1)
        self._watched = None

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
                        replace(gtt, status=GttStatus.TRIGGERED, fired_leg=n, message=SENDING)
                    )
                    fired.append(done)
                    task = asyncio.get_running_loop().create_task(self._send(done, leg))
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
                    break
        return fired

    async def _send(self, gtt: Gtt, leg: GttLeg) -> None:
        try:
            await self._save(gtt)  # "sending" on disk first: a crash after it never re-fires
        except Exception as e:
            self.write_errors += 1
            log.error("GTT %s fired but could not be stored; its order is not sent", gtt.gtt_id)
            self._set(replace(gtt, status=GttStatus.FAILED, message=f"not sent: {e}"))
            return
        try:
            order = await self._submit(leg.order)
        except Exception as e:  # a refusal is the GTT's outcome, shown to the trader
            outcome = replace(gtt, status=GttStatus.FAILED, message=str(e))
        else:
            if order.status is OrderStatus.REJECTED:
                outcome = replace(
                    gtt, status=GttStatus.FAILED, order_id=order.order_id,
                    message=order.status_message,
                )
            else:
                outcome = replace(gtt, order_id=order.order_id, message=f"order {order.order_id}")
        self._set(outcome)
        try:
            await self._save(outcome)
        except Exception:  # the order went; a restart shows the GTT as interrupted, not lost
            self.write_errors += 1
            log.exception("GTT %s: its outcome could not be stored", gtt.gtt_id)

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
            await self.load()
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
            if self._writer is not None:
                self._writer.shutdown(wait=False)
