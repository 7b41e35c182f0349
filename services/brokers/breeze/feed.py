"""``BreezeFeed``: ICICI's Socket.IO tick stream on the event bus, from the raw lists.

breeze-connect's streaming layer is python-socketio's threaded ``Client`` wrapped in handlers
that turn each payload into a dict with local-time text for ``ltt`` and ``'323.61C'`` for
turnover. We keep the connection with ``socket_session.BreezeSocket`` (the same library's
``AsyncClient`` on the event loop, our own reconnection and staleness watch) on the same URL
(``LIVE_STREAM_URL``) with the same ``join``/``leave`` events and tokens (``4.1!2885`` quotes,
``4.2!2885`` depth); on every connect each key is joined again with its mode, and the payloads
go through ``wire.StreamDecoder`` into exact ``Tick``s. The fake pings every second, so
staleness shows within 3 s there; ICICI's ping interval is not published (python-socketio's
default is 25 s), and against it detection takes that long.

Capacity: at most ``config.MAX_INSTRUMENTS_PER_CONNECTION`` instruments on the one
connection; a subscription past it is refused whole (``CapacityExceeded``) before anything
is sent. ``FULL`` joins two rooms per instrument (quote and depth) and counts once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from services.brokers.breeze.config import LIMITS, NAME, BreezeEndpoints
from services.brokers.breeze.instruments import BreezeContract, Masters
from services.brokers.breeze.socket_session import BreezeSocket
from services.brokers.breeze.wire import StreamDecoder, WireError
from services.brokers.errors import CapacityExceeded, InstrumentUnknown, unsupported_mode
from services.brokers.ports import FeedCapacity, FeedMode, FeedStatus, SessionToken
from services.bus import TICKS, EventBus
from services.clock import Clock

log = logging.getLogger(__name__)

COMPONENT = f"feed:{NAME}"


class BreezeFeed:
    """``MarketDataFeed`` for Breeze. Call ``start``/``subscribe`` on the event loop."""

    component = COMPONENT
    capacity: FeedCapacity = LIMITS.feed or FeedCapacity(per_connection=100)

    def __init__(
        self,
        bus: EventBus,
        masters: Masters,
        token: Callable[[], SessionToken | None],
        *,
        endpoints: BreezeEndpoints | None = None,
        clock: Clock | None = None,
        on_session_expired: Callable[[], None] | None = None,
        stale_after: float = 2.0,
        first_delay: float = 0.1,
        max_delay: float = 3.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self._bus = bus
        self._masters = masters
        self.endpoints = endpoints or BreezeEndpoints()
        self._subs: dict[str, FeedMode] = {}
        self._contracts: dict[str, BreezeContract] = {}
        self._decoder = StreamDecoder({})
        self.malformed = 0
        self.socket = BreezeSocket(
            COMPONENT,
            "Breeze stream",
            lambda: self.endpoints.stream,
            token,
            {"stock": self._on_stock},
            bus=bus,
            clock=clock,
            on_connected=self._join_all,
            on_session_expired=on_session_expired,
            stale_after=stale_after,
            first_delay=first_delay,
            max_delay=max_delay,
            connect_timeout=connect_timeout,
        )

    # -- port -------------------------------------------------------------------------------

    def start(self) -> None:
        self.socket.start()

    def stop(self) -> None:
        self.socket.stop()

    async def stopped(self) -> None:
        """Stop and wait until the socket is closed (tests, shutdown)."""
        await self.socket.stopped()

    def subscribe(self, keys: Iterable[str], mode: FeedMode = FeedMode.QUOTE) -> None:
        if mode is FeedMode.GREEKS:
            raise unsupported_mode("Breeze", mode)
        wanted = list(dict.fromkeys(keys))
        after = set(self._subs) | set(wanted)
        limit = self.capacity.limit(mode)
        if len(after) > limit:
            raise CapacityExceeded(
                f"Breeze stream: {len(self._subs)} instruments subscribed, {len(wanted)} more "
                f"asked; one connection carries at most {limit}"
            )
        master = self._masters.current()
        contracts: list[BreezeContract] = []
        for key in wanted:
            contract = master.contract(key) if master is not None else None
            if contract is None:
                raise InstrumentUnknown(
                    f"{key} is not in today's ICICI security master"
                    if master is not None
                    else f"{key}: the ICICI security master is not loaded yet"
                )
            contracts.append(contract)
        joins: list[str] = []
        leaves: list[str] = []
        for contract in contracts:
            before = self._subs.get(contract.key)
            self._subs[contract.key] = mode
            self._contracts[contract.key] = contract
            if before is None:
                joins.append(contract.stream_token)
            if mode is FeedMode.FULL and before is not FeedMode.FULL:
                joins.append(contract.depth_token)
            if before is FeedMode.FULL and mode is not FeedMode.FULL:
                leaves.append(contract.depth_token)
        self._rebuild_decoder()
        self._send("join", joins)
        self._send("leave", leaves)

    def unsubscribe(self, keys: Iterable[str]) -> None:
        leaves: list[str] = []
        for key in keys:
            mode = self._subs.pop(key, None)
            contract = self._contracts.pop(key, None)
            if mode is None or contract is None:
                continue
            leaves.append(contract.stream_token)
            if mode is FeedMode.FULL:
                leaves.append(contract.depth_token)
        self._rebuild_decoder()
        self._send("leave", leaves)

    def subscriptions(self) -> dict[str, FeedMode]:
        return dict(self._subs)

    def status(self) -> FeedStatus:
        socket = self.socket
        last = socket.last_message
        return FeedStatus(
            connected=socket.connected,
            subscribed=len(self._subs),
            connects=socket.connects,
            silent_for=None if last is None else time.monotonic() - last,
            stale=socket.stale,
            detail=socket.detail,
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _tokens(self) -> list[str]:
        tokens: list[str] = []
        for key, mode in self._subs.items():
            contract = self._contracts[key]
            tokens.append(contract.stream_token)
            if mode is FeedMode.FULL:
                tokens.append(contract.depth_token)
        return tokens

    def _rebuild_decoder(self) -> None:
        keys: dict[str, str] = {}
        for key, contract in self._contracts.items():
            keys[contract.stream_token] = key
            keys[contract.depth_token] = key
        self._decoder.set_keys(keys)

    def _send(self, event: str, tokens: list[str]) -> None:
        client = self.socket.client
        if not tokens or client is None or not self.socket.connected:
            return  # joined on (re)connect
        asyncio.get_running_loop().create_task(self._emit(client, event, tokens))

    async def _join_all(self, client: Any) -> None:
        tokens = self._tokens()
        if tokens:
            await self._emit(client, "join", tokens)

    async def _emit(self, client: Any, event: str, tokens: list[str]) -> None:
        try:
            await client.emit(event, tokens)
        except Exception as exc:  # a drop between the check and the send: the reconnect joins
            log.info("Breeze stream %s not sent (%s); it is sent again on reconnect", event, exc)

    def _on_stock(self, payload: Any) -> None:
        self.socket.touch()
        try:
            tick = self._decoder.decode(payload)
        except WireError as exc:
            self.malformed += 1
            log.warning("Breeze stream: %s", exc)
            return
        if tick is not None:
            self._bus.publish(TICKS, tick)

