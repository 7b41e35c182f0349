"""The paper venue in the broker registry: execution only, against the visible book."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Any

from services.brokers.registry import BrokerContext, BrokerParts
from services.paper.broker import PAPER_LIMITS as LIMITS
from services.paper.broker import PaperBroker

NAME = "paper"
TITLE = "Paper trading"

__all__ = ["LIMITS", "NAME", "TITLE", "build"]


def build(context: BrokerContext) -> BrokerParts:
    """``settings``: ``opening_balance``, ``tariff`` (whose charges), ``square_off_at``
    (a ``time`` or ``None``); ``options`` go to ``PaperBroker`` as they are."""
    if context.instruments is None:
        raise ValueError("the paper venue needs the instrument universe it fills against")
    settings = context.settings
    extra: dict[str, Any] = {}
    if "tariff" in settings:
        extra["tariff"] = str(settings["tariff"])
    if "square_off_at" in settings:
        at = settings["square_off_at"]
        extra["square_off_at"] = at if isinstance(at, time) or at is None else None
    broker = PaperBroker(
        context.instruments,
        context.bus,
        context.clock,
        opening_balance=Decimal(str(settings.get("opening_balance", "1000000"))),
        **extra,
        **context.options,
    )
    return BrokerParts(NAME, execution=broker)
