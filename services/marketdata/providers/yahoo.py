"""Yahoo Finance through the real ``yfinance`` library: NSE (``.NS``), BSE (``.BO``) and the
Indian indices, delayed and unofficial.

Coverage is Yahoo's own (yfinance ``scrapers/history.py``): one-minute bars for the last 30
days, at most 8 days per request; 5 to 15 minutes for the last 60 days; hourly for 730
days; daily for as long as Yahoo has. Prices are unadjusted (``auto_adjust=False``), come as
float32 values and are put on the tick once, here. A ``YFRateLimitError`` (HTTP 429) opens
the circuit. No F&O.

yfinance is blocking (requests or curl_cffi): every call runs in a worker thread. It keeps
one process-wide session; tests hand it a ``requests.Session`` whose adapter rewrites
``https://<host>/<path>`` to the loopback fake (``rewriting_session``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.calendar import IST, REGULAR_OPEN
from services.clock import Clock, SystemClock
from services.domain import Bar, Timeframe
from services.marketdata.coverage import (
    BSE_EQUITY,
    NSE_EQUITY,
    NSE_INDEX,
    Interval,
    ProviderCoverage,
    RateLimit,
)
from services.marketdata.errors import (
    GarbageAnswer,
    NoData,
    NotCovered,
    ProviderRateLimited,
    ProviderUnavailable,
)
from services.marketdata.providers.base import TickSize, check_coverage, default_tick, price, volume
from services.marketdata.quotes import Snapshot

if TYPE_CHECKING:
    import pandas as pd
    import requests

log = logging.getLogger(__name__)

NAME = "yfinance"
COVERAGE = ProviderCoverage(
    name=NAME,
    families=frozenset({NSE_EQUITY, BSE_EQUITY, NSE_INDEX}),
    intervals={
        Timeframe.M1: Interval(lookback=timedelta(days=30), span=timedelta(days=8)),
        Timeframe.M5: Interval(lookback=timedelta(days=60), span=timedelta(days=60)),
        Timeframe.M15: Interval(lookback=timedelta(days=60), span=timedelta(days=60)),
        Timeframe.H1: Interval(lookback=timedelta(days=730), span=timedelta(days=730)),
        Timeframe.D1: Interval(),
    },
    delayed=True,
    auth="none (unofficial; Yahoo may rate-limit or block)",
    rate=RateLimit(per_second=1.0, burst=2),
    notes="no F&O; prices unadjusted (auto_adjust=False); delayed, for research only",
)

INDEX_SYMBOLS = {
    "NSE:NIFTY 50": "^NSEI",
    "NSE:NIFTY BANK": "^NSEBANK",
    "BSE:SENSEX": "^BSESN",
    "NSE:NIFTY FIN SERVICE": "NIFTY_FIN_SERVICE.NS",
    "NSE:INDIA VIX": "^INDIAVIX",
    "NSE:NIFTY IT": "^CNXIT",
    "NSE:NIFTY NEXT 50": "^NSMIDCP",
}
_YF_INTERVAL = {Timeframe.M1: "1m", Timeframe.M5: "5m", Timeframe.M15: "15m",
                Timeframe.H1: "1h", Timeframe.D1: "1d"}


def yahoo_symbol(key: str) -> str:
    if key in INDEX_SYMBOLS:
        return INDEX_SYMBOLS[key]
    exchange, _, symbol = key.partition(":")
    suffix = {"NSE": ".NS", "BSE": ".BO"}.get(exchange.upper())
    if suffix is None or not symbol:
        raise NotCovered(NAME, f"{key} is not an NSE or BSE instrument")
    return symbol.upper() + suffix


def rewriting_session(base_url: str) -> requests.Session:
    """A ``requests.Session`` that sends ``https://<host>/<path>`` to ``<base_url>/<host>/<path>``.

    yfinance builds its URLs from constants; this is how it is pointed at a fake (or a
    recording proxy) without patching the library.
    """
    import requests
    from requests.adapters import HTTPAdapter

    target = base_url.rstrip("/")

    class Rewrite(HTTPAdapter):
        def send(  # type: ignore[override]  # passes every keyword through
            self, request: requests.PreparedRequest, **kwargs: Any
        ) -> requests.Response:
            url = request.url or ""
            if url.startswith("https://"):
                request.url = f"{target}/{url[len('https://'):]}"
            return super().send(request, **kwargs)

    session = requests.Session()
    session.mount("https://", Rewrite())
    return session


def forget_responses() -> None:
    """Drop yfinance's in-process cache of chart answers (it keeps one per URL and range)."""
    from yfinance.data import YfData

    YfData.cache_get.cache_clear()


class YahooProvider:
    name = NAME
    info = COVERAGE
    coverage = COVERAGE.port()  # the broker ports' HistoryProvider contract

    def __init__(
        self,
        *,
        base_url: str | None = None,
        cache_dir: Path | None = None,
        tick_size: TickSize = default_tick,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._base_url = base_url
        self._cache_dir = cache_dir
        self._tick = tick_size
        self._session: Any = None
        self._ready = False

    def _prepare(self) -> None:
        if self._ready:
            return
        import warnings

        import yfinance as yf

        # yfinance 1.7 calls sort_index(inplace=True), deprecated in pandas 3.1: not ours.
        warnings.filterwarnings("ignore", message="The inplace keyword", module="yfinance")
        yf.config.debug.hide_exceptions = False  # errors raise, so they can be classified
        if self._cache_dir is not None:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            yf.set_tz_cache_location(str(self._cache_dir))
        if self._base_url is not None:
            self._session = rewriting_session(self._base_url)
        self._ready = True

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        check_coverage(self.info, key, timeframe, start, end, self._clock.now())
        symbol = yahoo_symbol(key)
        interval = COVERAGE.intervals.get(timeframe)
        if interval is None:
            raise NotCovered(NAME, f"no {timeframe.value} candles")
        bars: list[Bar] = []
        for lo, hi in COVERAGE.chunks(timeframe, start, end):
            frame = await asyncio.to_thread(self._download, symbol, timeframe, lo, hi)
            bars.extend(self._to_bars(key, timeframe, frame, lo, hi))
        return bars

    def _download(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> pd.DataFrame:
        return self._fetch(self._ticker(symbol), start=start, end=end,
                           interval=_YF_INTERVAL[timeframe])

    def _fetch(self, ticker: Any, *, interval: str, **span: Any) -> pd.DataFrame:
        """``Ticker.history`` with yfinance's exceptions turned into provider errors."""
        import requests
        from yfinance.exceptions import (
            YFException,
            YFPricesMissingError,
            YFRateLimitError,
            YFTzMissingError,
        )

        symbol = ticker.ticker
        try:
            frame: pd.DataFrame = ticker.history(
                **span, interval=interval, auto_adjust=False, actions=False, prepost=False,
                repair=False, timeout=20,
            )
        except YFRateLimitError:
            raise ProviderRateLimited(NAME, "Yahoo says too many requests (HTTP 429)") from None
        except YFTzMissingError:
            raise NoData(NAME, f"Yahoo does not know {symbol}") from None
        except YFPricesMissingError as exc:
            text = str(exc)
            if "within the last" in text or "worth of" in text:
                raise NotCovered(NAME, text.split(": ", 1)[-1]) from None
            raise NoData(NAME, f"no {interval} prices for {symbol} ({text})") from None
        except (requests.exceptions.JSONDecodeError, ValueError) as exc:
            forget_responses()  # yfinance caches past-range answers, bad ones too
            raise GarbageAnswer(NAME, f"not JSON from Yahoo for {symbol} (an HTML page?): "
                                      f"{type(exc).__name__}") from None
        except requests.exceptions.RequestException as exc:
            raise ProviderUnavailable(NAME, f"cannot reach Yahoo: {type(exc).__name__}") from None
        except YFException as exc:
            raise ProviderUnavailable(NAME, str(exc)) from None
        return frame

    async def quote(self, key: str) -> Snapshot:
        """Yahoo's last regular-market price and time (the chart answer's ``meta``), delayed."""
        symbol = yahoo_symbol(key)
        meta = await asyncio.to_thread(self._meta, symbol)
        stamp = meta.get("regularMarketTime")
        last = meta.get("regularMarketPrice")
        if stamp is None or last is None:
            raise GarbageAnswer(NAME, f"Yahoo's answer for {symbol} lacks the last price or time")
        when = stamp.to_pydatetime() if hasattr(stamp, "to_pydatetime") else stamp
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise GarbageAnswer(NAME, f"Yahoo's time for {symbol} is not a time: {stamp!r}")
        return Snapshot(key, price(NAME, key, last, self._tick(key)), when.astimezone(IST), NAME,
                        delayed=True)

    def _meta(self, symbol: str) -> dict[str, Any]:
        # Today's bar through the same error handling as candles; the price comes with it.
        ticker = self._ticker(symbol)
        self._fetch(ticker, period="5d", interval="1d")
        return dict(ticker.get_history_metadata())

    def _ticker(self, symbol: str) -> Any:
        self._prepare()
        import yfinance as yf

        return yf.Ticker(symbol, session=self._session)

    def _to_bars(
        self, key: str, timeframe: Timeframe, frame: pd.DataFrame, start: datetime,
        end: datetime,
    ) -> list[Bar]:
        """The one place pandas values become domain values."""
        if frame is None or frame.empty:
            return []
        missing = {"Open", "High", "Low", "Close", "Volume"} - set(frame.columns)
        if missing:
            raise GarbageAnswer(NAME, f"{key}: Yahoo's frame lacks {sorted(missing)}")
        ohlc = frame[["Open", "High", "Low", "Close"]]
        nans = int(ohlc.isna().any(axis=1).sum())
        if nans:
            forget_responses()
            raise GarbageAnswer(NAME, f"{key}: {nans} of {len(frame)} {timeframe.value} bars "
                                      "from Yahoo have no price (NaN)")
        tick = self._tick(key)
        bars = []
        index = frame.index
        if index.tz is None:
            raise GarbageAnswer(NAME, f"{key}: Yahoo's times carry no timezone")
        for ts, o, h, lo, c, v in zip(index, frame["Open"].tolist(), frame["High"].tolist(),
                                      frame["Low"].tolist(), frame["Close"].tolist(),
                                      frame["Volume"].tolist(), strict=True):
            moment: datetime = ts.to_pydatetime().astimezone(IST)
            if timeframe is Timeframe.D1:
                moment = datetime.combine(moment.date(), REGULAR_OPEN, tzinfo=IST)
            if not start <= moment < end and timeframe is not Timeframe.D1:
                continue
            bars.append(Bar(key, timeframe, moment, price(NAME, key, o, tick),
                            price(NAME, key, h, tick), price(NAME, key, lo, tick),
                            price(NAME, key, c, tick), volume(NAME, key, v), closed=True))
        return bars

    async def close(self) -> None:
        if self._session is not None:
            self._session.close()
