"""Angel One's ``OpenAPIScripMaster.json``: the day's instruments, parsed and cached per day.

The file is a JSON array of objects whose every value is a *string* (research/wave2.md §1):
``token, symbol, name, expiry, strike, lotsize, instrumenttype, exch_seg, tick_size``.
``tick_size`` is in **paise** (``"5.000000"`` is ₹0.05) and ``strike`` is in paise too
(``"2400000.000000"`` is ₹24,000); equities have strike ``"-1.000000"`` and an empty
instrument type, indices ``AMXIDX``; expiry is ``DDMMMYYYY``.

Canonical keys follow the terminal's ``EXCHANGE:SYMBOL``: an NSE equity's ``-EQ`` series
suffix is dropped (``SBIN-EQ`` -> ``NSE:SBIN``), indices are upper-cased (``Nifty 50`` ->
``NSE:NIFTY 50``), derivatives keep Angel's symbol. Angel's token is unique only within an
exchange, so the broker id is ``"<exch_seg>|<token>"``. Rows on exchanges the terminal does
not trade, or that cannot be read, are skipped and counted, never guessed.

The file is about 40 MB and is published once a day, so a parsed copy of the raw file is
kept in the cache directory under the day's date and re-read until the next day.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from services.brokers.angelone.config import BROKER_ID
from services.brokers.errors import BrokerUnavailable, DataError, InstrumentUnknown
from services.brokers.ports import InstrumentMaster, Listing
from services.clock import Clock, to_ist
from services.domain import Exchange, Instrument, InstrumentKind

log = logging.getLogger(__name__)

_HUNDRED = Decimal(100)
_INDEX_TICK = Decimal("0.05")
_EXCHANGES = {e.value: e for e in Exchange}
_FUTURES = frozenset({"FUTSTK", "FUTIDX", "FUTCOM", "FUTCUR", "FUTIRC", "FUTIRT", "FUTENR"})
_OPTIONS = frozenset({"OPTSTK", "OPTIDX", "OPTFUT", "OPTCUR", "OPTIRC", "OPTCOM"})


class MasterError(ValueError):
    """The master file is not the JSON array Angel publishes."""


def broker_id(exch_seg: str, token: str) -> str:
    return f"{exch_seg}|{token}"


def split_id(value: str) -> tuple[str, str]:
    exch_seg, _, token = value.partition("|")
    return exch_seg, token


def canonical_symbol(row: Mapping[str, str]) -> str:
    symbol = row["symbol"].strip()
    kind = row.get("instrumenttype", "").strip()
    if kind == "AMXIDX":
        return symbol.upper()
    if not kind and row.get("exch_seg") == "NSE" and symbol.endswith("-EQ"):
        return symbol[:-3]
    return symbol


def _kind(row: Mapping[str, str]) -> InstrumentKind | None:
    kind = row.get("instrumenttype", "").strip()
    if kind == "":
        return InstrumentKind.EQUITY
    if kind == "AMXIDX":
        return InstrumentKind.INDEX
    if kind in _FUTURES:
        return InstrumentKind.FUTURE
    if kind in _OPTIONS:
        symbol = row["symbol"]
        if symbol.endswith("CE"):
            return InstrumentKind.CALL
        if symbol.endswith("PE"):
            return InstrumentKind.PUT
    return None


def _expiry(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    return datetime.strptime(text.title(), "%d%b%Y").date()  # noqa: DTZ007 (a date only)


@dataclass(frozen=True, slots=True)
class AngelListing:
    instrument: Instrument
    broker_id: str  # "<exch_seg>|<token>"

    @property
    def key(self) -> str:
        return self.instrument.key

    @property
    def token(self) -> str:
        return split_id(self.broker_id)[1]


@dataclass
class ParsedMaster:
    listings: list[AngelListing]
    skipped: int = 0
    duplicates: int = 0
    angel_symbols: dict[str, str] = field(default_factory=dict)  # key -> Angel symbol


def parse_row(row: Mapping[str, Any]) -> tuple[Instrument, str, str] | None:
    """One master row as (instrument, broker id, Angel symbol); ``None`` when unusable."""
    exch_seg = str(row.get("exch_seg", ""))
    exchange = _EXCHANGES.get(exch_seg)
    if exchange is None:
        return None
    kind = _kind(row)
    if kind is None:
        return None
    token = str(row.get("token", "")).strip()
    if not token:
        return None
    try:
        tick = Decimal(str(row.get("tick_size") or "0")) / _HUNDRED
        if tick <= 0:
            if kind is not InstrumentKind.INDEX:
                return None
            tick = _INDEX_TICK
        tick = tick.normalize()
        if tick.as_tuple().exponent > -2:  # type: ignore[operator]
            tick = tick.quantize(Decimal("0.01"))
        lot = int(Decimal(str(row.get("lotsize") or "1")))
        strike_raw = Decimal(str(row.get("strike") or "-1"))
        expiry = _expiry(str(row.get("expiry") or ""))
    except (InvalidOperation, ValueError):
        return None
    strike = strike_raw / _HUNDRED if strike_raw > 0 and kind.value in ("CE", "PE") else None
    symbol = str(row["symbol"]).strip()
    instrument = Instrument(
        exchange=exchange,
        tradingsymbol=canonical_symbol(row),
        token=str(broker_id(exch_seg, token)),  # the contract: str(broker_id)
        name=str(row.get("name", "")).strip(),
        kind=kind,
        tick_size=tick,
        lot_size=max(1, lot),
        expiry=expiry,
        strike=strike.normalize() if strike is not None else None,
    )
    return instrument, broker_id(exch_seg, token), symbol


def parse_master(rows: Iterable[Mapping[str, Any]]) -> ParsedMaster:
    parsed = ParsedMaster([])
    seen: set[str] = set()
    for row in rows:
        result = parse_row(row) if isinstance(row, Mapping) else None
        if result is None:
            parsed.skipped += 1
            continue
        instrument, bid, symbol = result
        if instrument.key in seen:
            parsed.duplicates += 1
            continue
        seen.add(instrument.key)
        parsed.listings.append(AngelListing(instrument, bid))
        parsed.angel_symbols[instrument.key] = symbol
    return parsed


def parse_master_bytes(raw: bytes) -> ParsedMaster:
    try:
        rows = json.loads(raw)
    except ValueError as exc:
        raise MasterError(f"the Angel One instrument master is not JSON: {exc}") from None
    if not isinstance(rows, list):
        raise MasterError("the Angel One instrument master is not a JSON array")
    return parse_master(rows)


class ScripMasterCache:
    """The raw master file of the day on disk; older days are removed when a new one lands."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, day: date) -> Path:
        return self.directory / f"{BROKER_ID}-scrip-master-{day.isoformat()}.json"

    def read(self, day: date) -> bytes | None:
        path = self.path_for(day)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def write(self, day: date, raw: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(day)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(raw)
        tmp.replace(path)
        for old in self.directory.glob(f"{BROKER_ID}-scrip-master-*.json"):
            if old != path:
                old.unlink(missing_ok=True)


class AngelMaster(InstrumentMaster):
    """The ports' ``InstrumentMaster`` plus Angel's own symbols (``SBIN-EQ``), which
    ``placeOrder`` wants next to the token."""

    def __init__(self, day: date | None, parsed: ParsedMaster) -> None:
        super().__init__(
            BROKER_ID, day, [Listing(x.instrument, x.broker_id) for x in parsed.listings]
        )
        self.symbols = dict(parsed.angel_symbols)
        self.skipped = parsed.skipped


class AngelInstruments:
    """The day's master as the adapter needs it (key -> Angel's exchange, token, symbol, and
    back from what an order-book row carries). One holder is shared by the execution client
    and the feed; ``use`` swaps in the next day's master without rebuilding them."""

    def __init__(self, master: InstrumentMaster | None = None) -> None:
        self.master: InstrumentMaster = master or InstrumentMaster(BROKER_ID, None, [])

    def use(self, master: InstrumentMaster) -> None:
        self.master = master

    def __len__(self) -> int:
        return len(self.master)

    def __contains__(self, key: object) -> bool:
        return key in self.master

    def listing(self, key: str) -> Listing:
        """The listing; ``InstrumentUnknown`` names the key when it is not in the master."""
        return self.master.listing(key)

    def angel_symbol(self, key: str) -> str:
        symbols = getattr(self.master, "symbols", {})
        symbol = symbols.get(key)
        if symbol is not None:
            return str(symbol)
        instrument = self.master.instrument(key)
        if instrument.exchange == "NSE" and instrument.kind is InstrumentKind.EQUITY:
            return f"{instrument.tradingsymbol}-EQ"
        return instrument.tradingsymbol

    def ident(self, key: str) -> tuple[str, str]:
        """(exch_seg, token) for a key."""
        return split_id(str(self.master.broker_id(key)))

    def key_of(self, exchange: str, tradingsymbol: str, token: str) -> str:
        """The canonical key for an Angel row; a row for an instrument not in today's master
        (an expired contract in an old position) still gets a readable key."""
        try:
            return self.master.key_of(broker_id(exchange, token))
        except InstrumentUnknown:
            pass
        symbol = tradingsymbol
        if exchange == "NSE" and symbol.endswith("-EQ"):
            symbol = symbol[:-3]
        return f"{exchange}:{symbol}"


async def download(url: str, seconds: float = 60.0) -> bytes:
    import aiohttp

    client_timeout = aiohttp.ClientTimeout(total=seconds)
    try:
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.get(url) as response,
        ):
            if response.status != 200:
                raise MasterError(
                    f"the Angel One instrument master download failed (HTTP {response.status})"
                )
            return await response.read()
    except aiohttp.ClientError as exc:
        raise ConnectionError(type(exc).__name__) from None


async def load_master(url: str, day: date, cache: ScripMasterCache | None) -> ParsedMaster:
    """The day's parsed master: from the cache when it has today's file, else downloaded."""
    raw = cache.read(day) if cache is not None else None
    if raw is None:
        raw = await download(url)
        parsed = await asyncio.to_thread(parse_master_bytes, raw)
        if cache is not None:
            await asyncio.to_thread(cache.write, day, raw)
        return parsed
    return await asyncio.to_thread(parse_master_bytes, raw)


class AngelInstrumentProvider:
    """The ``InstrumentProvider`` port: the day's ``OpenAPIScripMaster.json``.

    The parsed master is kept for the day in memory and the raw file on disk (when a cache
    directory is given), so a restart or a second caller on the same day downloads nothing.
    ``holder`` (shared with the execution client and the feed) receives each new master.
    """

    broker = BROKER_ID

    def __init__(
        self,
        url: str,
        clock: Clock,
        *,
        cache: ScripMasterCache | None = None,
        holder: AngelInstruments | None = None,
    ) -> None:
        self.url = url
        self._clock = clock
        self.cache = cache
        self.holder = holder
        self._master: AngelMaster | None = None
        self._lock = asyncio.Lock()
        self.downloads = 0

    async def fetch_master(self) -> AngelMaster:
        day = to_ist(self._clock.now()).date()
        async with self._lock:
            master = self._master
            if master is None or master.day != day:
                try:
                    before = self.cache.read(day) if self.cache is not None else None
                    parsed = await load_master(self.url, day, self.cache)
                    if before is None:
                        self.downloads += 1
                except MasterError as exc:
                    raise DataError(str(exc)) from None
                except (OSError, TimeoutError) as exc:
                    raise BrokerUnavailable(
                        f"the Angel One instrument master could not be downloaded "
                        f"({type(exc).__name__}); try again shortly"
                    ) from None
                master = self._master = AngelMaster(day, parsed)
                log.info(
                    "Angel One master of %s: %d instruments, %d rows skipped",
                    day, len(master), parsed.skipped,
                )  # fmt: skip
            if self.holder is not None and self.holder.master is not master:
                self.holder.use(master)
            return master

    def master_from_cache(self, instruments: Iterable[Instrument], day: date) -> AngelMaster:
        """The day's master from instruments the app cached (token is ``"<exch>|<token>"``);
        Angel's own symbols are derived (``SBIN`` on NSE is ``SBIN-EQ``)."""
        parsed = ParsedMaster([])
        for instrument in instruments:
            parsed.listings.append(AngelListing(instrument, str(instrument.token)))
            symbol = instrument.tradingsymbol
            nse_equity = instrument.exchange == "NSE" and instrument.kind is InstrumentKind.EQUITY
            if nse_equity and "-" not in symbol:  # other series (-BE, -SM) kept theirs
                symbol = f"{symbol}-EQ"
            parsed.angel_symbols[instrument.key] = symbol
        master = AngelMaster(day, parsed)
        self._master = master
        if self.holder is not None:
            self.holder.use(master)
        return master
