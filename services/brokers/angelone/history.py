"""Angel One candles through ``getCandleData``, chunked to Angel's per-request spans, 3/s.

Angel serves at most so many days per request for each interval (research/wave2.md §1):
1m 30, 3m 60, 5m/10m 100, 15m/30m 200, 1h 400, 1d 2,000. A longer range is split by
``Coverage.chunks`` and the calls are paced by a throttle of 3 a second, 180 a minute and
5,000 an hour (Angel's getCandleData limits). Rows arrive as ``[iso time, open, high, low,
close, volume]`` with float prices; they become ``Decimal`` through their decimal text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from services.brokers.angelone.config import HISTORY_CALLS_PER_SECOND, TITLE
from services.brokers.angelone.instruments import AngelInstruments
from services.brokers.errors import DataError
from services.brokers.ports import Coverage, InstrumentMaster, RateWindow
from services.brokers.throttle import OrderThrottle
from services.clock import Clock, SystemClock, to_ist
from services.domain import Bar, Timeframe

INTERVALS: dict[Timeframe, str] = {
    Timeframe.M1: "ONE_MINUTE",
    Timeframe.M5: "FIVE_MINUTE",
    Timeframe.M15: "FIFTEEN_MINUTE",
    Timeframe.M30: "THIRTY_MINUTE",
    Timeframe.H1: "ONE_HOUR",
    Timeframe.D1: "ONE_DAY",
}
DAYS_PER_CALL: dict[Timeframe, int] = {
    Timeframe.M1: 30,
    Timeframe.M5: 100,
    Timeframe.M15: 200,
    Timeframe.M30: 200,
    Timeframe.H1: 400,
    Timeframe.D1: 2000,
}
COVERAGE = Coverage(
    intervals=frozenset(INTERVALS),
    span_per_call={tf: timedelta(days=days) for tf, days in DAYS_PER_CALL.items()},
    calls_per_second=HISTORY_CALLS_PER_SECOND,
)
HISTORY_WINDOWS = (RateWindow(3, 1.0), RateWindow(180, 60.0), RateWindow(5000, 3600.0))


class CandleSource(Protocol):
    async def _call(self, action: str, method: str, *args: Any, pace: bool = False) -> Any: ...

    async def _ready(self) -> None: ...


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def bars_from_rows(key: str, timeframe: Timeframe, rows: list[Any]) -> list[Bar]:
    bars = []
    for row in rows:
        try:
            ts, o, h, low, c, v = row[:6]
            start = datetime.fromisoformat(str(ts))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{TITLE} sent a candle that cannot be read: {row!r}") from exc
        if start.tzinfo is None:
            raise DataError(f"{TITLE} sent a candle time without a zone: {ts!r}")
        bars.append(
            Bar(key, timeframe, start, _decimal(o), _decimal(h), _decimal(low), _decimal(c),
                int(v), closed=True)
        )  # fmt: skip
    return bars


class AngelHistory:
    """The ``HistoryProvider`` port on ``getCandleData`` (through the execution client's SDK
    client, so the session, the error mapping and the executor are shared)."""

    coverage = COVERAGE

    def __init__(
        self,
        source: CandleSource,
        instruments: AngelInstruments,
        *,
        clock: Clock | None = None,
        throttle: OrderThrottle | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        master_loader: Callable[[], Awaitable[InstrumentMaster]] | None = None,
    ) -> None:
        self._source = source
        self._instruments = instruments
        self._clock = clock or SystemClock()
        extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self.throttle = throttle or OrderThrottle(
            self._clock,
            windows=HISTORY_WINDOWS,
            broker=f"{TITLE} history",
            max_wait=120.0,
            **extra,
        )
        self._master_loader = master_loader
        self.calls = 0

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        now = self._clock.now()
        self.coverage.check(timeframe, start, end, now)
        await self._source._ready()
        if not len(self._instruments) and self._master_loader is not None:
            self._instruments.use(await self._master_loader())
        exch_seg, token = self._instruments.ident(key)  # InstrumentUnknown names the key
        seen: dict[datetime, Bar] = {}
        for chunk_start, chunk_end in self.coverage.chunks(timeframe, start, end):
            params: Mapping[str, str] = {
                "exchange": exch_seg,
                "symboltoken": token,
                "interval": INTERVALS[timeframe],
                "fromdate": to_ist(chunk_start).strftime("%Y-%m-%d %H:%M"),
                "todate": to_ist(chunk_end).strftime("%Y-%m-%d %H:%M"),
            }
            await self.throttle.acquire()
            self.calls += 1
            rows = await self._source._call("read history", "getCandleData", dict(params))
            for bar in bars_from_rows(key, timeframe, list(rows or [])):
                if start <= bar.start < end:
                    seen[bar.start] = bar  # chunk edges may repeat a candle
        return [seen[t] for t in sorted(seen)]
