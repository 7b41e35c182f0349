"""Trading charges: dated statutory rates, broker tariffs, and the calculator over them.

Charges decide whether an intraday or F&O strategy makes money, so every P&L the terminal
shows (paper positions, funds, the risk panel's daily loss, backtests) is net of them. Rates
are data (``resources/charges/*.json``) with the date they took effect and their source, so a
trade is charged at the rates of its own day and a rate change is a new table, not an edit.
"""

from services.costs.calculator import ChargeBreakdown, OrderCharges, charges_for_order, segment_of
from services.costs.schedule import (
    ChargesUnavailable,
    RateTable,
    Segment,
    Tariff,
    load_schedule,
)

__all__ = [
    "ChargeBreakdown",
    "ChargesUnavailable",
    "OrderCharges",
    "RateTable",
    "Segment",
    "Tariff",
    "charges_for_order",
    "load_schedule",
    "segment_of",
]
