"""The paper broker: orders filled against the live or simulated book, no account needed."""

from services.paper.broker import DEFAULT_MAX_QUOTE_AGE, PaperBroker
from services.paper.margin import PaperMarginModel, margin_for, position_margin

__all__ = [
    "DEFAULT_MAX_QUOTE_AGE",
    "PaperBroker",
    "PaperMarginModel",
    "margin_for",
    "position_margin",
]
