"""NSE's own public data: end-of-day archives and the website's JSON.

* **Archives** (``nsearchives.nseindia.com``): the daily UDiFF bhavcopy of the cash market
  and of F&O (one zip per trading day, published after the close), and the F&O lot-size
  file. This is the only free source of F&O history, and it is end of day only.
* **Website JSON** (``www.nseindia.com/api/...``): snapshot quotes, the option chain and
  the holiday list. Unofficial: it wants cookies from a first page visit (the warm-up) and
  sits behind a bot wall, so a 403 means "unavailable for now" and opens the circuit with
  a growing back-off. Quotes from here are delayed snapshots, never a price to trade on.

NSE moves these endpoints often, so every host and path is in ``NseEndpoints`` (settings
``marketdata.nse``), none in code.
"""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.calendar import IST, ExchangeCalendar, default_calendar, parse_nse_holidays
from services.clock import Clock, SystemClock
from services.domain import Bar, Timeframe
from services.marketdata.coverage import (
    NFO,
    NSE_EQUITY,
    Interval,
    ProviderCoverage,
    RateLimit,
    family,
)
from services.marketdata.errors import (
    Blocked,
    GarbageAnswer,
    NoData,
    NotCovered,
    ProviderRateLimited,
    ProviderUnavailable,
)
from services.marketdata.providers.base import TickSize, check_coverage, default_tick, price, volume
from services.marketdata.quotes import Snapshot

NAME = "nse-archives"
WEBSITE = "nse-website"

COVERAGE = ProviderCoverage(
    name=NAME,
    families=frozenset({NSE_EQUITY, NFO}),
    intervals={Timeframe.D1: Interval(span=timedelta(days=31))},  # one file per day inside
    delayed=True,
    auth="none (public files)",
    rate=RateLimit(per_second=2.0, burst=3),
    notes="end of day only (bhavcopy after the close); the only free F&O history; "
          "no indices",
)

WEBSITE_COVERAGE = ProviderCoverage(
    name=WEBSITE,
    families=frozenset({NSE_EQUITY}),
    intervals={},
    delayed=True,
    auth="none (cookies from a warm-up visit; bot wall: 403 = unavailable)",
    rate=RateLimit(per_second=0.5, burst=2),
    notes="snapshot quotes and the option chain only, delayed; no candles",
    quotes=True,
)

_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/126.0 Safari/537.36",
    "Accept": "application/json, text/plain, */*",
    "Accept-Language": "en-US,en;q=0.9",
}


@dataclass(frozen=True)
class NseEndpoints:
    """Every NSE host and path; ``{yyyymmdd}``, ``{symbol}``... are filled in per call."""

    website: str = "https://www.nseindia.com"
    archives: str = "https://nsearchives.nseindia.com"
    warmup: tuple[str, ...] = ("/", "/option-chain")
    quote: str = "/api/quote-equity?symbol={symbol}"
    option_chain: str = "/api/option-chain-v3?type={kind}&symbol={symbol}&expiry={expiry}"
    holidays: str = "/api/holiday-master?type=trading"
    cm_bhavcopy: str = "/content/cm/BhavCopy_NSE_CM_0_0_0_{yyyymmdd}_F_0000.csv.zip"
    fo_bhavcopy: str = "/content/fo/BhavCopy_NSE_FO_0_0_0_{yyyymmdd}_F_0000.csv.zip"
    lot_sizes: str = "/content/fo/fo_mktlots.csv"
    timeout: float = 20.0


@dataclass
class _Http:
    """One aiohttp session with browser-like headers and NSE's cookies."""

    endpoints: NseEndpoints
    provider: str
    _session: Any = None
    _warm: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def session(self) -> Any:
        if self._session is None:
            import aiohttp

            # unsafe=True: keep cookies from an IP-address host too (a configured mirror or
            # the loopback fake); nseindia.com itself is a name and unaffected.
            self._session = aiohttp.ClientSession(
                headers=_HEADERS, timeout=aiohttp.ClientTimeout(total=self.endpoints.timeout),
                cookie_jar=aiohttp.CookieJar(unsafe=True))
        return self._session

    async def get(self, url: str, *, warm: bool = False) -> tuple[int, str, bytes]:
        import aiohttp

        session = await self.session()
        if warm and not self._warm:
            async with self._lock:
                if not self._warm:
                    for path in self.endpoints.warmup:
                        status, _, _ = await self._raw(session, self.endpoints.website + path)
                        if status == 403:
                            raise Blocked(self.provider, "NSE's bot wall refused the warm-up "
                                                         "visit (HTTP 403)")
                    self._warm = True
        try:
            status, ctype, body = await self._raw(session, url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(self.provider,
                                      f"cannot reach NSE: {type(exc).__name__}") from None
        if status in (401, 403) and warm:
            self._warm = False  # cookies expired or refused: warm up again next time
        if status == 403:
            raise Blocked(self.provider, "NSE's bot wall refused the request (HTTP 403)")
        if status == 429:
            raise ProviderRateLimited(self.provider, "NSE says too many requests (HTTP 429)")
        if status >= 500:
            raise ProviderUnavailable(self.provider, f"NSE answered HTTP {status}")
        return status, ctype, body

    async def _raw(self, session: Any, url: str) -> tuple[int, str, bytes]:
        import aiohttp

        try:
            async with session.get(url, allow_redirects=True) as response:
                body = await response.read()
                return int(response.status), str(response.content_type), bytes(body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(self.provider,
                                      f"cannot reach NSE: {type(exc).__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _csv_rows(provider: str, blob: bytes, what: str) -> list[dict[str, str]]:
    """The CSV inside a bhavcopy zip, as rows; an unreadable file is a ``GarbageAnswer``."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if not names:
                raise GarbageAnswer(provider, f"{what}: the zip holds no CSV")
            text = archive.read(names[0]).decode("utf-8-sig")
    except zipfile.BadZipFile:
        head = blob[:15].lower()
        kind = "an HTML page" if b"<" in head else "not a zip"
        raise GarbageAnswer(provider, f"{what}: {kind} instead of the bhavcopy zip") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and "TckrSymb" not in rows[0]:
        raise GarbageAnswer(provider, f"{what}: not a UDiFF bhavcopy (no TckrSymb column)")
    return rows


class NseArchivesProvider:
    """Daily candles from the bhavcopy archives (cash: series EQ; F&O: by contract name)."""

    name = NAME
    info = COVERAGE
    coverage = COVERAGE.port()  # the broker ports' HistoryProvider contract

    def __init__(
        self,
        endpoints: NseEndpoints | None = None,
        *,
        calendar: ExchangeCalendar | None = None,
        tick_size: TickSize = default_tick,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self.endpoints = endpoints or NseEndpoints()
        self._http = _Http(self.endpoints, NAME)
        self._calendar = calendar
        self._tick = tick_size
        self._files: dict[tuple[str, date], list[dict[str, str]]] = {}

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        check_coverage(self.info, key, timeframe, start, end, self._clock.now())
        if timeframe is not Timeframe.D1:
            raise NotCovered(NAME, "end-of-day files only: 1d candles")
        fam = family(key)
        if fam not in COVERAGE.families:
            raise NotCovered(NAME, f"does not cover {fam} ({key})")
        calendar = self._calendar or default_calendar()
        segment = "fo" if fam == NFO else "cm"
        symbol = key.partition(":")[2].upper()
        bars: list[Bar] = []
        last = (end - timedelta(microseconds=1)).astimezone(IST).date()
        for session in calendar.sessions(start.astimezone(IST).date(), last):
            if not start <= session.opens_at < end:
                continue
            rows = await self._bhavcopy(segment, session.day)
            if rows is None:
                continue
            bar = self._row_bar(key, segment, symbol, rows, session.opens_at)
            if bar is not None:
                bars.append(bar)
        if not bars:
            raise NoData(NAME, f"no bhavcopy rows for {key} from {start:%Y-%m-%d} to "
                               f"{end:%Y-%m-%d}")
        return bars

    async def _bhavcopy(self, segment: str, day: date) -> list[dict[str, str]] | None:
        cached = self._files.get((segment, day))
        if cached is not None:
            return cached
        path = self.endpoints.cm_bhavcopy if segment == "cm" else self.endpoints.fo_bhavcopy
        url = self.endpoints.archives + path.format(yyyymmdd=f"{day:%Y%m%d}")
        status, _, body = await self._http.get(url)
        if status == 404:
            return None  # not published (yet), or no session that day
        if status != 200:
            raise ProviderUnavailable(NAME, f"bhavcopy of {day} answered HTTP {status}")
        rows = _csv_rows(NAME, body, f"{segment.upper()} bhavcopy of {day}")
        if len(self._files) > 64:
            self._files.clear()
        self._files[(segment, day)] = rows
        return rows

    def _row_bar(
        self, key: str, segment: str, symbol: str, rows: list[dict[str, str]], at: datetime
    ) -> Bar | None:
        for row in rows:
            if segment == "cm":
                if row.get("TckrSymb", "").upper() != symbol or row.get("SctySrs") != "EQ":
                    continue
            elif row.get("FinInstrmNm", "").upper() != symbol:
                continue
            tick = self._tick(key)
            try:
                return Bar(key, Timeframe.D1, at, price(NAME, key, row["OpnPric"], tick),
                           price(NAME, key, row["HghPric"], tick),
                           price(NAME, key, row["LwPric"], tick),
                           price(NAME, key, row["ClsPric"], tick),
                           volume(NAME, key, row["TtlTradgVol"].strip()), closed=True)
            except KeyError as exc:
                raise GarbageAnswer(NAME, f"bhavcopy row without {exc}") from None
        return None

    async def lot_sizes(self) -> dict[str, dict[str, int]]:
        """Underlying symbol -> {month column (e.g. "MAR-26"): lot size} from the lot file."""
        url = self.endpoints.archives + self.endpoints.lot_sizes
        status, _, body = await self._http.get(url)
        if status != 200:
            raise ProviderUnavailable(NAME, f"the lot-size file answered HTTP {status}")
        reader = csv.reader(io.StringIO(body.decode("utf-8-sig")))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise GarbageAnswer(NAME, "the lot-size file is empty") from None
        if len(header) < 3 or header[1].upper() != "SYMBOL":
            raise GarbageAnswer(NAME, "the lot-size file has no SYMBOL column")
        out: dict[str, dict[str, int]] = {}
        for row in reader:
            cells = [c.strip() for c in row]
            if len(cells) < 3 or not cells[1] or cells[1].upper() == "SYMBOL":
                continue
            out[cells[1]] = {m: int(v) for m, v in zip(header[2:], cells[2:], strict=False)
                             if v.isdigit()}
        return out

    async def close(self) -> None:
        await self._http.close()


class NseWebsite:
    """Snapshot quotes, the option chain and the holiday list from nseindia.com's JSON."""

    name = WEBSITE
    info = WEBSITE_COVERAGE

    def __init__(self, endpoints: NseEndpoints | None = None) -> None:
        self.endpoints = endpoints or NseEndpoints()
        self._http = _Http(self.endpoints, WEBSITE)

    async def _json(self, path: str) -> Any:
        import json

        status, _, body = await self._http.get(self.endpoints.website + path, warm=True)
        if status == 401:
            # The cookies did not take (or expired): warm up once more, then give up.
            status, _, body = await self._http.get(self.endpoints.website + path, warm=True)
        if status != 200:
            raise ProviderUnavailable(WEBSITE, f"{path} answered HTTP {status}")
        try:
            return json.loads(body)
        except ValueError:
            what = "an HTML page" if body[:1] == b"<" else "not JSON"
            raise GarbageAnswer(WEBSITE, f"{path}: {what}") from None

    async def quote(self, key: str) -> Snapshot:
        exchange, _, symbol = key.partition(":")
        if exchange.upper() != "NSE":
            raise NotCovered(WEBSITE, f"quotes of NSE equities only, not {key}")
        from urllib.parse import quote as urlquote

        data = await self._json(self.endpoints.quote.format(symbol=urlquote(symbol)))
        try:
            info = data["priceInfo"]
            last = price(WEBSITE, key, info["lastPrice"], Decimal("0.01"))
            stamp = data.get("metadata", {}).get("lastUpdateTime") or data.get(
                "lastUpdateTime", "")
            when = datetime.strptime(stamp, "%d-%b-%Y %H:%M:%S").replace(tzinfo=IST)
        except (KeyError, TypeError, ValueError):
            raise GarbageAnswer(WEBSITE, f"the quote of {key} lacks its price or time") from None
        return Snapshot(key, last, when, WEBSITE, delayed=True)

    async def option_chain(self, symbol: str, expiry: str, *, index: bool = True) -> Any:
        """NSE's option-chain JSON for one expiry (``DD-Mon-YYYY``), as NSE sends it."""
        from urllib.parse import quote as urlquote

        kind = "Indices" if index else "Equity"
        return await self._json(self.endpoints.option_chain.format(
            kind=kind, symbol=urlquote(symbol), expiry=expiry))

    async def holidays(self) -> Any:
        """NSE's trading-holiday list, raw (``services.calendar.save_cache`` keeps it)."""
        payload = await self._json(self.endpoints.holidays)
        parse_nse_holidays(payload)  # refuse an answer that is not the list
        return payload

    async def close(self) -> None:
        await self._http.close()
