"""``BreezeOrderStream``: ICICI's order notifications onto ``ORDERS``, reconciled on connect.

breeze-connect's ``ws_connect`` + ``subscribe_feeds(get_order_notification=True)`` opens a
second Socket.IO connection, to ``LIVE_FEEDS_URL``, with the same ``auth={"user", "token"}``
as the tick stream, and listens for the event ``order``: one positional list per order
transition (``parse_data``'s layout; ``wire.order_notice`` reads the order reference, the
exchange and the status letter). The connection is a ``socket_session.BreezeSocket`` like the
tick feed's: reconnection, staleness and a refused session key are handled there.

A notification names the order; the order itself is read back through the execution client
(``get_order_detail`` on the exchange the notification named: one call, counted against the
day's 5,000) and published exactly as every other read is. Notifications for one order that
arrive while it is being read are folded into one more read. After every (re)connection the
order lists are read once (one call per exchange), so a transition missed while the socket
was down still reaches the order manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.broker import BrokerError
from services.brokers.breeze.config import NAME, BreezeEndpoints
from services.brokers.breeze.socket_session import BreezeSocket
from services.brokers.breeze.wire import WireError, order_notice
from services.brokers.ports import SessionToken
from services.bus import EventBus
from services.clock import Clock

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
        self.endpoints = endpoints or execution.endpoints
        self._reads: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self.notices = 0
        self.reads = 0
        self.reconciled = 0  # orders republished by the list reads after connecting
        self.reconciles = 0  # list reads after connecting that completed
        self.malformed = 0
        self.socket = BreezeSocket(
            COMPONENT,
            "Breeze order notifications",
            lambda: self.endpoints.order_feed,
            token,
            {"order": self._on_order},
            bus=bus,
            clock=clock,
            alongside=self._reconcile,
            on_session_expired=on_session_expired,
            stale_after=stale_after,
            first_delay=first_delay,
            max_delay=max_delay,
            connect_timeout=connect_timeout,
        )

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self.socket.start()

    def stop(self) -> None:
        self.socket.stop()
        for read in list(self._reads.values()):
            read.cancel()

    async def stopped(self) -> None:
        """``stop`` and wait until the socket is closed and no read is left (shutdown)."""
        reads = list(self._reads.values())
        await self.socket.stopped()
        self.stop()
        for pending in reads:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending

    @property
    def running(self) -> bool:
        return self.socket.running

    @property
    def connected(self) -> bool:
        return self.socket.connected

    @property
    def connects(self) -> int:
        return self.socket.connects

    @property
    def refusals(self) -> int:
        return self.socket.refusals

    @property
    def detail(self) -> str:
        return self.socket.detail

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
        self.socket.touch()
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
