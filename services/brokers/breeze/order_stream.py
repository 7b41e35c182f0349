"""``BreezeOrderStream``: ICICI's order notifications onto ``ORDERS``, reconciled on connect.

breeze-connect's ``ws_connect`` + ``subscribe_feeds(get_order_notification=True)`` opens a
second Socket.IO connection, to ``LIVE_FEEDS_URL``, with the same ``auth={"user", "token"}``
as the tick stream, and listens for the event ``order``: one positional list per order
transition (``parse_data``'s layout; ``wire.order_notice`` reads the order reference, the
exchange and the status letter). The SDK runs it on python-socketio's threaded client and
re-registers handlers on reconnect; as for ticks (``feed.py``), we use the same library's
``AsyncClient`` on the event loop: no thread to outlive ``stop``.

A notification names the order; the order itself is read back through the execution client
(``get_order_detail`` on the exchange the notification named: one call, counted against the
day's 5,000) and published exactly as every other read is. Notifications for one order that
arrive while it is being read are folded into one more read. After every (re)connection the
order lists are read once (one call per exchange), so a transition missed while the socket
was down still reaches the order manager. A socket silent (Engine.IO pings included) for
``stale_after`` seconds, never less than 1.5 ping intervals, is dropped and redialled; a
refused connect (the session key is gone) calls ``on_session_expired`` and waits for a new
session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.broker import BrokerError
from services.brokers.breeze.config import NAME, BreezeEndpoints
from services.brokers.breeze.feed import _REFUSED, USER_AGENT, _client_class
from services.brokers.breeze.wire import WireError, order_notice
from services.brokers.ports import SessionToken
from services.bus import CONNECTION, EventBus
from services.clock import Clock, SystemClock
from services.domain import ConnectionState, ConnectionStatus

if TYPE_CHECKING:
    from services.brokers.breeze.execution import BreezeExecution

log = logging.getLogger(__name__)

COMPONENT = f"orders:{NAME}"


class BreezeOrderStream:
    """Order notifications for one Breeze session. ``start``/``stop`` on the event loop."""

    component = COMPONENT

    def __init__(
        self,
        execution: BreezeExecution,
        token: Callable[[], SessionToken | None],
        *,
        bus: EventBus | None = None,
        endpoints: BreezeEndpoints | None = None,
        clock: Clock | None = None,
        on_session_expired: Callable[[], None] | None = None,
        stale_after: float = 2.0,
        first_delay: float = 0.1,
        max_delay: float = 3.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.execution = execution
        self._token = token
        self._bus = bus
        self.endpoints = endpoints or execution.endpoints
        self._clock = clock or SystemClock()
        self._on_session_expired = on_session_expired
        self.stale_after = stale_after
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.connect_timeout = connect_timeout
        self._task: asyncio.Task[None] | None = None
        self._reads: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._last: float | None = None
        self._refused_token: str | None = None
        self.connected = False
        self.connects = 0
        self.notices = 0
        self.reads = 0
        self.reconciled = 0  # orders republished by the list reads after connecting
        self.reconciles = 0  # list reads after connecting that completed
        self.refusals = 0
        self.malformed = 0
        self.detail = ""

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=COMPONENT)

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        for read in list(self._reads.values()):
            read.cancel()

    async def stopped(self) -> None:
        """``stop`` and wait until the socket is closed and no read is left (shutdown)."""
        task = self._task
        reads = list(self._reads.values())
        self.stop()
        for pending in [t for t in (task, *reads) if t is not None]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- plumbing -----------------------------------------------------------------------

    def _state(self, status: ConnectionStatus, detail: str = "") -> None:
        self.detail = detail
        if self._bus is not None:
            self._bus.publish(
                CONNECTION, ConnectionState(COMPONENT, status, detail, ts=self._clock.now())
            )

    def _touch(self) -> None:
        self._last = time.monotonic()

    def _delay(self, attempt: int) -> float:
        base = min(self.max_delay, self.first_delay * (2.0**attempt))
        return base * (1 + random.random())  # noqa: S311 (jitter, not a secret)

    async def _run(self) -> None:
        attempt = 0
        try:
            while True:
                token = self._token()
                if token is None or token.access_token == self._refused_token:
                    self.connected = False
                    self._state(ConnectionStatus.DISCONNECTED, "no Breeze session: log in")
                    await self._wait_for_new_token()
                    continue
                ended = await self._session(token)
                if ended == "refused":
                    self.refusals += 1
                    self._refused_token = token.access_token
                    if self._on_session_expired is not None:
                        self._on_session_expired()
                    continue
                attempt = 0 if ended == "dropped" else attempt + 1
                await asyncio.sleep(self._delay(attempt))
        finally:
            self.connected = False

    async def _wait_for_new_token(self) -> None:
        while True:
            token = self._token()
            if token is not None and token.access_token != self._refused_token:
                return
            await asyncio.sleep(0.5)

    async def _session(self, token: SessionToken) -> str:
        """One connection: how it ended (``refused``, ``failed``, ``dropped``)."""
        client = _client_class()(reconnection=False, logger=False, engineio_logger=False)
        client.eio.on_packet = self._touch
        ended = asyncio.Event()
        client.on("order", self._on_order)
        client.on("disconnect", lambda *args: ended.set())
        self._state(ConnectionStatus.CONNECTING)
        try:
            await client.connect(
                self.endpoints.order_feed,
                headers={"User-Agent": USER_AGENT},
                auth={"user": token.extra.get("user_id", ""), "token": token.access_token},
                transports=["websocket"],
                wait_timeout=self.connect_timeout,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            if _REFUSED in str(exc):
                self._state(ConnectionStatus.DISCONNECTED, "Breeze refused the session key")
                return "refused"
            self._state(ConnectionStatus.DISCONNECTED, f"cannot reach Breeze ({exc})")
            return "failed"
        self.connected = True
        self.connects += 1
        self._touch()
        ping = float(getattr(client.eio, "ping_interval", 0) or 0)
        stale_after = max(self.stale_after, ping * 1.5)
        self._state(ConnectionStatus.CONNECTED, f"connected (#{self.connects})")
        reconcile = asyncio.get_running_loop().create_task(self._reconcile())
        try:
            while not ended.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), timeout=0.25)
                last = self._last
                if last is not None and time.monotonic() - last > stale_after:
                    self._state(
                        ConnectionStatus.DISCONNECTED,
                        f"Breeze order notifications silent for {stale_after:g} s: reconnecting",
                    )
                    return "dropped"
            self._state(ConnectionStatus.DISCONNECTED, "Breeze order notifications dropped")
            return "dropped"
        finally:
            self.connected = False
            reconcile.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reconcile
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def _reconcile(self) -> None:
        """Every order as the lists have it now: what the socket missed while down arrives."""
        try:
            orders = await self.execution.orders()  # publishes each one
        except BrokerError as exc:
            log.warning("Breeze order lists after (re)connecting could not be read: %s", exc)
            return
        self.reconciled += len(orders)
        self.reconciles += 1

    def _on_order(self, payload: Any) -> None:
        self._touch()
        try:
            notice = order_notice(payload)
        except WireError as exc:
            self.malformed += 1
            log.warning("Breeze order notification: %s", exc)
            return
        if notice is None:
            return
        self.notices += 1
        order_id = notice.order_id
        if order_id in self._reads:
            self._again.add(order_id)  # read once more when the current read is done
            return
        self._reads[order_id] = asyncio.get_running_loop().create_task(
            self._read(order_id, notice.exchange)
        )

    async def _read(self, order_id: str, exchange: str) -> None:
        try:
            while True:
                self._again.discard(order_id)
                try:
                    await self.execution.order_notified(order_id, exchange)
                    self.reads += 1
                except BrokerError as exc:
                    log.warning("Breeze order %s not read after its notice: %s", order_id, exc)
                if order_id not in self._again:
                    return
        finally:
            self._reads.pop(order_id, None)


__all__ = ["COMPONENT", "BreezeOrderStream"]
