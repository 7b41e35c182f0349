"""``AngelOrderStream``: Angel One's order-update socket onto ``ORDERS``, reconciled on connect.

The wire is smartapi-python's ``SmartWebSocketOrderUpdate``: a WebSocket to
``wss://tns.angelone.in/smart-order-update`` opened with the same four headers as the market
feed (``Authorization`` with the session's JWT, ``x-api-key``, ``x-client-code``,
``x-feed-token``), kept alive by the text heartbeat ``ping`` (answered ``pong``), and carrying
one JSON text message per order transition::

    {"user-id": "A1234567", "status-code": "200", "order-status": "AB01",
     "error-message": "", "orderData": {<the order book's record for that order>}}

The first message after connecting is ``AB00`` with an empty ``orderData``. ``orderData`` is
the order book's own record shape, so it goes through the execution client's mapping and is
published exactly as a book read is (fills also refresh trades and positions).

The SDK's class is not used to run the socket: its constructor creates ``logs/<date>/`` in
the working directory and points logzero's global log file there, logging every order
message it receives; its reconnect sleeps 10 s inside a callback and recurses, twice, then
gives up. So, as for Upstox, the socket is an aiohttp client on the event loop (no thread to
outlive ``stop``) speaking the SDK's wire: reconnect with jittered backoff, a socket silent
for ``stale_after`` seconds (no pong, no update) is dropped and redialled, and after every
(re)connection the order book is read and every order published again, so a transition
missed while the socket was down still reaches the order manager. A handshake refused
(401/403: the session is gone) calls ``on_session_expired`` once and waits for new tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import aiohttp

from services.broker import BrokerError
from services.brokers.angelone.config import BROKER_ID
from services.bus import CONNECTION, EventBus
from services.clock import IST
from services.domain import ConnectionState, ConnectionStatus
from services.tasks import BackgroundTask

if TYPE_CHECKING:
    from services.brokers.angelone.execution import AngelExecution, AngelTokens

log = logging.getLogger(__name__)

COMPONENT = f"orders:{BROKER_ID}"
HEARTBEAT = "ping"  # SmartWebSocketOrderUpdate.HEARTBEAT_MESSAGE
PING_EVERY = 10.0  # SmartWebSocketOrderUpdate.HEARTBEAT_INTERVAL_SECONDS
STALE_AFTER = 25.0  # the SDK closes after two heartbeat intervals without a pong


class AngelOrderStream:
    """Order updates for one Angel session. ``start``/``stop`` on the event loop."""

    component = COMPONENT

    def __init__(
        self,
        execution: AngelExecution,
        url: str,
        *,
        bus: EventBus | None = None,
        on_session_expired: Callable[[], None] | None = None,
        ping_every: float = PING_EVERY,
        stale_after: float = STALE_AFTER,
        first_delay: float = 0.2,
        max_delay: float = 10.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.execution = execution
        self.url = url
        self._bus = bus
        self._on_session_expired = on_session_expired
        self.ping_every = ping_every
        self.stale_after = stale_after
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.connect_timeout = connect_timeout
        self._task = BackgroundTask(COMPONENT, self._run)
        self._last: float | None = None
        self._refused: AngelTokens | None = None
        self.connected = False
        self.connects = 0
        self.updates = 0
        self.reconciled = 0  # orders republished by the book reads after connecting
        self.reconciles = 0  # book reads after connecting that completed
        self.refusals = 0
        self.detail = ""

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._task.start()

    def stop(self) -> None:
        self._task.stop()

    async def stopped(self) -> None:
        """``stop`` and wait until the socket is closed (shutdown, tests)."""
        await self._task.stopped()

    @property
    def running(self) -> bool:
        return self._task.running

    # -- plumbing -----------------------------------------------------------------------

    def _state(self, status: ConnectionStatus, detail: str = "") -> None:
        self.detail = detail
        if self._bus is not None:
            self._bus.publish(
                CONNECTION, ConnectionState(COMPONENT, status, detail, ts=datetime.now(IST))
            )

    def _headers(self, tokens: AngelTokens) -> dict[str, str]:
        jwt = tokens.jwt if tokens.jwt.startswith("Bearer ") else f"Bearer {tokens.jwt}"
        return {
            "Authorization": jwt,
            "x-api-key": self.execution.api_key,
            "x-client-code": tokens.client_code,
            "x-feed-token": tokens.feed,
        }

    def _delay(self, attempt: int) -> float:
        base = min(self.max_delay, self.first_delay * (2.0**attempt))
        return base * (0.5 + random.random())  # noqa: S311 (jitter, not a secret)

    async def _run(self) -> None:
        attempt = 0
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                while True:
                    tokens = self.execution.tokens
                    if tokens is None or tokens is self._refused:
                        self.connected = False
                        self._state(ConnectionStatus.DISCONNECTED, "no Angel One session: log in")
                        await self._wait_for_tokens()
                        continue
                    self._state(ConnectionStatus.CONNECTING)
                    try:
                        async with http.ws_connect(
                            self.url, headers=self._headers(tokens), autoping=True, heartbeat=None
                        ) as ws:
                            attempt = 0
                            await self._serve(ws)
                        reason = "Angel order updates dropped: reconnecting"
                    except aiohttp.WSServerHandshakeError as exc:
                        if exc.status in (401, 403):
                            self.refusals += 1
                            self._refused = tokens
                            self._state(
                                ConnectionStatus.DISCONNECTED,
                                "Angel One refused the session for order updates: log in",
                            )
                            if self._on_session_expired is not None:
                                self._on_session_expired()
                            continue
                        reason = f"Angel order updates: HTTP {exc.status}"
                    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                        reason = f"cannot reach Angel order updates ({type(exc).__name__})"
                    self.connected = False
                    self._state(ConnectionStatus.DISCONNECTED, reason)
                    await asyncio.sleep(self._delay(attempt))
                    attempt += 1
        finally:
            self.connected = False

    async def _wait_for_tokens(self) -> None:
        """The tokens come from the execution client (a login or renewal sets them): poll."""
        while True:
            tokens = self.execution.tokens
            if tokens is not None and tokens is not self._refused:
                return
            await asyncio.sleep(0.5)

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.connected = True
        self.connects += 1
        self._last = time.monotonic()
        self._state(ConnectionStatus.CONNECTED, f"connected (#{self.connects})")
        pinger = asyncio.get_running_loop().create_task(self._ping(ws))
        reconcile = asyncio.get_running_loop().create_task(self._reconcile())
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=self.stale_after)
                except TimeoutError:
                    self._state(
                        ConnectionStatus.DISCONNECTED,
                        f"Angel order updates silent for {self.stale_after:g} s: reconnecting",
                    )
                    return
                self._last = time.monotonic()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._on_text(str(msg.data))
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    return
        finally:
            self.connected = False
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            await ws.close()
            if not reconcile.done():
                reconcile.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconcile

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.ping_every)
            with contextlib.suppress(Exception):
                await ws.send_str(HEARTBEAT)

    async def _reconcile(self) -> None:
        """Every order as the book has it now: what the socket missed while down arrives."""
        try:
            orders = await self.execution.orders()  # publishes each one
        except BrokerError as exc:
            log.warning("Angel order book after (re)connecting could not be read: %s", exc)
            return
        self.reconciled += len(orders)
        self.reconciles += 1

    def _on_text(self, text: str) -> None:
        if text == "pong":
            return
        try:
            message = json.loads(text)
        except ValueError:
            log.warning("unreadable Angel order update (%d chars)", len(text))
            return
        if not isinstance(message, dict):
            return
        data = message.get("orderData")
        if not isinstance(data, dict) or not data.get("orderid"):
            return  # AB00, the greeting after connecting, carries no order
        if self.execution.order_update(data) is not None:
            self.updates += 1


__all__ = ["COMPONENT", "AngelOrderStream"]
