"""What each data provider really covers, declared up front so the router never guesses.

A provider declares the instruments it serves (exchanges and kinds), the candle intervals
with how far back each goes and how much one request may span, whether its prices are live
or delayed, what authentication it needs and how fast it may be asked (a token bucket, plus
a daily allowance where the provider has one). ``docs/data.md`` renders the same facts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.brokers.ports import Coverage
from services.domain import Timeframe

# Instrument families a provider may serve (keys are EXCHANGE:SYMBOL; see ``family``).
NSE_EQUITY = "NSE equity"
BSE_EQUITY = "BSE equity"
NSE_INDEX = "NSE/BSE index"
NFO = "NSE F&O"
US_EQUITY = "US equity"
FX = "FX"
GLOBAL_INDEX = "global index"

_INDICES = {"NIFTY 50", "NIFTY BANK", "SENSEX", "NIFTY FIN SERVICE", "NIFTY MIDCAP 100",
            "NIFTY IT", "INDIA VIX", "NIFTY NEXT 50"}


def family(key: str) -> str:
    """The family of an ``EXCHANGE:SYMBOL`` key, for coverage checks."""
    exchange, _, symbol = key.partition(":")
    exchange = exchange.upper()
    if exchange in ("NSE", "BSE") and symbol.upper() in _INDICES:
        return NSE_INDEX
    return {
        "NSE": NSE_EQUITY, "BSE": BSE_EQUITY, "NFO": NFO, "BFO": NFO, "US": US_EQUITY,
        "FX": FX, "INDEX": GLOBAL_INDEX,
    }.get(exchange, exchange)


INDIAN_FAMILIES = frozenset({NSE_EQUITY, BSE_EQUITY, NSE_INDEX, NFO})


@dataclass(frozen=True, slots=True)
class Interval:
    """One candle interval: how far back it goes and the longest range one request may ask."""

    lookback: timedelta | None = None  # None: as far back as the provider has
    span: timedelta | None = None  # None: any range in one request


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket (``burst`` requests, refilled at ``per_second``) and a daily cap."""

    per_second: float
    burst: int = 1
    per_day: int | None = None

    def describe(self) -> str:
        per_minute = self.per_second * 60
        text = f"{self.per_second:g}/s" if self.per_second >= 1 else f"{per_minute:g}/min"
        if self.per_day is not None:
            text += f", {self.per_day}/day"
        return text


@dataclass(frozen=True)
class ProviderCoverage:
    name: str
    families: frozenset[str]
    intervals: Mapping[Timeframe, Interval]
    delayed: bool  # quotes and today's bars lag the exchange (or are end of day)
    auth: str  # "none", "API key (credential store: ...)", "broker login"
    rate: RateLimit
    notes: str = ""
    quotes: bool = False  # serves snapshot quotes (always marked delayed when ``delayed``)

    def covers(self, key: str, timeframe: Timeframe, start: datetime, now: datetime) -> str | None:
        """None when covered; otherwise why not (shown when nothing covers a request)."""
        fam = family(key)
        if fam not in self.families:
            return f"does not cover {fam} ({key})"
        interval = self.intervals.get(timeframe)
        if interval is None:
            offered = ", ".join(tf.value for tf in self.intervals) or "none"
            return f"has no {timeframe.value} candles (offers {offered})"
        if interval.lookback is not None and start < now - interval.lookback:
            return (f"keeps {timeframe.value} candles for the last {interval.lookback.days} "
                    "days only")
        return None

    def port(self) -> Coverage:
        """The same facts as the broker ports' ``Coverage`` (``HistoryProvider.coverage``)."""
        return Coverage(
            intervals=frozenset(self.intervals),
            lookback={tf: i.lookback for tf, i in self.intervals.items()
                      if i.lookback is not None},
            span_per_call={tf: i.span for tf, i in self.intervals.items() if i.span is not None},
            calls_per_second=self.rate.per_second,
        )

    def chunks(
        self, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """``[start, end)`` cut at the provider's span per request."""
        span = self.intervals[timeframe].span
        if span is None:
            return [(start, end)]
        out = []
        at = start
        while at < end:
            stop = min(at + span, end)
            out.append((at, stop))
            at = stop
        return out


@dataclass
class TokenBucket:
    """Paces requests to a provider: waits for a token instead of earning a 429."""

    limit: RateLimit
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _at: float = field(init=False)
    _day: str = field(init=False, default="")
    used_today: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._tokens = float(self.limit.burst)
        self._at = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(float(self.limit.burst),
                           self._tokens + (now - self._at) * self.limit.per_second)
        self._at = now

    def day_left(self, today: str) -> int | None:
        if self.limit.per_day is None:
            return None
        if today != self._day:
            self._day, self.used_today = today, 0
        return self.limit.per_day - self.used_today

    def try_take(self, today: str = "") -> float:
        """Take a token: 0.0 when taken, else the seconds to wait. -1 when the day is spent."""
        left = self.day_left(today)
        if left is not None and left <= 0:
            return -1.0
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            if left is not None:
                self.used_today += 1
            return 0.0
        return (1 - self._tokens) / self.limit.per_second

    async def take(self, today: str = "") -> bool:
        """Wait for a token; False when the daily allowance is spent."""
        while True:
            wait = self.try_take(today)
            if wait == 0.0:
                return True
            if wait < 0:
                return False
            await asyncio.sleep(wait)
