"""``UpstoxFeed``: Market Data Feed V3 on a WebSocket the adapter owns.

The SDK's ``MarketDataStreamerV3`` dials a hard-coded ``wss://api.upstox.com`` URL on a
websocket-client thread and gives up after five reconnects a second apart, which is the
wrong behaviour for a terminal that runs all day. So we keep the SDK for what it is right
about and own the connection:

* the **authorize** call (``WebsocketApi.get_market_data_feed_authorize_v3``) through the SDK,
  again before **every** connection, because the URL it returns is single-use;
* the **protobuf** schema (the SDK's bundled ``MarketDataFeedV3_pb2``, ``feed_decode``);
* the socket itself is an aiohttp client on the event loop: no thread, no blocking call.

Reconnection: backoff with full jitter (first retry within ``backoff_initial``), every key
resubscribed with its mode as soon as the socket is back. The client pings every
``ping_every`` seconds; a socket with no frame and no pong for ``stale_after`` seconds is
stale and is dropped and redialled. An expired token (03:30 IST) stops the redialling until
``renew`` hands a new one.

Capacity (Upstox's caps, ``config``): two feed connections per user; on one connection at
most 2,000 keys in ltpc and 1,500 in full mode (the terminal's QUOTE and FULL are both
Upstox's ``full``, the only mode with OHLC and volume). A subscription beyond that raises
``CapacityExceeded`` with the numbers, before anything is sent, instead of Upstox dropping
keys silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

import aiohttp

from services.broker import BrokerError
from services.brokers.errors import CapacityExceeded, SessionExpired
from services.brokers.ports import BrokerId, FeedCapacity, FeedMode, FeedStatus
from services.brokers.upstox.client import UpstoxApi
from services.brokers.upstox.config import (
    FEED_CAPACITY,
    FEED_CONNECTIONS,
    FEED_FULL_KEYS,
    FEED_GREEKS_KEYS,
    FEED_LTPC_KEYS,
)
from services.brokers.upstox.feed_decode import FeedDecoder
from services.bus import CONNECTION, GREEKS, TICKS, EventBus
from services.clock import Clock, SystemClock
from services.domain import ConnectionState, ConnectionStatus
from services.tasks import BackgroundTask

log = logging.getLogger(__name__)

WIRE_MODE: dict[FeedMode, str] = {
    FeedMode.LTP: "ltpc",
    FeedMode.QUOTE: "full",
    FeedMode.FULL: "full",
    FeedMode.GREEKS: "option_greeks",
}
WIRE_CAP: dict[str, int] = {
    "ltpc": FEED_LTPC_KEYS,
    "full": FEED_FULL_KEYS,
    "option_greeks": FEED_GREEKS_KEYS,
}


class KeyResolver(Protocol):
    def broker_id(self, key: str) -> BrokerId: ...


class ReconnectingSocket:
    """A WebSocket redialled forever with jittered backoff, stale detection and pings.

    Subclasses say how to get a fresh URL (``authorize``), what to do once connected
    (``on_connected``) and with each frame (``on_frame``).
    """

    component = "socket:upstox"

    def __init__(
        self,
        api: UpstoxApi,
        bus: EventBus,
        *,
        clock: Clock | None = None,
        stale_after: float = 2.0,
        ping_every: float = 0.5,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        session_retry: float = 30.0,
        connect_timeout: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.api = api
        self.bus = bus
        self._clock = clock or SystemClock()
        self.stale_after = stale_after
        self.ping_every = ping_every
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.session_retry = session_retry
        self.connect_timeout = connect_timeout
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not a secret)
        self._task = BackgroundTask(self.component, self._run)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._renewed = asyncio.Event()
        self.connects = 0
        self.authorizations = 0
        self.stale_drops = 0
        self._last_frame: float | None = None
        self._stale = False
        self.detail = ""
        self.session_expired = False

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._task.running:
            return
        self._renewed = asyncio.Event()
        self._task.start()

    def stop(self) -> None:
        self._task.stop()

    async def stopped(self) -> None:
        """``stop`` and wait for the socket to be closed (tests, shutdown)."""
        await self._task.stopped()

    @property
    def running(self) -> bool:
        return self._task.running

    def renew(self, access_token: str) -> None:
        """A new day's token: redial at once if the old one had stopped the socket."""
        self.api.set_access_token(access_token)
        self.session_expired = False
        self._renewed.set()

    def _state(self, status: ConnectionStatus, detail: str = "") -> None:
        self.detail = detail
        self.bus.publish(
            CONNECTION, ConnectionState(self.component, status, detail, self._clock.now())
        )

    # -- hooks ------------------------------------------------------------------------------

    async def authorize(self) -> str:
        raise NotImplementedError

    async def on_connected(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        return None

    def on_frame(self, msg: aiohttp.WSMessage) -> None:
        return None

    # -- the loop ---------------------------------------------------------------------------

    def _delay(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_initial * (2**attempt))
        return self._rng.uniform(0, ceiling)

    async def _run(self) -> None:
        attempt = 0
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                self._state(ConnectionStatus.CONNECTING, "connecting")
                try:
                    url = await self.authorize()
                    self.authorizations += 1
                    async with http.ws_connect(
                        url,
                        autoping=False,
                        max_msg_size=0,
                        headers={"Authorization": f"Bearer {self.api.access_token}"},
                    ) as ws:
                        attempt = 0
                        await self._serve(ws)
                except SessionExpired as exc:
                    self.session_expired = True
                    self._state(ConnectionStatus.DISCONNECTED, str(exc))
                    self._renewed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._renewed.wait(), self.session_retry)
                    continue
                except (aiohttp.ClientError, TimeoutError, OSError, BrokerError) as exc:
                    log.info("%s: connection failed: %s", self.component, _safe(exc))
                    self._state(ConnectionStatus.DISCONNECTED, f"reconnecting: {_safe(exc)}")
                finally:
                    self._ws = None
                delay = self._delay(attempt)
                attempt += 1
                await asyncio.sleep(delay)

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self.connects += 1
        self._stale = False
        self._last_frame = time.monotonic()
        self._state(ConnectionStatus.CONNECTED, "connected")
        await self.on_connected(ws)
        pinger = asyncio.get_running_loop().create_task(self._ping(ws))
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=self.stale_after)
                except TimeoutError:
                    self._stale = True
                    self.stale_drops += 1
                    self._state(
                        ConnectionStatus.DISCONNECTED,
                        f"stale: nothing from Upstox for {self.stale_after:g} s, reconnecting",
                    )
                    return
                kind = msg.type
                if kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                            aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    self._state(ConnectionStatus.DISCONNECTED, "Upstox closed the connection")
                    return
                self._last_frame = time.monotonic()
                if kind is aiohttp.WSMsgType.PING:
                    await ws.pong(msg.data)
                elif kind is not aiohttp.WSMsgType.PONG:
                    self.on_frame(msg)
        finally:
            pinger.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(Exception):
            while not ws.closed:
                await asyncio.sleep(self.ping_every)
                await ws.ping()

    def silent_for(self) -> float | None:
        if self._last_frame is None:
            return None
        return time.monotonic() - self._last_frame

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    def _send_soon(self, payload: bytes) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return  # sent on the next connection by on_connected
        asyncio.get_running_loop().create_task(_send_quietly(ws, payload))


async def _send_quietly(ws: aiohttp.ClientWebSocketResponse, payload: bytes) -> None:
    with contextlib.suppress(Exception):
        await ws.send_bytes(payload)


def _safe(exc: BaseException) -> str:
    """An exception for a log line: its class and message, never a URL's query (the code)."""
    text = str(exc).split("?", 1)[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def request_frame(method: str, keys: list[str], mode: str | None = None) -> bytes:
    """A subscription request as Upstox reads it: JSON in a *binary* frame."""
    data: dict[str, Any] = {"instrumentKeys": keys}
    if mode is not None:
        data["mode"] = mode
    return json.dumps({"guid": uuid.uuid4().hex, "method": method, "data": data}).encode()


class UpstoxFeed(ReconnectingSocket):
    """Ticks for canonical keys on ``TICKS``; state on ``CONNECTION`` as ``feed:upstox``."""

    component = "feed:upstox"
    capacity: FeedCapacity = FEED_CAPACITY
    # Feeds started in this process (Upstox allows two connections per user).
    _open: ClassVar[weakref.WeakSet[UpstoxFeed]] = weakref.WeakSet()

    def __init__(
        self,
        api: UpstoxApi,
        bus: EventBus,
        master: KeyResolver,
        *,
        decoder_clock: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(api, bus, **kwargs)
        self.master = master
        self._subs: dict[str, FeedMode] = {}
        self._ids: dict[str, str] = {}  # canonical key -> Upstox instrument key
        self.decoder = FeedDecoder({}, decoder_clock)
        self.decode_errors = 0

    # -- the port ---------------------------------------------------------------------------

    def start(self) -> None:
        others = [f for f in UpstoxFeed._open if f is not self and f.running]
        if len(others) >= FEED_CONNECTIONS:
            raise CapacityExceeded(
                f"Upstox allows {FEED_CONNECTIONS} market-data connections per user and "
                f"{len(others)} are already open in this terminal; close one first"
            )
        UpstoxFeed._open.add(self)
        super().start()

    def stop(self) -> None:
        UpstoxFeed._open.discard(self)
        super().stop()

    def subscriptions(self) -> dict[str, FeedMode]:
        return dict(self._subs)

    def subscribe(self, keys: Iterable[str], mode: FeedMode = FeedMode.QUOTE) -> None:
        wanted = list(dict.fromkeys(keys))
        after = dict(self._subs)
        after.update(dict.fromkeys(wanted, mode))
        wire = WIRE_MODE[mode]
        in_mode = sum(1 for m in after.values() if WIRE_MODE[m] == wire)
        cap = WIRE_CAP[wire]
        if in_mode > cap:
            before = sum(1 for m in self._subs.values() if WIRE_MODE[m] == wire)
            raise CapacityExceeded(
                f"Upstox's feed carries at most {cap} instruments in {wire} mode "
                f"({mode.value} in the terminal) on one connection; {before} are in use and "
                f"{len(wanted)} more were asked. Unsubscribe some first (nothing was subscribed)"
            )
        ids = {key: str(self.master.broker_id(key)) for key in wanted}  # InstrumentUnknown
        self._subs = after
        self._ids.update(ids)
        for key, upstox_key in ids.items():
            self.decoder.keys[upstox_key] = key
        if wanted:
            self._send_soon(request_frame("sub", [ids[k] for k in wanted], wire))

    def unsubscribe(self, keys: Iterable[str]) -> None:
        gone = [key for key in dict.fromkeys(keys) if key in self._subs]
        for key in gone:
            del self._subs[key]
        ids = [self._ids.pop(key) for key in gone if key in self._ids]
        for upstox_key in ids:
            self.decoder.keys.pop(upstox_key, None)
        if ids:
            self._send_soon(request_frame("unsub", ids))

    def status(self) -> FeedStatus:
        silent = self.silent_for()
        return FeedStatus(
            connected=self.connected,
            subscribed=len(self._subs),
            connects=self.connects,
            silent_for=silent,
            stale=self._stale,
            detail=self.detail,
        )

    @property
    def market_status(self) -> dict[str, str]:
        """Segment -> status from the feed's ``market_info`` frame (``NORMAL_OPEN``...)."""
        return dict(self.decoder.market_status)

    # -- hooks ------------------------------------------------------------------------------

    async def authorize(self) -> str:
        response = await self.api.call(
            "authorize the market feed", self.api.websocket.get_market_data_feed_authorize_v3
        )
        url = response.data.authorized_redirect_uri if response.data else None
        if not url:
            raise BrokerError("authorize the market feed: Upstox sent no feed address")
        return str(url)

    async def on_connected(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        by_mode: dict[str, list[str]] = {}
        for key, mode in self._subs.items():
            by_mode.setdefault(WIRE_MODE[mode], []).append(self._ids[key])
        for wire, ids in by_mode.items():
            await ws.send_bytes(request_frame("sub", ids, wire))

    def on_frame(self, msg: aiohttp.WSMessage) -> None:
        if msg.type is not aiohttp.WSMsgType.BINARY:
            return
        try:
            ticks = self.decoder.decode(msg.data)
        except Exception:
            self.decode_errors += 1
            log.warning("undecodable Upstox feed frame (%d bytes)", len(msg.data))
            return
        if ticks:
            self.bus.publish_many(TICKS, ticks)
        greeks = self.decoder.greeks
        if greeks:
            self.decoder.greeks = []
            self.bus.publish_many(GREEKS, greeks)
