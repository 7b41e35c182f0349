"""Upstox's daily instrument master (``complete.json.gz``) in the terminal's vocabulary.

Upstox names an instrument by its *instrument key*, ``SEGMENT|ID``: ``NSE_EQ|INE002A01018``
(an ISIN for equities), ``NSE_FO|35005`` (an exchange token for contracts),
``NSE_INDEX|Nifty 50`` for indices. The terminal's canonical key is ``EXCHANGE:SYMBOL`` with
Kite's symbols, so that a watchlist or a journal written under one broker reads the same
under another: equities keep their trading symbol, indices their upper-cased name
(``NSE:NIFTY 50``), and contracts are spelled the NSE way Kite uses (``NFO:NIFTY24N2824500CE``
for a weekly, ``NFO:NIFTY24NOV24500CE`` for a monthly, ``NFO:NIFTY24NOVFUT``).

Two traps in the file: ``tick_size`` is in **paise** (``5.0`` is ₹0.05) and ``expiry`` is
epoch milliseconds. Expired contracts and segments the terminal does not trade are skipped
and counted, never guessed.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp

from services.brokers.errors import BrokerUnavailable, DataError
from services.brokers.ports import InstrumentMaster, Listing
from services.brokers.upstox.config import UpstoxEndpoints
from services.clock import IST, Clock, SystemClock, to_ist
from services.domain import Exchange, Instrument, InstrumentKind

log = logging.getLogger(__name__)

# Upstox segment -> (exchange, is the segment derivatives).
SEGMENTS: dict[str, Exchange] = {
    "NSE_EQ": Exchange.NSE,
    "NSE_INDEX": Exchange.NSE,
    "BSE_EQ": Exchange.BSE,
    "BSE_INDEX": Exchange.BSE,
    "NSE_FO": Exchange.NFO,
    "BSE_FO": Exchange.BFO,
    "MCX_FO": Exchange.MCX,
    "MCX_INDEX": Exchange.MCX,
    "NCD_FO": Exchange.CDS,
}
# The reverse, for orders: the segment an exchange's *tradable* instruments live in.
TRADING_SEGMENT: dict[Exchange, str] = {
    Exchange.NSE: "NSE_EQ",
    Exchange.BSE: "BSE_EQ",
    Exchange.NFO: "NSE_FO",
    Exchange.BFO: "BSE_FO",
    Exchange.MCX: "MCX_FO",
    Exchange.CDS: "NCD_FO",
}
_DERIVATIVE_KINDS = {
    "FUT": InstrumentKind.FUTURE,
    "CE": InstrumentKind.CALL,
    "PE": InstrumentKind.PUT,
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKLY_MONTH = "123456789OND"


class MasterUnreadable(ValueError):
    """The downloaded master is not the JSON array Upstox publishes."""


@dataclass(slots=True)
class ParsedMaster:
    """Instruments with their Upstox instrument keys, and what was left out and why."""

    rows: list[tuple[Instrument, str]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _dec(value: Any) -> Decimal:
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def _strike_text(strike: Decimal) -> str:
    text = f"{strike.normalize():f}"
    return text


def contract_symbol(
    underlying: str, kind: InstrumentKind, expiry: date, strike: Decimal | None, weekly: bool
) -> str:
    """The NSE/Kite trading symbol of a future or option."""
    yy = f"{expiry.year % 100:02d}"
    if kind is InstrumentKind.FUTURE:
        return f"{underlying}{yy}{_MONTHS[expiry.month - 1]}FUT"
    assert strike is not None
    if weekly:
        code = f"{yy}{_WEEKLY_MONTH[expiry.month - 1]}{expiry.day:02d}"
    else:
        code = f"{yy}{_MONTHS[expiry.month - 1]}"
    return f"{underlying}{code}{_strike_text(strike)}{kind.value}"


def expiry_date(value: Any) -> date | None:
    """Upstox expiries are epoch milliseconds (the contract's last moment, IST)."""
    if value in (None, "", 0):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value) / 1000, IST).date()
    return date.fromisoformat(str(value)[:10])


def _row(record: Mapping[str, Any], today: date, out: ParsedMaster) -> None:
    segment = str(record.get("segment") or "")
    exchange = SEGMENTS.get(segment)
    if exchange is None:
        out.skip(f"segment {segment or '?'}")
        return
    key = str(record["instrument_key"])
    itype = str(record.get("instrument_type") or "").upper()
    tick_paise = record.get("tick_size")
    tick = (_dec(tick_paise) / 100).normalize() if tick_paise else Decimal("0.05")
    lot = int(record.get("lot_size") or 1)
    freeze_raw = record.get("freeze_quantity")
    freeze = int(freeze_raw) if freeze_raw else None
    token = key  # the contract: an instrument's token is str(broker_id)
    name = str(record.get("name") or record.get("trading_symbol") or "")
    if segment.endswith("_INDEX") or itype == "INDEX":
        symbol = key.partition("|")[2].upper()
        instrument = Instrument(
            exchange, symbol, token, name, InstrumentKind.INDEX, tick, 1
        )
        out.rows.append((instrument, key))
        return
    if segment.endswith("_EQ"):
        instrument = Instrument(
            exchange,
            str(record["trading_symbol"]),
            token,
            name,
            InstrumentKind.EQUITY,
            tick,
            lot,
            freeze_quantity=freeze,
        )
        out.rows.append((instrument, key))
        return
    kind = _DERIVATIVE_KINDS.get(itype)
    if kind is None:
        out.skip(f"instrument type {itype or '?'}")
        return
    expiry = expiry_date(record.get("expiry"))
    if expiry is None:
        out.skip("contract without expiry")
        return
    if expiry < today:
        out.skip("expired")
        return
    underlying = str(record.get("underlying_symbol") or record.get("name") or "")
    strike = _dec(record["strike_price"]) if kind is not InstrumentKind.FUTURE else None
    symbol = contract_symbol(underlying, kind, expiry, strike, bool(record.get("weekly")))
    instrument = Instrument(
        exchange,
        symbol,
        token,
        name,
        kind,
        tick,
        lot,
        expiry=expiry,
        strike=strike,
        underlying=underlying,
        freeze_quantity=freeze,
    )
    out.rows.append((instrument, key))


def parse_records(records: Iterable[Mapping[str, Any]], today: date) -> ParsedMaster:
    out = ParsedMaster()
    seen: set[str] = set()
    for record in records:
        try:
            before = len(out.rows)
            _row(record, today, out)
        except (KeyError, TypeError, ValueError, InvalidOperation):
            out.skip("unreadable row")
            continue
        if len(out.rows) > before:
            canonical = out.rows[-1][0].key
            if canonical in seen:  # two listings under one canonical name: keep the first
                out.rows.pop()
                out.skip("duplicate symbol")
            else:
                seen.add(canonical)
    if out.skipped:
        log.info("Upstox master: %d instruments, skipped %s", len(out.rows), out.skipped)
    return out


def parse_master(raw: bytes, today: date) -> ParsedMaster:
    """Parse the bytes of ``complete.json.gz`` (or the same JSON uncompressed)."""
    try:
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        records = json.loads(data)
    except (OSError, EOFError, ValueError) as exc:
        raise MasterUnreadable(f"the Upstox instrument master cannot be read: {exc}") from exc
    if not isinstance(records, list):
        raise MasterUnreadable("the Upstox instrument master is not a list of instruments")
    return parse_records((r for r in records if isinstance(r, dict)), today)


class UpstoxInstruments:
    """The ``InstrumentProvider`` port: today's ``complete.json.gz`` as an ``InstrumentMaster``.

    The file is public (no token) and about 20 MB unpacked; it is fetched with aiohttp on the
    loop and parsed in a worker thread.
    """

    broker = "upstox"

    def __init__(
        self,
        endpoints: UpstoxEndpoints | None = None,
        *,
        clock: Clock | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.endpoints = endpoints or UpstoxEndpoints()
        self._clock = clock or SystemClock()
        self._timeout = timeout
        self.last_skipped: dict[str, int] = {}
        self.cache: MasterCache | None = None  # filled on every fetch when set

    async def download(self) -> bytes:
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(self.endpoints.instruments) as response,
            ):
                if response.status != 200:
                    raise BrokerUnavailable(
                        f"download the Upstox instrument master: HTTP {response.status}"
                    )
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BrokerUnavailable(
                f"download the Upstox instrument master: {type(exc).__name__}"
            ) from exc

    async def fetch_master(self) -> InstrumentMaster:
        raw = await self.download()
        today = to_ist(self._clock.now()).date()
        try:
            parsed = await asyncio.to_thread(parse_master, raw, today)
        except MasterUnreadable as exc:
            raise DataError(str(exc)) from exc
        self.last_skipped = dict(parsed.skipped)
        master = InstrumentMaster(
            self.broker, today, (Listing(inst, key) for inst, key in parsed.rows)
        )
        if self.cache is not None:
            self.cache.set(master)
        return master

    def master_from_cache(self, instruments: Iterable[Instrument], day: date) -> InstrumentMaster:
        """The day's master from cached instruments: Upstox's id *is* the token (a string)."""
        master = InstrumentMaster(self.broker, day, (Listing(i, i.token) for i in instruments))
        if self.cache is not None:
            self.cache.set(master)
        return master


class MasterCache:
    """The day's master, shared by execution, history and the feed of one broker build.

    Execution needs the master to turn ``NSE:INFY`` into ``NSE_EQ|INE009A01021`` before the
    first order; the app's daily load (``fetch_master``) fills this cache, and a part that
    needs it first (or on a new IST day) loads it itself, once, behind a lock.
    """

    def __init__(self, provider: UpstoxInstruments | None, clock: Clock | None = None) -> None:
        self._provider = provider
        self._clock = clock or SystemClock()
        self._master: InstrumentMaster | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def fixed(cls, master: InstrumentMaster) -> MasterCache:
        cache = cls(None)
        cache._master = master
        return cache

    @property
    def master(self) -> InstrumentMaster | None:
        return self._master

    def set(self, master: InstrumentMaster) -> None:
        self._master = master

    def _fresh(self) -> bool:
        master = self._master
        if master is None:
            return False
        if self._provider is None or master.day is None:
            return True
        return master.day >= to_ist(self._clock.now()).date()

    async def get(self) -> InstrumentMaster:
        if self._fresh():
            assert self._master is not None
            return self._master
        async with self._lock:
            if not self._fresh():
                if self._provider is None:
                    raise BrokerUnavailable("the Upstox instrument master is not loaded")
                self._master = await self._provider.fetch_master()
        assert self._master is not None
        return self._master
