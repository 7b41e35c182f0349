"""What every provider shares: the candle call, conversion to exact domain values."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from services.domain import Bar, Timeframe, round_to_tick
from services.marketdata.coverage import ProviderCoverage
from services.marketdata.errors import GarbageAnswer, NotCovered
from services.marketdata.quotes import Snapshot

TickSize = Callable[[str], Decimal]
DEFAULT_TICK = Decimal("0.01")


def default_tick(key: str) -> Decimal:
    """0.01 sits under every NSE/BSE tick (0.05 and 0.01 alike) and suits FX at 4 places."""
    return Decimal("0.0001") if key.upper().startswith("FX:") else DEFAULT_TICK


class HistorySource(Protocol):
    """A candle provider: closed bars of ``[start, end)``, oldest first, exact prices, IST
    (or the exchange's zone), or a ``ProviderError`` subclass saying why not."""

    name: str
    info: ProviderCoverage

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]: ...

    async def close(self) -> None: ...


class QuoteSource(Protocol):
    """A snapshot-quote provider: the last price and its exchange time, marked delayed when
    it is (``services.marketdata.quotes``), or a ``ProviderError`` subclass saying why not."""

    name: str
    info: ProviderCoverage

    async def quote(self, key: str) -> Snapshot: ...

    async def close(self) -> None: ...


def check_coverage(
    info: ProviderCoverage, key: str, timeframe: Timeframe, start: datetime, end: datetime,
    now: datetime,
) -> None:
    """Refuse, before any request, what the provider's declared coverage does not reach."""
    if end <= start:
        raise NotCovered(info.name, f"empty range {start.isoformat()} to {end.isoformat()}")
    why = info.covers(key, timeframe, start, now)
    if why is not None:
        raise NotCovered(info.name, why)


def price(provider: str, key: str, value: object, tick: Decimal) -> Decimal:
    """A provider's number (float, str or int) to an exact price on ``tick``."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GarbageAnswer(provider, f"{key}: a price is {value} (NaN or infinite)")
        exact = Decimal(repr(value))
    elif isinstance(value, (int, str, Decimal)):
        try:
            exact = Decimal(value)
        except ArithmeticError:
            raise GarbageAnswer(provider, f"{key}: {value!r} is not a price") from None
        if not exact.is_finite():
            raise GarbageAnswer(provider, f"{key}: a price is {value}")
    else:
        raise GarbageAnswer(provider, f"{key}: {value!r} is not a price")
    if exact <= 0:
        raise GarbageAnswer(provider, f"{key}: a price of {exact} is not positive")
    return round_to_tick(exact, tick)


def volume(provider: str, key: str, value: object) -> int:
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise GarbageAnswer(provider, f"{key}: a volume is {value}")
        return int(value)
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise GarbageAnswer(provider, f"{key}: {value!r} is not a volume")
