"""``BreezeFeed``: ICICI's Socket.IO tick stream on the event bus, from the raw lists.

breeze-connect's streaming layer is python-socketio's threaded ``Client`` wrapped in handlers
that turn each payload into a dict with local-time text for ``ltt`` and ``'323.61C'`` for
turnover, and it re-registers those handlers on every reconnect. We use the same library's
``AsyncClient`` directly, on the event loop: the same URL (``LIVE_STREAM_URL``), the same
``auth={"user", "token"}`` (the session key from the SDK's login), the same ``join``/``leave``
events and tokens (``4.1!2885`` quotes, ``4.2!2885`` depth); the payloads go through
``wire.StreamDecoder`` into exact ``Tick``s.

Reconnection is ours (python-socketio's own is off): after a drop, the first attempt comes
after 0.1-0.2 s, then backing off with jitter up to ``max_delay``; on connect every key is
joined again with its mode. A stream that says nothing, Engine.IO pings included, for
``stale_after`` seconds (2 s, but never less than 1.5 of the server's ping intervals, so a
quiet healthy stream is not cut between pings) is reported DISCONNECTED and reconnected.
The fake pings every second, so staleness shows within 3 s there; ICICI's ping interval is
not published (python-socketio's default is 25 s), and against it detection takes that
long. A refused connect (the session key is gone) calls ``on_session_expired`` and waits for
a new session instead of retrying forever.

Capacity: at most ``config.MAX_INSTRUMENTS_PER_CONNECTION`` instruments on the one
connection; a subscription past it is refused whole (``CapacityExceeded``) before anything
is sent. ``FULL`` joins two rooms per instrument (quote and depth) and counts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from services.brokers.breeze.config import LIMITS, NAME, BreezeEndpoints
from services.brokers.breeze.instruments import BreezeContract, Masters
from services.brokers.breeze.wire import StreamDecoder, WireError
from services.brokers.errors import CapacityExceeded, InstrumentUnknown, unsupported_mode
from services.brokers.ports import FeedCapacity, FeedMode, FeedStatus, SessionToken
from services.bus import CONNECTION, TICKS, EventBus
from services.clock import Clock, SystemClock
from services.domain import ConnectionState, ConnectionStatus

log = logging.getLogger(__name__)

COMPONENT = f"feed:{NAME}"
USER_AGENT = "python-socketio[client]/socket"  # what the SDK sends
_REFUSED = "One or more namespaces failed to connect"


def _client_class() -> Any:
    """python-socketio's AsyncClient whose Engine.IO layer reports every packet (pings too),
    so that a quiet but healthy stream is not taken for a dead one."""
    import engineio  # type: ignore[import-untyped]
    import socketio  # type: ignore[import-untyped]

    class PacketClock(engineio.AsyncClient):  # type: ignore[misc]
        on_packet: Callable[[], None] | None = None

        async def _receive_packet(self, pkt: Any) -> None:
            if self.on_packet is not None:
                self.on_packet()
            await super()._receive_packet(pkt)

    class Client(socketio.AsyncClient):  # type: ignore[misc]
        def _engineio_client_class(self) -> Any:
            return PacketClock

    return Client


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
        self._token = token
        self.endpoints = endpoints or BreezeEndpoints()
        self._clock = clock or SystemClock()
        self._on_session_expired = on_session_expired
        self.stale_after = stale_after
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.connect_timeout = connect_timeout
        self._subs: dict[str, FeedMode] = {}
        self._contracts: dict[str, BreezeContract] = {}
        self._decoder = StreamDecoder({})
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._stale = False
        self._last_message: float | None = None
        self._connects = 0
        self._detail = ""
        self._refused_token: str | None = None
        self.malformed = 0

    # -- port -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=COMPONENT)

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        client = self._client
        if client is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(self._close(client))

    async def stopped(self) -> None:
        """Stop and wait until the socket is closed (tests, shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._close(self._client)

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
        silent = None if self._last_message is None else time.monotonic() - self._last_message
        return FeedStatus(
            connected=self._connected,
            subscribed=len(self._subs),
            connects=self._connects,
            silent_for=silent,
            stale=self._stale,
            detail=self._detail,
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
        client = self._client
        if not tokens or client is None or not self._connected:
            return  # joined on (re)connect
        asyncio.get_running_loop().create_task(self._emit(client, event, tokens))

    async def _emit(self, client: Any, event: str, tokens: list[str]) -> None:
        try:
            await client.emit(event, tokens)
        except Exception as exc:  # a drop between the check and the send: the reconnect joins
            log.info("Breeze stream %s not sent (%s); it is sent again on reconnect", event, exc)

    def _state(self, status: ConnectionStatus, detail: str = "") -> None:
        self._detail = detail
        self._bus.publish(
            CONNECTION, ConnectionState(COMPONENT, status, detail, ts=self._clock.now())
        )

    def _touch(self) -> None:
        self._last_message = time.monotonic()

    def _on_stock(self, payload: Any) -> None:
        self._last_message = time.monotonic()
        try:
            tick = self._decoder.decode(payload)
        except WireError as exc:
            self.malformed += 1
            log.warning("Breeze stream: %s", exc)
            return
        if tick is not None:
            self._bus.publish(TICKS, tick)

    async def _close(self, client: Any) -> None:
        with contextlib.suppress(Exception):
            await client.disconnect()
        if self._client is client:
            self._client = None

    def _delay(self, attempt: int) -> float:
        base = min(self.max_delay, self.first_delay * (2.0**attempt))
        return base * (1 + random.random())  # jitter: up to twice the base  # noqa: S311

    async def _run(self) -> None:
        attempt = 0
        try:
            while True:
                token = self._token()
                if token is None or token.access_token == self._refused_token:
                    self._connected = False
                    self._state(ConnectionStatus.DISCONNECTED, "no Breeze session: log in")
                    await self._wait_for_new_token()
                    continue
                gone = await self._session(token)
                if gone == "refused":
                    self._refused_token = token.access_token
                    if self._on_session_expired is not None:
                        self._on_session_expired()
                    continue
                attempt = 0 if gone == "dropped" else attempt + 1
                await asyncio.sleep(self._delay(attempt))
        except asyncio.CancelledError:
            self._connected = False
            raise

    async def _wait_for_new_token(self) -> None:
        """The token comes from a callable (the app's session store): poll it."""
        while True:
            token = self._token()
            if token is not None and token.access_token != self._refused_token:
                return
            await asyncio.sleep(0.5)

    async def _session(self, token: SessionToken) -> str:
        """One connection: returns how it ended (``refused``, ``failed``, ``dropped``)."""
        client = _client_class()(reconnection=False, logger=False, engineio_logger=False)
        client.eio.on_packet = self._touch
        ended = asyncio.Event()
        client.on("stock", self._on_stock)
        client.on("disconnect", lambda *args: ended.set())
        self._state(ConnectionStatus.CONNECTING)
        try:
            await client.connect(
                self.endpoints.stream,
                headers={"User-Agent": USER_AGENT},
                auth={"user": token.extra.get("user_id", ""), "token": token.access_token},
                transports=["websocket"],
                wait_timeout=self.connect_timeout,
            )
        except Exception as exc:
            await self._close(client)
            if _REFUSED in str(exc):
                self._state(ConnectionStatus.DISCONNECTED, "Breeze refused the session key")
                return "refused"
            self._state(ConnectionStatus.DISCONNECTED, f"cannot reach Breeze ({exc})")
            return "failed"
        self._client = client
        self._connected = True
        self._stale = False
        self._connects += 1
        self._touch()
        # Heartbeats count as messages, so a healthy but quiet stream must not be called stale
        # between two of the server's pings: never less than 1.5 ping intervals.
        ping = float(getattr(client.eio, "ping_interval", 0) or 0)
        stale_after = max(self.stale_after, ping * 1.5)
        tokens = self._tokens()
        if tokens:
            await self._emit(client, "join", tokens)
        self._state(ConnectionStatus.CONNECTED)
        try:
            while not ended.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), timeout=0.25)
                last = self._last_message
                if last is not None and time.monotonic() - last > stale_after:
                    self._stale = True
                    self._connected = False
                    self._state(
                        ConnectionStatus.DISCONNECTED,
                        f"Breeze stream silent for {stale_after:g} s: reconnecting",
                    )
                    await self._close(client)
                    return "dropped"
        finally:
            self._connected = False
        await self._close(client)
        self._state(ConnectionStatus.DISCONNECTED, "Breeze stream dropped: reconnecting")
        return "dropped"
