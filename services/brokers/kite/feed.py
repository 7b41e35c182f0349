"""KiteTicker (the SDK's WebSocket client) feeding the event bus; ``KiteFeed`` is the port.

The SDK runs on Twisted in its own thread; its callbacks run there and hand events to the
loop with ``publish_threadsafe``. We take the raw binary frames (``on_message``) and decode
them with our ``TickDecoder`` instead of letting the SDK build float dicts (``on_ticks`` is
left unset so the SDK does not parse them at all).

Reconnection: the SDK's Twisted factory retries with exponential backoff and jitter; we set
it to start at 0.5 s, cap at 30 s and never give up, and the SDK re-sends every subscription
with its mode after a reconnect. A feed that says nothing (not even the one-byte heartbeat
Kite sends every second) for ``dead_after`` seconds is treated as dead: we drop the socket so
the factory reconnects.

A Twisted reactor cannot be restarted within a process: one ``KiteStream`` per process, and
tests run it in a subprocess.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from services.brokers.errors import CapacityExceeded, unsupported_mode
from services.brokers.kite import mapping
from services.brokers.kite.ticker_decode import MODE_FULL, MODE_LTP, MODE_QUOTE, TickDecoder
from services.brokers.ports import FeedCapacity, FeedMode, FeedStatus, InstrumentMaster
from services.bus import CONNECTION, ORDERS, TICKS, EventBus
from services.clock import IST
from services.domain import ConnectionState, ConnectionStatus

log = logging.getLogger(__name__)

MODES = (MODE_LTP, MODE_QUOTE, MODE_FULL)
INITIAL_DELAY = 0.5
MAX_DELAY = 30.0
COMPONENT = "feed:kite"


class KiteStream:
    """Subscriptions by token and mode; ticks, order updates and connection state to the bus."""

    def __init__(
        self,
        api_key: str,
        access_token: str,
        bus: EventBus,
        keys: Mapping[int, str],
        *,
        root: str | None = None,
        dead_after: float = 3.0,
        on_session_rejected: Callable[[], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        from kiteconnect import KiteTicker  # type: ignore[import-untyped]  # lazy: Twisted

        self._bus = bus
        self._api_key = api_key
        # A frame's ticks cross threads in one hop (publish_many_threadsafe). ``loop`` binds
        # the bus when the caller has not done so yet.
        if loop is not None:
            bus.bind_loop(loop)
        self.decoder = TickDecoder(keys)
        self.dead_after = dead_after
        self._on_session_rejected = on_session_rejected
        self._desired: dict[int, str] = {}
        self._lock = threading.Lock()
        self.last_message = time.monotonic()
        self.connects = 0
        self.decode_errors = 0
        ticker: Any = KiteTicker(
            api_key,
            access_token,
            root=root,
            reconnect=True,
            reconnect_max_delay=int(MAX_DELAY),
            reconnect_max_tries=300,
        )
        self._ticker = ticker
        create = ticker._create_connection

        def create_connection(url: str, **kwargs: Any) -> None:
            create(url, **kwargs)
            factory = ticker.factory
            factory.initialDelay = factory.delay = INITIAL_DELAY
            factory.maxDelay = MAX_DELAY
            factory.factor = 2.0
            factory.jitter = 0.25
            factory.maxRetries = None  # unlimited: a feed must come back during market hours

        ticker._create_connection = create_connection
        ticker.on_message = self._on_message
        ticker.on_connect = self._on_connect
        ticker.on_close = self._on_close
        ticker.on_error = self._on_error
        ticker.on_reconnect = self._on_reconnect
        ticker.on_order_update = self._on_order_update

    # -- public -------------------------------------------------------------------------------

    def start(self) -> None:
        self._state(ConnectionStatus.CONNECTING, "connecting")
        self._ticker.connect(threaded=True)

    def stop(self) -> None:
        self._ticker.close()

    def subscribe(self, tokens: Iterable[int], mode: str = MODE_QUOTE) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown KiteTicker mode {mode!r}")
        tokens = list(tokens)
        with self._lock:
            for token in tokens:
                self._desired[token] = mode
        if self._ticker.is_connected():
            self._call(self._send, {mode: tokens})

    def unsubscribe(self, tokens: Iterable[int]) -> None:
        tokens = list(tokens)
        with self._lock:
            for token in tokens:
                self._desired.pop(token, None)
        if self._ticker.is_connected():
            self._call(self._ticker.unsubscribe, tokens)

    def set_access_token(self, access_token: str) -> None:
        """Use a new day's token: the factory's next (re)connection carries it.

        The reactor cannot be restarted, so the ticker is not rebuilt; the factory keeps
        retrying (a dead token gets 403s) and its URL is swapped under it, then the socket is
        dropped so that a live connection on the old token is replaced at once.
        """
        ticker = self._ticker
        url = f"{ticker.root}?api_key={self._api_key}&access_token={access_token}"
        ticker.socket_url = url
        factory = getattr(ticker, "factory", None)
        if factory is None:
            return

        def swap() -> None:
            factory.setSessionParameters(url=url, headers=factory.headers)
            factory.resetDelay()
            if ticker.is_connected():
                ticker.ws.dropConnection(abort=True)

        self._call(swap)

    @property
    def connected(self) -> bool:
        return bool(self._ticker.is_connected())

    def is_dead(self, now: float | None = None) -> bool:
        return (now or time.monotonic()) - self.last_message > self.dead_after

    def check_alive(self) -> bool:
        """Drop a silent socket so the factory reconnects; call about once a second."""
        if not self.connected or not self.is_dead():
            return True
        log.warning("Kite feed silent for %.1f s: reconnecting", self.dead_after)
        self._state(ConnectionStatus.DISCONNECTED, f"no data for {self.dead_after:g} s")
        ws = self._ticker.ws
        if ws is not None:
            self._call(ws.dropConnection, abort=True)
        return False

    # -- SDK callbacks (Twisted thread) -------------------------------------------------------

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(fn, *args, **kwargs)

    def _send(self, by_mode: Mapping[str, list[int]]) -> None:
        for mode, tokens in by_mode.items():
            if tokens:
                self._ticker.subscribe(tokens)
                self._ticker.set_mode(mode, tokens)

    def _state(self, status: ConnectionStatus, detail: str) -> None:
        state = ConnectionState(COMPONENT, status, detail, ts=datetime.now(IST))
        try:
            self._bus.publish_threadsafe(CONNECTION, state)
        except RuntimeError:
            log.debug("bus not bound to a loop; connection state %s dropped", status)

    def _on_connect(self, ticker: Any, response: Any) -> None:
        self.connects += 1
        self.last_message = time.monotonic()
        # The SDK re-sends what it knows after a reconnect (in on_open); we add what was
        # asked for while the socket was down, and everything on the first connect.
        with self._lock:
            missing: dict[str, list[int]] = {}
            for token, mode in self._desired.items():
                if ticker.subscribed_tokens.get(token) != mode:
                    missing.setdefault(mode, []).append(token)
        self._send(missing)
        self._state(ConnectionStatus.CONNECTED, f"connected (#{self.connects})")

    def _on_message(self, ticker: Any, payload: bytes, is_binary: bool) -> None:
        self.last_message = time.monotonic()
        if not is_binary or len(payload) < 4:
            return
        try:
            ticks = self.decoder.decode(payload)
        except ValueError:
            self.decode_errors += 1
            log.exception("undecodable Kite frame of %d bytes", len(payload))
            return
        if not ticks:
            return
        try:
            self._bus.publish_many_threadsafe(TICKS, ticks)
        except RuntimeError:
            log.debug("bus not bound to a loop; %d ticks dropped", len(ticks))

    def _on_order_update(self, ticker: Any, data: Mapping[str, Any]) -> None:
        try:
            order = mapping.order_from_kite(data)
        except (KeyError, ValueError):
            log.exception("unreadable Kite order update")
            return
        self._bus.publish_threadsafe(ORDERS, order)

    def _on_close(self, ticker: Any, code: Any, reason: Any) -> None:
        self._state(ConnectionStatus.DISCONNECTED, f"closed: {code} {reason}")

    def _on_error(self, ticker: Any, code: Any, reason: Any) -> None:
        text = str(reason)
        if "403" in text and self._on_session_rejected is not None:
            self._on_session_rejected()
        self._state(ConnectionStatus.DISCONNECTED, f"error: {code} {text}")

    def _on_reconnect(self, ticker: Any, attempts: int) -> None:
        self._state(ConnectionStatus.CONNECTING, f"reconnecting (attempt {attempts})")

    def subscriptions(self) -> dict[int, str]:
        with self._lock:
            return dict(self._desired)


class KiteFeed:
    """The ``MarketDataFeed`` port on ``KiteStream``: canonical keys, capacity, stale timer.

    Keys go through the day's ``InstrumentMaster`` to Kite's int tokens. Capacity is one
    connection's (3,000 instruments, ``config.LIMITS.feed``) and is checked before any key is
    looked up. The stream is created on ``start`` (Twisted is imported then). Staleness:
    Kite sends a heartbeat every second, so ``stale_after`` seconds without any message means
    the socket is dead; a timer on the event loop checks four times a second and drops the
    socket, the factory reconnects and the SDK resubscribes.
    """

    component = COMPONENT

    def __init__(
        self,
        api_key: str,
        access_token: str,
        bus: EventBus,
        master: InstrumentMaster,
        *,
        root: str | None = None,
        stale_after: float = 2.0,
        on_session_rejected: Callable[[], None] | None = None,
        capacity: FeedCapacity | None = None,
    ) -> None:
        self.capacity = capacity or FeedCapacity(per_connection=3_000, connections=3)
        self._api_key = api_key
        self._token = access_token
        self._bus = bus
        self._master = master
        self._root = root
        self._stale_after = stale_after
        self._on_session_rejected = on_session_rejected
        self._wanted: dict[str, FeedMode] = {}
        self._stream: KiteStream | None = None
        self._watch: asyncio.Task[None] | None = None

    @property
    def stream(self) -> KiteStream | None:
        return self._stream

    def start(self) -> None:
        if self._stream is not None:
            return
        loop = asyncio.get_running_loop()
        stream = KiteStream(
            self._api_key,
            self._token,
            self._bus,
            self._ids(),
            root=self._root,
            dead_after=self._stale_after,
            on_session_rejected=self._on_session_rejected,
            loop=loop,
        )
        self._stream = stream
        self._send(self._wanted)
        stream.start()
        self._watch = loop.create_task(self._watchdog(), name="dalal:kite-feed-watchdog")

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._stream is not None:
            self._stream.stop()

    def subscribe(self, keys: Iterable[str], mode: FeedMode = FeedMode.QUOTE) -> None:
        if mode is FeedMode.GREEKS:
            raise unsupported_mode("Kite", mode)
        keys = list(dict.fromkeys(keys))
        new = [k for k in keys if k not in self._wanted]
        limit = self.capacity.limit(mode)
        if len(self._wanted) + len(new) > limit:
            raise CapacityExceeded(
                f"cannot stream {len(new)} more instruments: {len(self._wanted)} of the "
                f"{limit:,} a Kite ticker connection carries are in use"
            )
        for key in keys:
            self._master.broker_id(key)  # InstrumentUnknown before anything changes
        for key in keys:
            self._wanted[key] = FeedMode(mode)
        self._send({k: FeedMode(mode) for k in keys})

    def unsubscribe(self, keys: Iterable[str]) -> None:
        gone = [k for k in keys if self._wanted.pop(k, None) is not None]
        if gone and self._stream is not None:
            self._stream.unsubscribe(int(self._master.broker_id(k)) for k in gone)

    def subscriptions(self) -> dict[str, FeedMode]:
        return dict(self._wanted)

    def status(self) -> FeedStatus:
        stream = self._stream
        if stream is None:
            return FeedStatus(False, len(self._wanted), 0, None, False, "not started")
        silent = time.monotonic() - stream.last_message
        return FeedStatus(
            connected=stream.connected,
            subscribed=len(self._wanted),
            connects=stream.connects,
            silent_for=silent,
            stale=stream.connected and stream.is_dead(),
        )

    def use_token(self, access_token: str) -> None:
        self._token = access_token
        if self._stream is not None:
            self._stream.set_access_token(access_token)

    def use_master(self, master: InstrumentMaster) -> None:
        """The morning's new master: new tokens decode, expired ones are dropped."""
        self._master = master
        if self._stream is not None:
            self._stream.decoder.keys = self._ids()

    def _ids(self) -> dict[int, str]:
        return {int(bid): key for bid, key in self._master.keys_by_id().items()}

    def _send(self, wanted: Mapping[str, FeedMode]) -> None:
        stream = self._stream
        if stream is None:
            return
        by_mode: dict[FeedMode, list[int]] = {}
        for key, mode in wanted.items():
            by_mode.setdefault(mode, []).append(int(self._master.broker_id(key)))
        for mode, tokens in by_mode.items():
            stream.subscribe(tokens, mode.value)

    async def _watchdog(self, interval: float = 0.25) -> None:
        while True:
            await asyncio.sleep(interval)
            if self._stream is not None:
                self._stream.check_alive()
