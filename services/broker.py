"""The contract every broker adapter keeps: the paper broker, Zerodha, Upstox, Breeze, Angel.

The order manager only ever talks to this protocol, so risk checks, the audit log and the
blotters behave the same whichever broker is behind it. Adapters push what happens to their
orders onto the event bus (``ORDERS``, ``FILLS``, ``POSITIONS``, ``FUNDS`` topics): the
broker is the source of truth and the snapshot methods exist for reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from services.domain import Fill, Funds, Holding, Order, OrderRequest, OrderType, Position


@dataclass(frozen=True, slots=True)
class OrderChange:
    """A modification: ``None`` keeps the field as it is."""

    quantity: int | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    order_type: OrderType | None = None


class BrokerError(Exception):
    """A broker refused or failed a request; ``str(e)`` is safe to show to the trader."""


class OrderRejected(BrokerError):
    """The order was refused before it reached the market (by us or by the broker)."""

    def __init__(self, message: str, *, rule: str = "broker") -> None:
        super().__init__(message)
        self.rule = rule


class OrderNotFound(BrokerError):
    pass


class Broker(Protocol):
    name: str

    async def place_order(self, request: OrderRequest) -> Order:
        """Send a validated order; return it as acknowledged (PENDING/OPEN/...)."""
        ...

    async def modify_order(self, order_id: str, change: OrderChange) -> Order: ...

    async def cancel_order(self, order_id: str) -> Order: ...

    async def orders(self) -> list[Order]: ...

    async def fills(self) -> list[Fill]: ...

    async def positions(self) -> list[Position]: ...

    async def holdings(self) -> list[Holding]: ...

    async def funds(self) -> Funds: ...
