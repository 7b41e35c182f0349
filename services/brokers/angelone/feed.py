"""Angel One market data: SmartWebSocketV2 connections, pooled, feeding the event bus.

The SDK's ``SmartWebSocketV2`` does the handshake (its four auth headers), formats the
subscribe/unsubscribe JSON and runs websocket-client's ``run_forever``. We keep the parts of
it that are protocol and replace the parts that would hurt us:

* Its ``_on_data`` parses each packet into an untyped dict with ~60 struct calls; ours hands
  the raw bytes to ``wire.AngelTickDecoder`` (exact ``Decimal`` rupees, IST times).
* Its reconnect logic sleeps inside a websocket callback (``retry_delay`` default 10 s) and
  its ``_on_close`` has the wrong arity for websocket-client >= 1.0, and its
  ``input_request_dict`` is shared by every instance (a class attribute). Each connection
  here builds a fresh SDK object with ``max_retry_attempt=0``, per-instance state and fixed
  callbacks, and our own thread reconnects with exponential backoff and jitter, then
  resubscribes every token with its mode as soon as the socket is open.
* Liveness: we send Angel's text heartbeat ``ping`` every ``ping_every`` seconds and count
  any message (``pong`` included) as life; a connection silent for ``stale_after`` seconds
  is closed and reconnected.

Capacity: Angel accepts 1,000 token subscriptions per connection (E1002 beyond). The feed
fills a connection up to that, then opens another, up to ``max_connections``; past that,
``subscribe`` refuses with ``CapacityExceeded`` before sending anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from services.brokers.angelone.config import (
    BROKER_ID,
    LIMITS,
    MAX_CONNECTIONS,
    TOKENS_PER_CONNECTION,
    AngelEndpoints,
)
from services.brokers.angelone.execution import AngelTokens
from services.brokers.angelone.instruments import AngelInstruments
from services.brokers.angelone.sdk import load_sdk
from services.brokers.angelone.wire import EXCHANGE_TYPES, AngelTickDecoder, WireDecodeError
from services.brokers.errors import CapacityExceeded, InstrumentUnknown, unsupported_mode
from services.brokers.ports import FeedCapacity, FeedMode, FeedStatus
from services.bus import CONNECTION, TICKS, EventBus
from services.clock import IST
from services.domain import ConnectionState, ConnectionStatus, Tick

log = logging.getLogger(__name__)

COMPONENT = f"feed:{BROKER_ID}"
MODES = {FeedMode.LTP: 1, FeedMode.QUOTE: 2, FeedMode.FULL: 3}
CHECK_EVERY = 0.25  # how often the stale timer looks
JOIN_TIMEOUT = 5.0  # a stopped connection's threads end within this, or are reported
INITIAL_DELAY = 0.2
MAX_DELAY = 10.0

Ident = tuple[int, str]  # (exchange type, token)


def _exchange_type(exch_seg: str) -> int:
    try:
        return EXCHANGE_TYPES[exch_seg]
    except KeyError:
        raise InstrumentUnknown(f"Angel One streams no data for exchange {exch_seg}") from None


_socket_class: Any = None


def socket_class() -> Any:
    """The SDK's SmartWebSocketV2 with its callbacks fixed (built after the lazy import)."""
    global _socket_class
    if _socket_class is not None:
        return _socket_class
    base = load_sdk().SmartWebSocketV2

    class _AngelSocket(base):  # type: ignore[misc, valid-type]
        def __init__(self, owner: _Connection, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.input_request_dict: dict[Any, Any] = {}  # the SDK's is shared by all
            self._owner = owner

        def _on_open(self, wsapp: Any) -> None:
            self._owner.opened(self)

        def _on_data(self, wsapp: Any, data: Any, data_type: int, continue_flag: Any) -> None:
            self._owner.received(data, data_type)

        def _on_error(self, wsapp: Any, error: Any) -> None:
            self._owner.failed(error)

        def _on_close(self, wsapp: Any, *args: Any) -> None:
            self._owner.closed()

    _socket_class = _AngelSocket
    return _socket_class


class _Connection:
    """One SmartWebSocketV2 connection and the thread that keeps it up."""

    def __init__(self, feed: AngelFeed, index: int) -> None:
        self.feed = feed
        self.index = index
        self.wanted: dict[Ident, int] = {}  # ident -> Angel mode
        self.socket: Any = None
        self.connected = False
        self.connects = 0
        self.last_message = 0.0
        self.last_error = ""
        self._thread: threading.Thread | None = None
        self._pinger_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._opened = threading.Event()

    # -- thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"angel-feed-{self.index}", daemon=True
        )
        self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        self._stop.set()
        self._wake.set()
        self._close_socket()
        if wait:
            self.join(JOIN_TIMEOUT)

    def threads(self) -> list[threading.Thread]:
        return [t for t in (self._thread, self._pinger_thread) if t is not None]

    def join(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds in all) for this connection's threads to end."""
        deadline = time.monotonic() + timeout
        for thread in self.threads():
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads())

    def wake(self) -> None:
        """Cut a reconnection backoff short (a new session arrived)."""
        self._wake.set()

    def _run(self) -> None:
        delay = INITIAL_DELAY
        pinger = threading.Thread(target=self._pinger, name=f"angel-ping-{self.index}", daemon=True)
        self._pinger_thread = pinger
        pinger.start()
        while not self._stop.is_set():
            feed = self.feed
            tokens = feed.tokens
            try:
                sock = socket_class()(
                    self,
                    tokens.jwt,
                    feed.api_key,
                    tokens.client_code,
                    tokens.feed,
                    max_retry_attempt=0,
                    retry_delay=0,
                )
                sock.ROOT_URI = feed.endpoints.stream
                self.socket = sock
                self._opened.clear()
                if self._stop.is_set():  # stop() ran before this socket existed
                    break
                sock.connect()  # blocks until the socket closes
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}"
                log.debug("Angel feed connection %d failed: %s", self.index, type(exc).__name__)
            was_connected = self.connected
            self.connected = False
            self.socket = None
            if self._stop.is_set():
                break
            feed._state(
                ConnectionStatus.CONNECTING, f"reconnecting ({self.last_error or 'closed'})"
            )
            if was_connected:
                delay = INITIAL_DELAY
            if feed.session_refused(self.last_error):
                delay = MAX_DELAY
            wait = delay * (1 + random.uniform(-0.25, 0.25))  # noqa: S311 (jitter, not crypto)
            self._wake.wait(wait)
            self._wake.clear()
            delay = min(MAX_DELAY, delay * 2)

    def _pinger(self) -> None:
        """Angel's text heartbeat, and the stale check: a silent socket is closed."""
        feed = self.feed
        last_ping = 0.0
        while not self._stop.wait(min(CHECK_EVERY, feed.ping_every)):
            sock = self.socket
            if sock is None or not self.connected:
                continue
            now = time.monotonic()
            silent = now - self.last_message
            if silent > feed.stale_after:
                log.warning("Angel feed %d silent for %.1f s: reconnecting", self.index, silent)
                self.last_error = f"stale: no data for {silent:.1f} s"
                feed._state(ConnectionStatus.DISCONNECTED, self.last_error)
                self._close_socket()
                continue
            if now - last_ping < feed.ping_every:
                continue
            last_ping = now
            try:
                sock.wsapp.send("ping")
            except Exception:
                log.debug("Angel heartbeat could not be sent", exc_info=True)

    def _close_socket(self) -> None:
        sock = self.socket
        if sock is None:
            return
        try:
            wsapp = sock.wsapp
            if wsapp is not None:
                wsapp.keep_running = False
                raw = getattr(getattr(wsapp, "sock", None), "sock", None)
                if raw is not None:
                    # shutdown (unlike close) wakes run_forever's select at once, from any
                    # thread, whether or not the server would answer a close frame.
                    with contextlib.suppress(OSError):
                        raw.shutdown(socket.SHUT_RDWR)
        except Exception:
            log.debug("closing the Angel socket failed", exc_info=True)

    # -- SDK callbacks (connection thread) -------------------------------------------------

    def opened(self, sock: Any) -> None:
        if self._stop.is_set():  # stopped while this socket was still dialling
            self._close_socket()
            return
        self.connected = True
        self.connects += 1
        self.last_message = time.monotonic()
        self.last_error = ""
        with self.feed._lock:
            by_mode: dict[int, dict[int, list[str]]] = {}
            for (exchange_type, token), mode in self.wanted.items():
                by_mode.setdefault(mode, {}).setdefault(exchange_type, []).append(token)
        for mode, groups in by_mode.items():
            self.send(sock, 1, mode, groups)
        self._opened.set()
        self.feed._state(ConnectionStatus.CONNECTED, f"connected (#{self.connects})")

    def send(self, sock: Any, action: int, mode: int, groups: dict[int, list[str]]) -> None:
        token_list = [{"exchangeType": ex, "tokens": list(tokens)} for ex, tokens in groups.items()]
        try:
            if action == 1:
                sock.subscribe(f"dt{self.index}", mode, token_list)
                sock.input_request_dict = {}  # we resubscribe ourselves; keep no copy
            else:
                sock.unsubscribe(f"dt{self.index}", mode, token_list)
                sock.input_request_dict = {}
        except Exception:
            log.debug("Angel subscription message not sent (socket closing)", exc_info=True)

    def received(self, data: Any, data_type: int) -> None:
        self.last_message = time.monotonic()
        if data_type == 2:
            self.feed.handle_packet(data)
            return
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        if text == "pong":
            return
        try:
            message = json.loads(text)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("errorCode"):
            self.last_error = f"{message.get('errorCode')}: {message.get('errorMessage', '')}"
            log.warning("Angel feed error %s", self.last_error)
            self.feed.errors.append(self.last_error)

    def failed(self, error: Any) -> None:
        self.last_error = f"{type(error).__name__}: {str(error)[:120]}"

    def closed(self) -> None:
        self.connected = False


def _join_all(pool: list[_Connection], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    ended = True
    for conn in pool:  # every connection is joined, even after one that did not end
        ended = conn.join(max(0.0, deadline - time.monotonic())) and ended
    return ended


class AngelFeed:
    """The ``MarketDataFeed`` port on Angel One (``component`` ``"feed:angelone"``).

    ``capacity`` is the whole pool (three sockets of 1,000): the port sees one feed.
    """

    component = COMPONENT

    def __init__(
        self,
        api_key: str,
        tokens: AngelTokens,
        instruments: AngelInstruments,
        bus: EventBus,
        *,
        endpoints: AngelEndpoints | None = None,
        per_connection: int = TOKENS_PER_CONNECTION,
        max_connections: int = MAX_CONNECTIONS,
        stale_after: float = 2.0,
        ping_every: float = 1.0,
        on_session_rejected: Callable[[], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.api_key = api_key
        self.tokens = tokens
        self.instruments = instruments
        self.endpoints = endpoints or AngelEndpoints()
        self.per_connection = per_connection
        self.max_connections = max_connections
        self.capacity = (
            LIMITS.feed
            if LIMITS.feed is not None
            and per_connection * max_connections == LIMITS.feed.per_connection
            else FeedCapacity(per_connection=per_connection * max_connections)
        )
        self.stale_after = stale_after
        self.ping_every = ping_every
        self._bus = bus
        self._loop = loop
        if loop is not None:
            bus.bind_loop(loop)
        self._on_session_rejected = on_session_rejected
        self.decoder = AngelTickDecoder()
        self._lock = threading.RLock()
        self._wanted: dict[str, tuple[Ident, FeedMode]] = {}  # key -> (ident, mode)
        self._where: dict[Ident, _Connection] = {}
        self.pool: list[_Connection] = []
        self._started = False
        self._batch: list[Tick] = []
        self._batch_lock = threading.Lock()  # the hot path: a plain lock, not the RLock
        self._flush_pending = False
        self.decode_errors = 0
        self.errors: list[str] = []

    # -- port -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                raise RuntimeError("AngelFeed.start() needs the event loop (pass loop=)") from None
        with self._lock:
            self._started = True
            pool = list(self.pool)
        self._state(ConnectionStatus.CONNECTING, "connecting")
        for conn in pool:
            conn.start()

    def stop(self) -> None:
        with self._lock:
            self._started = False
            pool = list(self.pool)
        # On the event loop nothing may block: the sockets are shut down (their threads end
        # at once) and not joined here (``stopped`` awaits them); from any other thread,
        # stop() waits for them.
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        for conn in pool:
            conn.stop(wait=not on_loop)
        self._state(ConnectionStatus.DISCONNECTED, "stopped")

    async def stopped(self) -> None:
        """``stop`` and wait, off the loop, until every socket thread has ended (shutdown,
        tests): a thread left running would keep a socket to Angel open and publish into a
        bus nobody reads. One still alive after ``JOIN_TIMEOUT`` seconds is logged, not waited for.
        """
        timeout = JOIN_TIMEOUT
        self.stop()
        with self._lock:
            pool = list(self.pool)
        ended = await asyncio.to_thread(_join_all, pool, timeout)
        if not ended:
            alive = [t.name for c in pool for t in c.threads() if t.is_alive()]
            log.warning("Angel feed threads still running %.0f s after stop: %s", timeout, alive)

    def set_tokens(self, tokens: AngelTokens) -> None:
        """A new session: the next (re)connection of every socket carries it."""
        self.tokens = tokens
        for conn in list(self.pool):
            conn._close_socket()
            conn.wake()

    def _ident(self, key: str) -> Ident:
        exch_seg, token = self.instruments.ident(key)  # InstrumentUnknown names the key
        return _exchange_type(exch_seg), token

    def subscribe(self, keys: Iterable[str], mode: FeedMode = FeedMode.QUOTE) -> None:
        try:
            mode = FeedMode(mode)
        except ValueError:
            raise ValueError(f"unknown feed mode {mode!r} (ltp, quote or full)") from None
        if mode not in MODES:
            raise unsupported_mode("Angel One", mode)
        keys = list(dict.fromkeys(keys))
        limit = self.per_connection * self.max_connections
        with self._lock:
            new_count = sum(1 for k in keys if k not in self._wanted)
            in_use = len(self._wanted)
        if in_use + new_count > limit:  # capacity first, before any lookup or send
            raise CapacityExceeded(
                f"Angel One streams at most {limit} instruments ({self.max_connections} "
                f"connections of {self.per_connection}); {in_use} are subscribed and "
                f"{new_count} more were asked for. Nothing was subscribed."
            )
        idents = {key: self._ident(key) for key in keys}  # InstrumentUnknown before sending
        angel_mode = MODES[mode]
        sends: list[tuple[_Connection, Ident, int | None]] = []
        start: list[_Connection] = []
        with self._lock:
            for key in keys:
                ident = idents[key]
                previous = self._wanted.get(key)
                self.decoder.add({ident: key})
                if previous is not None:
                    conn = self._where[ident]
                    old_mode = conn.wanted[ident]
                    if old_mode == angel_mode:
                        continue
                    conn.wanted[ident] = angel_mode
                    self._wanted[key] = (ident, mode)
                    sends.append((conn, ident, old_mode))
                    continue
                room = next((c for c in self.pool if len(c.wanted) < self.per_connection), None)
                if room is None:
                    room = _Connection(self, len(self.pool))
                    self.pool.append(room)
                    if self._started:
                        start.append(room)
                room.wanted[ident] = angel_mode
                self._where[ident] = room
                self._wanted[key] = (ident, mode)
                sends.append((room, ident, None))
        for conn in start:
            conn.start()
        self._send_changes(sends, angel_mode)

    def _send_changes(self, sends: list[tuple[_Connection, Ident, int | None]], mode: int) -> None:
        by_conn: dict[
            _Connection, tuple[dict[int, dict[int, list[str]]], dict[int, list[str]]]
        ] = {}
        for conn, (exchange_type, token), old in sends:
            drop, add = by_conn.setdefault(conn, ({}, {}))
            if old is not None:
                drop.setdefault(old, {}).setdefault(exchange_type, []).append(token)
            add.setdefault(exchange_type, []).append(token)
        for conn, (drop, add) in by_conn.items():
            sock = conn.socket
            if sock is None or not conn.connected:
                continue  # sent on open
            for old_mode, groups in drop.items():
                conn.send(sock, 0, old_mode, groups)
            conn.send(sock, 1, mode, add)

    def unsubscribe(self, keys: Iterable[str]) -> None:
        sends: list[tuple[_Connection, int, Ident]] = []
        with self._lock:
            for key in keys:
                entry = self._wanted.pop(key, None)
                if entry is None:
                    continue
                ident = entry[0]
                conn = self._where.pop(ident)
                mode = conn.wanted.pop(ident)
                self.decoder.remove([ident])
                sends.append((conn, mode, ident))
        for conn, mode, (exchange_type, token) in sends:
            sock = conn.socket
            if sock is not None and conn.connected:
                conn.send(sock, 0, mode, {exchange_type: [token]})

    def subscriptions(self) -> dict[str, FeedMode]:
        with self._lock:
            return {key: mode for key, (_, mode) in self._wanted.items()}

    @property
    def connected(self) -> bool:
        return bool(self.pool) and all(c.connected for c in self.pool)

    @property
    def connects(self) -> int:
        return sum(c.connects for c in self.pool)

    def status(self) -> FeedStatus:
        now = time.monotonic()
        live = [c for c in self.pool if c.connected]
        silent = max((now - c.last_message for c in live), default=None)
        detail = "; ".join(c.last_error for c in self.pool if c.last_error)
        stale = silent is not None and silent > self.stale_after
        stale = stale or any(c.last_error.startswith("stale") for c in self.pool)
        return FeedStatus(
            connected=self.connected,
            subscribed=len(self._wanted),
            connects=self.connects,
            silent_for=silent,
            stale=stale,
            detail=detail,
        )

    snapshot = status

    def session_refused(self, error: str) -> bool:
        refused = "401" in error or "403" in error
        if refused and self._on_session_rejected is not None:
            try:
                self._on_session_rejected()
            except Exception:
                log.exception("session-rejected callback failed")
        return refused

    # -- ticks ----------------------------------------------------------------------------

    def handle_packet(self, data: bytes) -> None:
        """Decode one binary message and queue its tick for the loop (connection thread)."""
        try:
            tick = self.decoder.decode(data)
        except WireDecodeError:
            self.decode_errors += 1
            log.warning("undecodable Angel packet of %d bytes", len(data))
            return
        if tick is None:
            return
        with self._batch_lock:
            self._batch.append(tick)
            if self._flush_pending:
                return
            self._flush_pending = True
        loop = self._loop
        if loop is None or loop.is_closed():
            self.flush()
            return
        # One hop to the loop per burst, not per packet: ticks that arrive while a flush is
        # queued ride along with it.
        loop.call_soon_threadsafe(self._publish)

    def flush(self) -> list[Tick]:
        with self._batch_lock:
            batch, self._batch = self._batch, []
            self._flush_pending = False
        return batch

    def _publish(self) -> None:
        batch = self.flush()
        if batch:
            self._bus.publish_many(TICKS, batch)

    def _state(self, status: ConnectionStatus, detail: str) -> None:
        state = ConnectionState(COMPONENT, status, detail, ts=datetime.now(IST))
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._bus.publish, CONNECTION, state)
        except RuntimeError:
            log.debug("loop closed; connection state %s dropped", status)
