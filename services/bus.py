"""An asyncio event bus with typed topics that no slow subscriber can stall.

Publishing never awaits and never blocks: each subscriber has its own mailbox.

* A *coalescing* topic (ticks, live bars, funds) keeps only the newest event per key in a
  view's mailbox. A chart that repaints 60 times a second therefore receives at most one
  tick per instrument per frame, however fast the feed runs, and memory stays bounded by the
  number of instruments. Consumers that need every tick (the bar builder for true highs and
  lows, the paper broker so a stop-loss trigger is never skipped) subscribe with
  ``lossless=True`` and get the lossless behaviour below on any topic.
* A *lossless* topic (orders, fills) keeps every event in order. Its mailbox is bounded; a
  subscriber that falls that far behind is marked as lagged and gets ``SubscriberLagged`` on
  its next read, so it resynchronises from a snapshot instead of silently missing an order
  update, and the publisher (the order path) is never held up by a slow view.
  A subscriber with no snapshot to resync from (the tick recorder) subscribes with
  ``keep_backlog=True``: when full it keeps what it holds and refuses only what does not fit
  (counted in ``dropped``); it is told it lagged all the same.

All methods must be called on the event loop's thread; SDK threads use
``publish_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from services.domain import (
    Bar,
    ConnectionState,
    Fill,
    Funds,
    OptionGreeks,
    Order,
    Position,
    Tick,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Topic(Generic[T]):
    """A named stream of events of one type.

    ``coalesce_key`` turns on per-key coalescing; leave it ``None`` for events that must all
    be delivered. ``maxsize`` bounds a lossless subscriber's backlog. ``retain`` keeps the
    newest event per key on the bus (a state, not a happening: a connection's status), so a
    view that subscribes later can start from it (``subscribe(..., replay=True)``).
    """

    name: str
    coalesce_key: Callable[[T], Hashable] | None = None
    maxsize: int = 10_000
    retain: bool = False

    def __repr__(self) -> str:
        return f"Topic({self.name!r})"


class SubscriberLagged(Exception):
    """The subscriber fell more than ``maxsize`` events behind and must resynchronise."""


class Subscription(Generic[T]):
    def __init__(
        self,
        bus: EventBus,
        topic: Topic[T],
        name: str,
        *,
        lossless: bool,
        accept: Callable[[T], bool] | None = None,
        keep_backlog: bool = False,
    ) -> None:
        self._bus = bus
        self.topic = topic
        self.name = name
        self._key_fn = None if lossless else topic.coalesce_key
        self._accept = accept
        self._coalesced: dict[Hashable, T] = {}
        self._queue: deque[T] = deque()
        self._ready = asyncio.Event()
        self._lagged = False
        self._keep_backlog = keep_backlog
        self.closed = False
        self.delivered = 0
        self.coalesced_away = 0
        self.dropped = 0  # refused while full (keep_backlog); otherwise the cleared mailbox

    def _offer(self, event: T) -> None:
        if self._accept is not None and not self._accept(event):
            return
        key_fn = self._key_fn
        if key_fn is not None:
            key = key_fn(event)
            if key in self._coalesced:
                self.coalesced_away += 1
                # Re-insert so the newest event moves to the end: mailbox order is arrival order.
                del self._coalesced[key]
            self._coalesced[key] = event
        elif self._lagged:
            # everything up to the resync is superseded by the snapshot it will take
            self.dropped += 1
        elif len(self._queue) >= self.topic.maxsize:
            log.warning("subscriber %s lagged on %s; it must resync", self.name, self.topic)
            self._lagged = True
            self.dropped += 1
            if not self._keep_backlog:
                self.dropped += len(self._queue)
                self._queue.clear()
            lagged = self._bus.lagged
            lagged[self.name] = lagged.get(self.name, 0) + 1
        else:
            self._queue.append(event)
        self._ready.set()

    def _offer_many(self, events: list[T]) -> None:
        """``_offer`` for a whole published batch: one call per subscriber, not per event.

        At 50,000 ticks/s with five tick subscribers the per-event call was a quarter of a
        million Python calls a second; a lossless mailbox now takes a batch in one ``extend``.
        """
        if self._accept is not None:
            events = [e for e in events if self._accept(e)]
            if not events:
                return
        key_fn = self._key_fn
        if key_fn is not None:
            coalesced = self._coalesced
            away = 0
            for event in events:
                key = key_fn(event)
                if key in coalesced:
                    away += 1
                    del coalesced[key]  # the newest moves to the end, as in _offer
                coalesced[key] = event
            self.coalesced_away += away
            self._ready.set()
            return
        if self._lagged:
            self.dropped += len(events)
            self._ready.set()
            return
        room = self.topic.maxsize - len(self._queue)
        if len(events) <= room:
            self._queue.extend(events)
            self._ready.set()
            return
        self._queue.extend(events[:room])
        self._offer(events[room])  # the one that does not fit marks the lag
        # the rest are superseded by the resync (or refused, keep_backlog), as in _offer
        self.dropped += len(events) - room - 1

    @property
    def lagging(self) -> bool:
        """Overrun, and not yet told so (its next read raises ``SubscriberLagged``)."""
        return self._lagged

    def pending(self) -> int:
        return len(self._coalesced) + len(self._queue)

    def drain(self) -> list[T]:
        """Return everything waiting now without waiting (possibly nothing)."""
        if self._lagged:
            self._lagged = False
            if not self._queue:
                self._ready.clear()  # with keep_backlog, what it kept is still to be read
            raise SubscriberLagged(f"{self.name} fell behind on {self.topic.name}")
        if self._key_fn is not None:
            batch = list(self._coalesced.values())
            self._coalesced.clear()
        else:
            batch = list(self._queue)
            self._queue.clear()
        self._ready.clear()
        self.delivered += len(batch)
        return batch

    async def next_batch(self) -> list[T]:
        """Wait until at least one event is waiting, then return all of them."""
        while True:
            if self.closed:
                raise asyncio.CancelledError(f"subscription {self.name} closed")
            batch = self.drain()
            if batch:
                return batch
            await self._ready.wait()

    async def batches(self) -> AsyncIterator[list[T]]:
        while not self.closed:
            yield await self.next_batch()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._ready.set()
            self._bus._remove(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[Topic[Any], list[Subscription[Any]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published: dict[str, int] = {}
        # Resyncs per subscriber name (service names, a fixed set): exported as a metric.
        self.lagged: dict[str, int] = {}
        self._retained: dict[Topic[Any], dict[Hashable, Any]] = {}

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the loop that owns the bus, for ``publish_threadsafe``."""
        self._loop = loop

    def subscribe(
        self,
        topic: Topic[T],
        name: str,
        *,
        lossless: bool = False,
        accept: Callable[[T], bool] | None = None,
        replay: bool = False,
        keep_backlog: bool = False,
    ) -> Subscription[T]:
        """Return a new mailbox on ``topic``; ``lossless`` turns off coalescing for it.

        ``accept`` keeps only the events a subscriber wants out of its mailbox (the recorder
        takes closed bars only): the live-bar updates it would discard cannot fill its
        bounded mailbox and make it lag. ``replay`` starts the mailbox with what a retaining
        topic holds (``latest``): a window built after a feed connected still shows it.
        ``keep_backlog`` (lossless only): on overflow keep the mailbox, refuse the excess.
        """
        sub = Subscription(
            self, topic, name, lossless=lossless, accept=accept, keep_backlog=keep_backlog
        )
        self._subs.setdefault(topic, []).append(sub)
        if replay:
            held = self.latest(topic)
            if held:
                sub._offer_many(held)
        return sub

    def latest(self, topic: Topic[T]) -> list[T]:
        """The newest event per key of a retaining topic, in the order they were first seen."""
        return list(self._retained.get(topic, {}).values())

    def _remove(self, sub: Subscription[T]) -> None:
        subs = self._subs.get(sub.topic)
        if subs is not None and sub in subs:
            subs.remove(sub)

    def publish(self, topic: Topic[T], event: T) -> None:
        self.published[topic.name] = self.published.get(topic.name, 0) + 1
        if topic.retain:
            self._retain(topic, (event,))
        for sub in self._subs.get(topic, ()):
            sub._offer(event)

    def publish_many(self, topic: Topic[T], events: list[T]) -> None:
        self.published[topic.name] = self.published.get(topic.name, 0) + len(events)
        if topic.retain:
            self._retain(topic, events)
        for sub in self._subs.get(topic, ()):
            sub._offer_many(events)

    def _retain(self, topic: Topic[T], events: Iterable[T]) -> None:
        key = topic.coalesce_key
        assert key is not None, f"{topic!r} retains per key: give it a coalesce_key"
        held = self._retained.setdefault(topic, {})
        for event in events:
            held[key(event)] = event

    def publish_threadsafe(self, topic: Topic[T], event: T) -> None:
        """Publish from a foreign thread (a broker SDK's socket thread)."""
        if self._loop is None:
            raise RuntimeError("EventBus.bind_loop() was not called")
        self._loop.call_soon_threadsafe(self.publish, topic, event)

    def publish_many_threadsafe(self, topic: Topic[T], events: list[T]) -> None:
        """Publish a batch from a foreign thread in one hop to the loop (one decoded frame)."""
        if self._loop is None:
            raise RuntimeError("EventBus.bind_loop() was not called")
        self._loop.call_soon_threadsafe(self.publish_many, topic, events)

    def subscriber_count(self, topic: Topic[T]) -> int:
        return len(self._subs.get(topic, ()))

    def subscribers(self, topic: Topic[T]) -> list[str]:
        """The names of ``topic``'s subscribers (a started service has subscribed)."""
        return [sub.name for sub in self._subs.get(topic, ())]

    def takes_other_than(self, topic: Topic[T], accept: Callable[[T], bool]) -> bool:
        """Whether some subscriber of ``topic`` may take an event that ``accept`` refuses:
        one with no filter, or with a filter other than ``accept`` itself.

        A publisher asks it before building events that only some subscribers want: the
        bar builder freezes its live bars (a record per bar per batch, most of its time at
        50,000 ticks/s) only when someone besides the ``closed_bars`` subscribers is there.
        """
        return any(sub._accept is not accept for sub in self._subs.get(topic, ()))


def _tick_key(tick: Tick) -> str:
    return tick.key


def _bar_key(bar: Bar) -> tuple[str, str, object]:
    return (bar.key, bar.timeframe, bar.start)


def _position_key(position: Position) -> tuple[str, str]:
    return (position.key, position.product)


def closed_bars(bar: Bar) -> bool:
    """The filter of a BARS subscriber that wants closed bars only (the recorder, the signal
    service): the bar builder skips building live-bar updates that only such subscribers
    would see (``EventBus.takes_other_than``)."""
    return bar.closed


def _constant_key(_event: object) -> int:
    return 0


def _connection_key(state: ConnectionState) -> str:
    return state.component


def _greeks_key(greeks: OptionGreeks) -> str:
    return greeks.key


# A lossless tick subscriber (bar builder, paper broker, recorder, alerts, GTTs) may fall a
# few seconds behind a 50,000 ticks/s burst while it waits on a disk write: 200,000 ticks of
# mailbox (references to ticks every view holds anyway) before it must resync.
TICKS: Topic[Tick] = Topic("ticks", coalesce_key=_tick_key, maxsize=200_000)
BARS: Topic[Bar] = Topic("bars", coalesce_key=_bar_key)
ORDERS: Topic[Order] = Topic("orders")
FILLS: Topic[Fill] = Topic("fills")
POSITIONS: Topic[Position] = Topic("positions", coalesce_key=_position_key)
FUNDS: Topic[Funds] = Topic("funds", coalesce_key=_constant_key)
CONNECTION: Topic[ConnectionState] = Topic(
    "connection", coalesce_key=_connection_key, retain=True
)
GREEKS: Topic[OptionGreeks] = Topic("greeks", coalesce_key=_greeks_key)
