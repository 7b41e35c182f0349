"""The node's event journal: what ``/v1/stream`` sends, numbered, replayable, and snapshotted.

Every order update, fill, position, funds figure, trading-state change and kill-switch action
becomes one event with the next sequence number. The journal keeps:

* its own view folded from exactly those events, so a snapshot taken at sequence N is the
  state after events 1..N, with nothing missing and nothing counted twice (the order manager's
  view may run ahead of or behind the bus, the journal's cannot);
* the last ``capacity`` events, so a client that reconnects with the last sequence it saw gets
  the events after it and nothing else;
* an ``epoch`` drawn when the process starts: sequence numbers from another process (the node
  restarted) mean nothing here, and such a client gets a fresh snapshot instead.

Clients read through a bounded mailbox; one that falls behind is told so and dropped (it
reconnects and resumes), so a slow desktop never holds up the node.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.bus import FILLS, FUNDS, ORDERS, POSITIONS, EventBus, SubscriberLagged
from services.domain import Fill, Funds, Order, Position
from services.node.wire import (
    STREAM_PROTOCOL,
    encode_fill,
    encode_funds,
    encode_order,
    encode_position,
)

log = logging.getLogger(__name__)

CAPACITY = 8192  # events kept for resuming clients (a few minutes of a busy session)
MAILBOX = 4096  # events a client may have unsent before it is dropped
STATE_POLL_SECONDS = 0.2  # trading-state changes the risk engine makes on its own


class Lagged(Exception):
    """The client's mailbox overflowed; it must reconnect and resume."""


class Closing(Exception):
    """The node is stopping; the client reconnects to the next one and resumes."""


@dataclass(eq=False)
class Client:
    """One connected stream reader: a bounded mailbox of encoded messages."""

    name: str
    maxsize: int = MAILBOX
    queue: deque[str] = field(default_factory=deque)
    lagged: bool = False
    closing: bool = False
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self) -> None:
        self.closing = True
        self._ready.set()

    def offer(self, text: str) -> None:
        if self.lagged:
            return
        if len(self.queue) >= self.maxsize:
            self.lagged = True
            self.queue.clear()
        else:
            self.queue.append(text)
        self._ready.set()

    async def next(self) -> list[str]:
        """Wait for messages; raise ``Lagged`` if the mailbox overflowed."""
        while True:
            if self.closing:
                raise Closing("the node is stopping")
            if self.lagged:
                raise Lagged(f"stream client {self.name} fell more than {self.maxsize} behind")
            if self.queue:
                batch = list(self.queue)
                self.queue.clear()
                self._ready.clear()
                return batch
            await self._ready.wait()


class EventJournal:
    def __init__(
        self,
        bus: EventBus,
        trading_state: Callable[[], dict[str, Any]],
        *,
        capacity: int = CAPACITY,
        now: Callable[[], datetime],
        epoch: str | None = None,
    ) -> None:
        self.epoch = epoch or secrets.token_hex(8)
        self.seq = 0
        self._bus = bus
        self._trading_state = trading_state
        self._now = now
        self._ring: deque[tuple[int, str]] = deque(maxlen=capacity)
        self._clients: set[Client] = set()
        self._orders: dict[str, dict[str, Any]] = {}
        self._fills: dict[str, dict[str, Any]] = {}
        self._positions: dict[tuple[str, str], dict[str, Any]] = {}
        self._funds: dict[str, Any] | None = None
        self._state: dict[str, Any] = trading_state()
        self._last_kill: dict[str, Any] | None = None
        # Subscribed now so that nothing published before run() is missed.
        self._order_sub = bus.subscribe(ORDERS, "stream", lossless=True)
        self._fill_sub = bus.subscribe(FILLS, "stream", lossless=True)
        self._position_sub = bus.subscribe(POSITIONS, "stream")
        self._funds_sub = bus.subscribe(FUNDS, "stream")

    # -- feeding ---------------------------------------------------------------------------
    def seed(
        self,
        orders: Iterable[Order],
        fills: Iterable[Fill],
        positions: Iterable[Position],
        funds: Funds | None,
    ) -> None:
        """Start the view from the order manager's state (after a restart's resync)."""
        for o in orders:
            self._orders[o.order_id] = encode_order(o)
        for f in fills:
            self._fills[f.fill_id] = encode_fill(f)
        for p in positions:
            self._positions[(p.key, p.product.value)] = encode_position(p)
        if funds is not None:
            self._funds = encode_funds(funds)

    def order(self, o: Order) -> None:
        data = encode_order(o)
        self._orders[o.order_id] = data
        self._append("order", data)

    def fill(self, f: Fill) -> None:
        if f.fill_id in self._fills:
            return  # a repeated fill is not news
        data = encode_fill(f)
        self._fills[f.fill_id] = data
        self._append("fill", data)

    def position(self, p: Position) -> None:
        data = encode_position(p)
        self._positions[(p.key, p.product.value)] = data
        self._append("position", data)

    def funds(self, f: Funds) -> None:
        data = encode_funds(f)
        self._funds = data
        self._append("funds", data)

    def check_trading_state(self) -> None:
        state = self._trading_state()
        if state != self._state:
            self._state = state
            self._append("trading_state", state)

    def killswitch(self, actor: str, summary: dict[str, Any]) -> None:
        data = {"actor": actor, **summary}
        self._last_kill = data
        self._append("killswitch", data)
        self.check_trading_state()

    def _append(self, kind: str, data: dict[str, Any]) -> None:
        self.seq += 1
        text = json.dumps({
            "type": "event", "seq": self.seq, "kind": kind,
            "time": self._now().isoformat(), "data": data,
        }, separators=(",", ":"))  # fmt: skip
        self._ring.append((self.seq, text))
        for client in self._clients:
            client.offer(text)

    async def run(self) -> None:
        """Follow the bus and the trading state until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._follow_orders())
            group.create_task(self._follow_fills())
            group.create_task(self._follow_state())

    async def _follow_orders(self) -> None:
        while True:
            try:
                batch = await self._order_sub.next_batch()
            except SubscriberLagged:
                log.warning("stream journal lagged on orders; re-sending the order book")
                for data in list(self._orders.values()):
                    self._append("order", data)
                continue
            for o in batch:
                self.order(o)

    async def _follow_fills(self) -> None:
        while True:
            try:
                batch = await self._fill_sub.next_batch()
            except SubscriberLagged:
                continue  # fills also show in the orders' filled quantities
            for f in batch:
                self.fill(f)

    async def _follow_state(self) -> None:
        """Positions and funds (coalesced: the latest figure is the news) and trading state."""
        while True:
            for p in self._position_sub.drain():
                self.position(p)
            for f in self._funds_sub.drain():
                self.funds(f)
            self.check_trading_state()
            await asyncio.sleep(STATE_POLL_SECONDS)

    def close(self) -> None:
        for sub in (self._order_sub, self._fill_sub, self._position_sub, self._funds_sub):
            sub.close()

    # -- reading ---------------------------------------------------------------------------
    def hello(self) -> str:
        return json.dumps({
            "type": "hello", "protocol": STREAM_PROTOCOL, "epoch": self.epoch, "seq": self.seq,
            "server_time": self._now().isoformat(),
        })  # fmt: skip

    def snapshot(self) -> str:
        """The state after every event so far, as one message carrying the current seq."""
        return json.dumps({
            "type": "snapshot", "epoch": self.epoch, "seq": self.seq,
            "orders": list(self._orders.values()), "fills": list(self._fills.values()),
            "positions": list(self._positions.values()), "funds": self._funds,
            "trading_state": self._state, "last_killswitch": self._last_kill,
        })  # fmt: skip

    def replay(self, epoch: str | None, since: int | None) -> list[str] | None:
        """The events after ``since`` in this epoch, or None when a snapshot is needed."""
        if epoch != self.epoch or since is None or since > self.seq:
            return None
        if since == self.seq:
            return []
        if not self._ring or self._ring[0][0] > since + 1:
            return None  # some events after ``since`` are no longer kept
        return [text for seq, text in self._ring if seq > since]

    def attach(self, name: str, epoch: str | None, since: int | None) -> tuple[Client, list[str]]:
        """Register a client and return what to send it first, with no await in between.

        Nothing can be appended between computing the backlog and registering the mailbox,
        so the client sees every event exactly once.
        """
        client = Client(name)
        backlog = self.replay(epoch, since)
        first = [self.hello(), *(backlog if backlog is not None else [self.snapshot()])]
        self._clients.add(client)
        return client, first

    def close_clients(self) -> None:
        """Tell every reader to end its stream (the node is stopping)."""
        for client in self._clients:
            client.close()

    def detach(self, client: Client) -> None:
        self._clients.discard(client)

    @property
    def clients(self) -> int:
        return len(self._clients)
