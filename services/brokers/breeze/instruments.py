"""ICICI's security master: stock codes <-> exchange symbols, F&O contracts, cached per day.

Breeze names instruments by ICICI's own *stock codes* (``RELIND`` for Reliance, ``CNXBAN``
for Bank Nifty) plus exchange, expiry, strike and right; its stream names them by scrip token
(``4.1!2885``). The terminal names them ``EXCHANGE:SYMBOL`` as NSE and Kite do
(``NSE:RELIANCE``, ``NFO:NIFTY26SEP24500CE``). ``SecurityMaster.zip`` holds both sides, one
text file per segment; this module parses it (by header name, not position: the NSE file has
spaces after its commas, the F&O file does not) and builds the two-way map.

Units differ by file, as in the recorded files (research, 2026-09-02 sample): the cash files
give ``ticksize`` in rupees, the F&O files ``TickSize`` in paise; strikes are in rupees.
The master changes every trading day (lot sizes, new contracts, expiries), so it is fetched
once per IST date and kept on disk for that date only.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from services.brokers.breeze.config import NAME
from services.brokers.errors import BrokerUnavailable, DataError
from services.brokers.ports import InstrumentMaster, Listing
from services.clock import IST, Clock, to_ist
from services.domain import Exchange, Instrument, InstrumentKind

log = logging.getLogger(__name__)

# SecurityMaster.zip member -> our exchange. MCX and NDX (currency) are not traded here.
FILES: dict[str, Exchange] = {
    "NSEScripMaster.txt": Exchange.NSE,
    "BSEScripMaster.txt": Exchange.BSE,
    "FONSEScripMaster.txt": Exchange.NFO,
    "FOBSEScripMaster.txt": Exchange.BFO,
}
# The stream's exchange prefix per segment (breeze_connect.get_stock_token_value; BFO is 8 on
# the live rate stream).
STREAM_PREFIX: dict[Exchange, str] = {
    Exchange.NSE: "4",
    Exchange.NFO: "4",
    Exchange.BSE: "1",
    Exchange.BFO: "8",
}
# Index underlyings as the master spells them -> the names traders and NSE's F&O symbols use.
INDEX_NAMES: dict[str, str] = {
    "NIFTY 50": "NIFTY",
    "NIFTY BANK": "BANKNIFTY",
    "NIFTY FIN SERVICE": "FINNIFTY",
    "NIFTY MID SELECT": "MIDCPNIFTY",
    "NIFTY NEXT 50": "NIFTYNXT50",
    "SENSEX": "SENSEX",
    "BANKEX": "BANKEX",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKLY_MONTH = "123456789OND"
PAISE = Decimal("0.01")


class MasterError(ValueError):
    """The security master could not be read; the message says which file and row."""


@dataclass(frozen=True, slots=True)
class BreezeContract:
    """One instrument as Breeze names it, beside our ``Instrument``."""

    instrument: Instrument
    stock_code: str  # ICICI's code: RELIND, CNXBAN
    token: str  # scrip token on the stream ("2885", or "NIFTY 50" for an index)
    exchange_code: str  # Breeze's exchange word: NSE, BSE, NFO, BFO
    product: str  # "cash", "futures" or "options"
    expiry: date | None = None
    strike: Decimal | None = None
    right: str = "others"  # "call", "put", "others"

    @property
    def key(self) -> str:
        return self.instrument.key

    @property
    def stream_token(self) -> str:
        return f"{STREAM_PREFIX[self.instrument.exchange]}.1!{self.token}"

    @property
    def depth_token(self) -> str:
        return f"{STREAM_PREFIX[self.instrument.exchange]}.2!{self.token}"

    @property
    def expiry_param(self) -> str:
        """Breeze's expiry argument: the date as an ISO instant at 06:00 UTC."""
        return f"{self.expiry.isoformat()}T06:00:00.000Z" if self.expiry else ""

    @property
    def strike_param(self) -> str:
        return _plain(self.strike) if self.strike is not None else ""

    @property
    def broker_id(self) -> str:
        return f"{self.exchange_code}|{self.token}"

    def identity(self) -> tuple[str, str, date | None, Decimal | None, str]:
        return (self.exchange_code, self.stock_code, self.expiry, self.strike, self.right)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _dec(text: str, what: str, where: str) -> Decimal:
    try:
        return Decimal(text.strip() or "0")
    except InvalidOperation as exc:
        raise MasterError(f"{where}: {what} {text!r} is not a number") from exc


def _int(text: str, what: str, where: str) -> int:
    value = _dec(text, what, where)
    if value != value.to_integral_value():
        raise MasterError(f"{where}: {what} {text!r} is not a whole number")
    return int(value)


def _rows(text: str, name: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    header = next(reader, None)
    if not header:
        return
    names = [h.strip().strip('"').lower() for h in header]
    for number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(names):
            raise MasterError(f"{name} line {number}: {len(row)} columns, header has {len(names)}")
        yield number, {n: row[i].strip() for i, n in enumerate(names)}


def _expiry(text: str, where: str) -> date:
    try:
        return datetime.strptime(text.strip(), "%d-%b-%Y").replace(tzinfo=IST).date()
    except ValueError as exc:
        raise MasterError(f"{where}: expiry {text!r} is not DD-Mon-YYYY") from exc


def _cash(name: str, exchange: Exchange, text: str) -> Iterator[BreezeContract]:
    for number, row in _rows(text, name):
        where = f"{name} line {number}"
        token, code = row["token"], row["shortname"]
        symbol = row.get("exchangecode") or code
        series = row.get("series", "")
        if not token or not code:
            continue
        is_index = not token.isdigit()
        if is_index:
            kind, tradingsymbol = InstrumentKind.INDEX, symbol
        else:
            kind = InstrumentKind.EQUITY
            tradingsymbol = symbol if series in ("EQ", "") else f"{symbol}-{series}"
        tick = _dec(row.get("ticksize", "0"), "tick size", where)
        instrument = Instrument(
            exchange=exchange,
            tradingsymbol=tradingsymbol,
            token=f"{exchange.value}|{token}",  # str(broker_id)
            name=row.get("companyname", "") or symbol,
            kind=kind,
            tick_size=tick if tick > 0 else PAISE * 5,
            lot_size=max(1, _int(row.get("lotsize", "1"), "lot size", where)),
        )
        yield BreezeContract(instrument, code, token, exchange.value, "cash")


def underlying_name(exchange_symbol: str) -> str:
    return INDEX_NAMES.get(exchange_symbol, exchange_symbol.replace(" ", ""))


def fno_symbol(
    underlying: str, expiry: date, monthly: bool, strike: Decimal | None, right: str
) -> str:
    """NSE's F&O trading symbol, as Kite spells it (monthly ``NIFTY26SEP24500CE``, weekly
    ``NIFTY2692924500CE``, future ``NIFTY26SEPFUT``)."""
    yy = f"{expiry.year % 100:02d}"
    if strike is None:
        return f"{underlying}{yy}{_MONTHS[expiry.month - 1]}FUT"
    suffix = "CE" if right == "call" else "PE"
    if monthly:
        stem = f"{underlying}{yy}{_MONTHS[expiry.month - 1]}"
    else:
        stem = f"{underlying}{yy}{_WEEKLY_MONTH[expiry.month - 1]}{expiry.day:02d}"
    return f"{stem}{_plain(strike)}{suffix}"


def _fno(name: str, exchange: Exchange, text: str) -> Iterator[BreezeContract]:
    parsed: list[tuple[str, dict[str, str], date]] = []
    last_expiry: dict[tuple[str, int, int], date] = {}
    for number, row in _rows(text, name):
        where = f"{name} line {number}"
        expiry = _expiry(row["expirydate"], where)
        parsed.append((where, row, expiry))
        month = (row["shortname"], expiry.year, expiry.month)
        if month not in last_expiry or last_expiry[month] < expiry:
            last_expiry[month] = expiry
    for where, row, expiry in parsed:
        instrument_name = row["instrumentname"].upper()
        option_type = row.get("optiontype", "").upper()
        underlying = underlying_name(row.get("exchangecode") or row["shortname"])
        if instrument_name.startswith("FUT"):
            kind, strike, right, product = InstrumentKind.FUTURE, None, "others", "futures"
        elif instrument_name.startswith("OPT") and option_type in ("CE", "PE"):
            kind = InstrumentKind.CALL if option_type == "CE" else InstrumentKind.PUT
            strike = _dec(row["strikeprice"], "strike", where)
            right = "call" if option_type == "CE" else "put"
            product = "options"
        else:
            raise MasterError(f"{where}: unknown contract {instrument_name!r}/{option_type!r}")
        monthly = last_expiry[(row["shortname"], expiry.year, expiry.month)] == expiry
        tick_paise = _dec(row.get("ticksize", "5"), "tick size", where)
        freeze = _int(row.get("freezeqty", "0"), "freeze quantity", where)
        instrument = Instrument(
            exchange=exchange,
            tradingsymbol=fno_symbol(underlying, expiry, monthly, strike, right),
            token=f"{exchange.value}|{row['token']}",  # str(broker_id)
            name=underlying,
            kind=kind,
            tick_size=(tick_paise * PAISE) if tick_paise > 0 else PAISE * 5,
            lot_size=max(1, _int(row.get("lotsize", "1"), "lot size", where)),
            expiry=expiry,
            strike=strike,
            underlying=underlying,
            freeze_quantity=freeze or None,
        )
        yield BreezeContract(
            instrument,
            row["shortname"],
            row["token"],
            exchange.value,
            product,
            expiry,
            strike,
            right,
        )


class SecurityMaster(InstrumentMaster):
    """The parsed master: lookups by our key, by stream token and by Breeze's identity.

    The port's broker id is ``EXCHANGE|token`` (``NSE|2885``): a stock code alone is shared
    by an underlying's every contract and by NSE and BSE, and a scrip token is unique only
    within its segment.
    """

    def __init__(self, contracts: Iterable[BreezeContract], day: date | None = None) -> None:
        self.by_key: dict[str, BreezeContract] = {}
        self.by_stream_token: dict[str, BreezeContract] = {}
        self._by_identity: dict[tuple[str, str, date | None, Decimal | None, str], str] = {}
        self._cash_by_code: dict[tuple[str, str], str] = {}
        for contract in contracts:
            key = contract.key
            if key in self.by_key:
                continue  # the first row wins; a duplicate symbol is ICICI's data, not ours
            self.by_key[key] = contract
            self.by_stream_token[contract.stream_token] = contract
            self.by_stream_token[contract.depth_token] = contract
            self._by_identity[contract.identity()] = key
            if contract.product == "cash":
                self._cash_by_code.setdefault((contract.exchange_code, contract.stock_code), key)
        super().__init__(
            NAME, day, [Listing(c.instrument, c.broker_id) for c in self.by_key.values()]
        )

    def contract(self, key: str) -> BreezeContract | None:
        return self.by_key.get(key)

    def key_for(
        self,
        exchange_code: str,
        stock_code: str,
        expiry: date | None = None,
        strike: Decimal | None = None,
        right: str = "others",
    ) -> str | None:
        """Our key for an instrument as Breeze's order book and positions describe it."""
        exchange_code = exchange_code.upper()
        if expiry is None:
            return self._cash_by_code.get((exchange_code, stock_code))
        if strike is not None and strike == 0:
            strike = None
        return self._by_identity.get((exchange_code, stock_code, expiry, strike, right))


def parse_master(data: bytes, day: date | None = None) -> SecurityMaster:
    """Parse ``SecurityMaster.zip`` (bytes). Unknown members (MCX, NDX) are skipped."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise MasterError("SecurityMaster.zip is not a zip file") from exc
    contracts: list[BreezeContract] = []
    with archive:
        members = {Path(n).name: n for n in archive.namelist()}
        for file_name, exchange in FILES.items():
            member = members.get(file_name)
            if member is None:
                continue
            text = archive.read(member).decode("utf-8-sig", errors="replace")
            if exchange in (Exchange.NSE, Exchange.BSE):
                contracts.extend(_cash(file_name, exchange, text))
            else:
                contracts.extend(_fno(file_name, exchange, text))
    if not contracts:
        raise MasterError("SecurityMaster.zip holds no NSE, BSE or F&O instruments")
    return SecurityMaster(contracts, day)


class MasterCache:
    """The day's ``SecurityMaster.zip`` on disk, one file per IST date; older ones removed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, day: date) -> Path:
        return self.directory / f"SecurityMaster-{day.isoformat()}.zip"

    def load(self, day: date) -> bytes | None:
        path = self._path(day)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def save(self, day: date, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self._path(day).with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(self._path(day))
        for old in self.directory.glob("SecurityMaster-*.zip"):
            if old != self._path(day):
                old.unlink(missing_ok=True)


class BreezeInstruments:
    """The ``InstrumentProvider``: today's ``SecurityMaster.zip``, downloaded by us (not by the
    SDK, which would fetch it twice and without a timeout), cached on disk for the IST day."""

    broker = NAME

    def __init__(
        self,
        url: str,
        clock: Clock,
        *,
        cache: MasterCache | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.url = url
        self._clock = clock
        self._cache = cache
        self._timeout = timeout
        self.downloads = 0

    async def _download(self) -> bytes:
        import aiohttp

        self.downloads += 1
        try:
            timeout = aiohttp.ClientTimeout(total=self._timeout)
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(self.url) as response,
            ):
                if response.status != 200:
                    raise BrokerUnavailable(
                        f"ICICI's security master answered HTTP {response.status}; the "
                        "instrument list cannot be loaded now"
                    )
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BrokerUnavailable(
                f"ICICI's security master could not be downloaded ({type(exc).__name__}); "
                "the instrument list cannot be loaded now"
            ) from exc

    async def fetch_master(self) -> SecurityMaster:
        day = to_ist(self._clock.now()).date()
        data = await asyncio.to_thread(self._cache.load, day) if self._cache else None
        if data is None:
            data = await self._download()
            parsed = await self._parse(data, day)
            if self._cache is not None:
                await asyncio.to_thread(self._cache.save, day, data)
            return parsed
        return await self._parse(data, day)

    @staticmethod
    async def _parse(data: bytes, day: date) -> SecurityMaster:
        try:
            return await asyncio.to_thread(parse_master, data, day)
        except MasterError as exc:
            raise DataError(f"ICICI's security master could not be read: {exc}") from exc


class Masters:
    """The day's master shared by execution, feed and history; loaded on first use and again
    when the IST date changes (contracts expire, lot sizes change)."""

    def __init__(self, provider: BreezeInstruments, clock: Clock) -> None:
        self._provider = provider
        self._clock = clock
        self._master: SecurityMaster | None = None
        self._lock = asyncio.Lock()

    def current(self) -> SecurityMaster | None:
        return self._master

    def set(self, master: SecurityMaster) -> None:
        self._master = master

    async def get(self) -> SecurityMaster:
        today = to_ist(self._clock.now()).date()
        master = self._master
        if master is not None and master.day in (None, today):
            return master
        async with self._lock:
            master = self._master
            if master is None or master.day not in (None, today):
                master = await self._provider.fetch_master()
                self._master = master
            return master
