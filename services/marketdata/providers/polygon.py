"""Polygon.io (now "Massive"): US equities, FX and global indices. **No Indian markets.**

Polygon has no NSE or BSE data (international equities have "no ETA", polygon-io issue
#197), so it is here for what a trader in India also watches: US stocks, currency pairs and
world indices. Keys: ``US:AAPL``, ``FX:USDINR`` (Polygon's ``C:USDINR``), ``INDEX:SPX``
(``I:SPX``; index aggregates need Polygon's indices plan). The free plan allows 5 requests a
minute and two years of history; bars are unadjusted here (``adjusted=false``). The key is
sent as a bearer header, never in the URL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.clock import Clock, SystemClock
from services.domain import Bar, Timeframe
from services.marketdata.coverage import (
    FX,
    GLOBAL_INDEX,
    US_EQUITY,
    Interval,
    ProviderCoverage,
    RateLimit,
    family,
)
from services.marketdata.errors import (
    Blocked,
    CredentialsMissing,
    GarbageAnswer,
    NoData,
    NotCovered,
    ProviderUnavailable,
)
from services.marketdata.providers.base import TickSize, check_coverage, default_tick, price, volume
from services.marketdata.providers.http import JsonClient, KeySource, need_key

NAME = "polygon"
COMMAND = "dalal credentials set polygon --field api_key"
_TWO_YEARS = timedelta(days=730)
COVERAGE = ProviderCoverage(
    name=NAME,
    families=frozenset({US_EQUITY, FX, GLOBAL_INDEX}),
    # One answer holds at most 50,000 aggregates: a day of seconds, a month of minutes.
    intervals={tf: Interval(lookback=_TWO_YEARS, span=timedelta(
        days={Timeframe.S1: 1, Timeframe.M1: 30}.get(tf, 365))) for tf in Timeframe},
    delayed=True,
    auth=f"API key (credential store: {COMMAND})",
    rate=RateLimit(per_second=5 / 60, burst=1),
    notes="NO Indian markets (no NSE, BSE or F&O): US equities, FX and global indices only; "
          "free plan: end of day, 2 years",
)
_SPAN = {Timeframe.S1: (1, "second"), Timeframe.M1: (1, "minute"), Timeframe.M5: (5, "minute"),
         Timeframe.M15: (15, "minute"), Timeframe.M30: (30, "minute"), Timeframe.H1: (1, "hour"),
         Timeframe.D1: (1, "day")}
_PREFIX = {US_EQUITY: "", FX: "C:", GLOBAL_INDEX: "I:"}


def polygon_ticker(key: str) -> str:
    fam = family(key)
    if fam not in _PREFIX:
        raise NotCovered(NAME, f"Polygon has no {fam} data ({key}): no Indian markets")
    return _PREFIX[fam] + key.partition(":")[2].upper()


class PolygonProvider:
    name = NAME
    info = COVERAGE
    coverage = COVERAGE.port()  # the broker ports' HistoryProvider contract

    def __init__(
        self, api_key: KeySource, *, base_url: str = "https://api.polygon.io",
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
        ticker = polygon_ticker(key)
        api_key = need_key(NAME, self._key, COMMAND)
        mult, span = _SPAN[timeframe]
        bars: list[Bar] = []
        for lo, hi in COVERAGE.chunks(timeframe, start, end):
            url = (f"{self._base}/v2/aggs/ticker/{ticker}/range/{mult}/{span}/"
                   f"{int(lo.timestamp() * 1000)}/{int(hi.timestamp() * 1000) - 1}")
            params: dict[str, str] | None = {"adjusted": "false", "sort": "asc",
                                             "limit": "50000"}
            while url:
                status, data = await self._http.get(
                    url, params=params, headers={"Authorization": f"Bearer {api_key}"})
                bars.extend(self._page(key, timeframe, status, data))
                next_url = data.get("next_url") if isinstance(data, dict) else None
                url, params = (next_url, None) if next_url else ("", None)
        return [b for b in bars if start <= b.start < end]

    def _page(self, key: str, timeframe: Timeframe, status: int, data: object) -> list[Bar]:
        if not isinstance(data, dict):
            raise GarbageAnswer(NAME, "the answer is not a JSON object")
        if status == 401:
            raise CredentialsMissing(NAME, f"Polygon refused the API key; set it with "
                                           f"`{COMMAND}`")
        if status == 403:
            raise Blocked(NAME, f"not entitled: {str(data.get('message', ''))[:160]}")
        if status == 404:
            raise NoData(NAME, f"Polygon does not know {key}")
        if status != 200 or data.get("status") not in ("OK", "DELAYED"):
            raise ProviderUnavailable(NAME, f"HTTP {status}: {data.get('error', '')}"[:200])
        tick = self._tick(key)
        out = []
        for row in data.get("results") or []:
            try:
                at = datetime.fromtimestamp(int(row["t"]) / 1000, UTC)
                out.append(Bar(key, timeframe, at, price(NAME, key, row["o"], tick),
                               price(NAME, key, row["h"], tick), price(NAME, key, row["l"], tick),
                               price(NAME, key, row["c"], tick), volume(NAME, key, row.get("v", 0)),
                               closed=True))
            except (KeyError, TypeError, ValueError):
                raise GarbageAnswer(NAME, "an unreadable aggregate") from None
        return out

    async def close(self) -> None:
        await self._http.close()
