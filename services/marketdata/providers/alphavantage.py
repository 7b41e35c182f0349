"""Alpha Vantage: daily BSE candles (``RELIANCE.BSE``) with a free key, 25 requests a day.

Its Indian coverage is BSE end of day only (intraday is US only), and the free
``outputsize=compact`` answer holds the latest 100 sessions. When the allowance is spent
it still answers HTTP 200, with a ``Note`` or ``Information`` text instead of data: that is
a spent quota, which opens the circuit until the next day. The key lives in the credential
store (``dalal credentials set alphavantage --field api_key``) and never in a URL we log.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from services.calendar import IST, REGULAR_OPEN
from services.clock import Clock, SystemClock
from services.domain import Bar, Timeframe
from services.marketdata.coverage import BSE_EQUITY, Interval, ProviderCoverage, RateLimit
from services.marketdata.errors import (
    GarbageAnswer,
    NoData,
    NotCovered,
    ProviderUnavailable,
    QuotaExhausted,
)
from services.marketdata.providers.base import TickSize, check_coverage, default_tick, price, volume
from services.marketdata.providers.http import JsonClient, KeySource, need_key

NAME = "alphavantage"
COMMAND = "dalal credentials set alphavantage --field api_key"
COVERAGE = ProviderCoverage(
    name=NAME,
    families=frozenset({BSE_EQUITY}),
    intervals={Timeframe.D1: Interval(lookback=timedelta(days=140))},
    delayed=True,
    auth=f"API key (credential store: {COMMAND})",
    rate=RateLimit(per_second=5 / 60, burst=1, per_day=25),
    notes="BSE daily only (latest 100 sessions on the free plan); NSE and intraday are not "
          "offered for India; a spent quota is HTTP 200 with a Note",
)


class AlphaVantageProvider:
    name = NAME
    info = COVERAGE
    coverage = COVERAGE.port()  # the broker ports' HistoryProvider contract

    def __init__(
        self, api_key: KeySource, *, base_url: str = "https://www.alphavantage.co",
        tick_size: TickSize = default_tick,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._key = api_key
        self._base = base_url.rstrip("/")
        self._http = JsonClient(NAME)
        self._tick = tick_size

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        check_coverage(self.info, key, timeframe, start, end, self._clock.now())
        exchange, _, symbol = key.partition(":")
        if exchange.upper() != "BSE" or timeframe is not Timeframe.D1:
            raise NotCovered(NAME, "BSE daily candles only")
        api_key = need_key(NAME, self._key, COMMAND)
        status, data = await self._http.get(f"{self._base}/query", params={
            "function": "TIME_SERIES_DAILY", "symbol": f"{symbol.upper()}.BSE",
            "outputsize": "compact", "datatype": "json", "apikey": api_key,
        })
        if not isinstance(data, dict):
            raise GarbageAnswer(NAME, "the answer is not a JSON object")
        for note in ("Note", "Information"):
            if note in data:  # over quota (or a premium-only request): HTTP 200 regardless
                raise QuotaExhausted(NAME, f"quota spent or plan limit: {str(data[note])[:160]}")
        if "Error Message" in data:
            raise NoData(NAME, f"Alpha Vantage does not know {symbol}.BSE")
        if status != 200:
            raise ProviderUnavailable(NAME, f"HTTP {status}")
        series = data.get("Time Series (Daily)")
        if not isinstance(series, dict):
            raise GarbageAnswer(NAME, "no 'Time Series (Daily)' in the answer")
        tick = self._tick(key)
        bars = []
        for day_text, row in series.items():
            try:
                day = date.fromisoformat(day_text)
                at = datetime.combine(day, REGULAR_OPEN, tzinfo=IST)
                if not start <= at < end:
                    continue
                bars.append(Bar(key, Timeframe.D1, at, price(NAME, key, row["1. open"], tick),
                                price(NAME, key, row["2. high"], tick),
                                price(NAME, key, row["3. low"], tick),
                                price(NAME, key, row["4. close"], tick),
                                volume(NAME, key, row["5. volume"]), closed=True))
            except (KeyError, TypeError, ValueError):
                raise GarbageAnswer(NAME, f"an unreadable row for {day_text}") from None
        bars.sort(key=lambda b: b.start)
        return bars

    async def close(self) -> None:
        await self._http.close()
