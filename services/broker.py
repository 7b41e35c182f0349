"""The base of the broker error taxonomy and the order-change value, shared by every broker.

The ports themselves (``ExecutionClient`` and the others) live in ``services.brokers.ports``
and the full taxonomy in ``services.brokers.errors``; these three classes stay here because
the order path, the widgets and the API catch them without needing the broker package.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.domain import OrderType


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
