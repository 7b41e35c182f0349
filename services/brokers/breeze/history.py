"""Candles from Breeze's historical API (v2), chunked to its 1,000-candle answers.

Breeze serves 1-second, 1-minute, 5-minute, 30-minute and daily candles (``historicalcharts``
v2, research/wave2.md §1); the terminal's timeframes it can take directly are 1m, 5m and 1d,
so the coverage declares those (15m and 1h are not offered rather than rebuilt here).

1 second and 30 minutes are not offered because the terminal has no such ``Timeframe``, and
adding one is not local to Breeze: the bar builder and the models' runtime build *every*
timeframe for every watched instrument (``tuple(Timeframe)``), so a 1-second timeframe would
publish and record sixty bars for each 1-minute one; the chart and the models panel offer a
button per timeframe, which other providers could not fill; and the Kite, Upstox, Angel One,
Yahoo and Polygon interval tables are indexed by ``Timeframe`` without a default. When
``Timeframe`` gains them, ``NATIVE`` below maps them at once, and a test fails until their
span per call (1,000 candles) is declared. One
answer holds at most 1,000 candles, so a range is asked in spans that cannot hold more: two
calendar days of minutes (two sessions of 375), thirteen of 5-minute candles (13 x 75), 1,000
days of daily candles. Prices are as traded: Breeze does **not** adjust for splits, bonuses
or dividends, so a series across a corporate action shows the jump.

Every chunk is one API call out of the day's 5,000 (counted by the execution client's
throttle), so a long backfill is better taken from another provider.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from services.brokers.breeze import mapping
from services.brokers.breeze.instruments import Masters
from services.brokers.errors import DataError, InstrumentUnknown, OrderNotFound
from services.brokers.ports import Coverage
from services.clock import Clock, SystemClock
from services.domain import Bar, Timeframe

if TYPE_CHECKING:
    from services.brokers.breeze.execution import BreezeExecution

# Every interval Breeze serves, by the terminal's name for that bar length.
NATIVE = {"1s": "1second", "1m": "1minute", "5m": "5minute", "30m": "30minute", "1d": "1day"}
INTERVALS = {tf: NATIVE[tf.value] for tf in Timeframe if tf.value in NATIVE}
COVERAGE = Coverage(
    intervals=frozenset(INTERVALS),
    span_per_call={
        Timeframe.M1: timedelta(days=2),
        Timeframe.M5: timedelta(days=13),
        Timeframe.D1: timedelta(days=1000),
    },
    calls_per_second=1.5,  # ICICI is said to allow about 100 calls a minute (unverified)
)
_FMT = "%Y-%m-%dT%H:%M:%S.000Z"


class BreezeHistory:
    """``HistoryProvider`` on the SDK's ``get_historical_data_v2``; unadjusted prices."""

    coverage = COVERAGE

    def __init__(
        self, execution: BreezeExecution, masters: Masters, *, clock: Clock | None = None
    ) -> None:
        self._execution = execution
        self._masters = masters
        self._clock = clock or SystemClock()
        self.requests = 0

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        self.coverage.check(timeframe, start, end, self._clock.now())
        master = await self._masters.get()
        contract = master.contract(key)
        if contract is None:
            raise InstrumentUnknown(f"{key} is not in today's ICICI security master")
        bars: dict[datetime, Bar] = {}
        for a, b in self.coverage.chunks(timeframe, start, end):
            self.requests += 1
            try:
                rows = await self._execution.call(
                    f"read {timeframe.value} history of {key}",
                    "get_historical_data_v2",
                    interval=INTERVALS[timeframe],
                    from_date=a.astimezone(UTC).strftime(_FMT),
                    to_date=b.astimezone(UTC).strftime(_FMT),
                    stock_code=contract.stock_code,
                    exchange_code=contract.exchange_code,
                    product_type="" if contract.product == "cash" else contract.product,
                    expiry_date=contract.expiry_param,
                    right=contract.right if contract.product == "options" else "",
                    strike_price=contract.strike_param if contract.product == "options" else "",
                )
            except OrderNotFound:  # "No Data Found": a holiday or a range before listing
                continue
            for row in mapping.records(rows):
                try:
                    ts = mapping.parse_time(row.get("datetime"))
                    if ts is None:
                        raise mapping.MappingError("a candle without a time")
                    bar = Bar(
                        key=key,
                        timeframe=timeframe,
                        start=ts,
                        open=mapping.dec(row.get("open")),
                        high=mapping.dec(row.get("high")),
                        low=mapping.dec(row.get("low")),
                        close=mapping.dec(row.get("close")),
                        volume=mapping.whole(row.get("volume") or 0),
                        closed=True,
                    )
                except mapping.MappingError as exc:
                    raise DataError(f"Breeze history of {key}: {exc}") from exc
                if start <= bar.start < end:
                    bars[bar.start] = bar
        return [bars[t] for t in sorted(bars)]
