"""The paper venue in the broker registry: execution only, against the visible book."""

from __future__ import annotations

from decimal import Decimal

from services.brokers.registry import BrokerContext, BrokerParts
from services.paper.broker import PAPER_LIMITS as LIMITS
from services.paper.broker import PaperBroker

NAME = "paper"
TITLE = "Paper trading"

__all__ = ["LIMITS", "NAME", "TITLE", "build"]


def build(context: BrokerContext) -> BrokerParts:
    if context.instruments is None:
        raise ValueError("the paper venue needs the instrument universe it fills against")
    opening = context.settings.get("opening_balance", "1000000")
    broker = PaperBroker(
        context.instruments,
        context.bus,
        context.clock,
        opening_balance=Decimal(str(opening)),
        **context.options,
    )
    return BrokerParts(NAME, execution=broker)
