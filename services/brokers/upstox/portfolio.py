"""``UpstoxOrderStream``: order updates from Upstox's portfolio stream onto ``ORDERS``.

Upstox pushes one JSON text message per order transition on a WebSocket whose URL, like the
market feed's, comes single-use from an authorize call (``get_portfolio_stream_feed_authorize``,
orders only). An update missed while the socket was down is not replayed, so after every
(re)connection the order book is read and every order whose state differs from what was
last published is published again: the order manager converges on the broker's truth
whatever was lost. Slices of one order (above the freeze quantity) are folded by the
execution client into the one order the terminal knows.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import aiohttp

from services.broker import BrokerError
from services.brokers.upstox.client import UpstoxApi
from services.brokers.upstox.execution import UpstoxExecution
from services.brokers.upstox.feed import ReconnectingSocket
from services.bus import ORDERS, EventBus
from services.domain import Order

log = logging.getLogger(__name__)

Fingerprint = tuple[str, int, int, Decimal | None, Decimal | None]


def _fingerprint(order: Order) -> Fingerprint:
    return (
        order.status.value,
        order.filled_quantity,
        order.quantity,
        order.request.price,
        order.request.trigger_price,
    )


class UpstoxOrderStream(ReconnectingSocket):
    component = "orders:upstox"

    def __init__(
        self, api: UpstoxApi, bus: EventBus, execution: UpstoxExecution, **kwargs: Any
    ) -> None:
        super().__init__(api, bus, **kwargs)
        self.execution = execution
        self._known: dict[str, Fingerprint] = {}
        self.updates = 0
        self.reconciled = 0

    def _publish(self, order: Order) -> bool:
        fingerprint = _fingerprint(order)
        if self._known.get(order.order_id) == fingerprint:
            return False
        self._known[order.order_id] = fingerprint
        self.bus.publish(ORDERS, order)
        return True

    async def authorize(self) -> str:
        response = await self.api.call(
            "authorize the order stream",
            self.api.websocket.get_portfolio_stream_feed_authorize,
            self.api.api_version,
            order_update=True,
            position_update=False,
            holding_update=False,
        )
        url = response.data.authorized_redirect_uri if response.data else None
        if not url:
            raise BrokerError("authorize the order stream: Upstox sent no stream address")
        return str(url)

    async def on_connected(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            orders = await self.execution.orders()
        except BrokerError as exc:
            log.warning("order book after reconnect could not be read: %s", exc)
            return
        for order in orders:
            if self._publish(order):
                self.reconciled += 1

    def on_frame(self, msg: aiohttp.WSMessage) -> None:
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return
        try:
            record = json.loads(msg.data)
        except ValueError:
            log.warning("unreadable Upstox portfolio message (%d chars)", len(msg.data))
            return
        if not isinstance(record, dict) or record.get("update_type", "order") != "order":
            return
        order = self.execution.order_from_update(record)
        if order is not None and self._publish(order):
            self.updates += 1
