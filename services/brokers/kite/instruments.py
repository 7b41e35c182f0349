"""Kite's daily instrument master (CSV) parsed into ``Instrument`` records.

The master is the only trustworthy source of tick size, lot size and expiry: NSE revises
tick sizes by price band and SEBI revises lot sizes, so the terminal validates orders against
the file of the day, never against constants. We parse the CSV ourselves (not the SDK's
parser) to keep tick sizes exact: the SDK turns them into floats.

Rows for exchanges the terminal does not trade (BCD, NCO, MCXSX, mutual funds ...) are
skipped and counted, not guessed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from services.brokers.ports import InstrumentMaster, Listing
from services.clock import Clock, to_ist
from services.domain import Exchange, Instrument, InstrumentKind

_KINDS = {
    "EQ": InstrumentKind.EQUITY,
    "FUT": InstrumentKind.FUTURE,
    "CE": InstrumentKind.CALL,
    "PE": InstrumentKind.PUT,
}
_DERIVATIVES = frozenset({InstrumentKind.FUTURE, InstrumentKind.CALL, InstrumentKind.PUT})
_EXCHANGES = {e.value: e for e in Exchange}
REQUIRED_COLUMNS = (
    "instrument_token",
    "tradingsymbol",
    "name",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)


class InstrumentMasterError(ValueError):
    """The file is not a Kite instrument master (missing columns or a malformed row)."""


@dataclass
class ParsedMaster:
    listings: list[Listing]  # each instrument with its int instrument token
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows

    @property
    def instruments(self) -> list[Instrument]:
        return [listing.instrument for listing in self.listings]


def _decimal(value: str, column: str, line: int) -> Decimal:
    try:
        return Decimal(value.strip() or "0")
    except InvalidOperation:
        raise InstrumentMasterError(f"line {line}: {column} {value!r} is not a number") from None


def parse_instruments(data: bytes | str) -> ParsedMaster:
    """Parse ``/instruments`` (all exchanges) or ``/instruments/{exchange}``."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    reader = csv.DictReader(io.StringIO(text.strip()))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise InstrumentMasterError(f"not a Kite instrument master: missing {missing}")
    result = ParsedMaster([])
    for line, row in enumerate(reader, start=2):
        exchange = _EXCHANGES.get(row["exchange"])
        if exchange is None:
            reason = f"exchange {row['exchange']}"
            result.skipped[reason] = result.skipped.get(reason, 0) + 1
            continue
        kind = _KINDS.get(row["instrument_type"])
        if row["segment"] == "INDICES":
            kind = InstrumentKind.INDEX
        if kind is None:
            reason = f"instrument type {row['instrument_type']}"
            result.skipped[reason] = result.skipped.get(reason, 0) + 1
            continue
        tick = _decimal(row["tick_size"], "tick_size", line)
        try:
            token = int(row["instrument_token"])
            lot = int(row["lot_size"] or "1")
            expiry = date.fromisoformat(row["expiry"]) if row["expiry"] else None
        except ValueError as exc:
            raise InstrumentMasterError(f"line {line}: {exc}") from None
        strike = _decimal(row["strike"], "strike", line)
        name = row["name"].strip()
        is_option = kind in (InstrumentKind.CALL, InstrumentKind.PUT)
        instrument = Instrument(
            exchange=exchange,
            tradingsymbol=row["tradingsymbol"],
            token=str(token),
            name=name or row["tradingsymbol"],
            kind=kind,
            # An index has no order book; Kite lists tick 0 for some. Keep a usable grid.
            tick_size=tick if tick > 0 else Decimal("0.05"),
            lot_size=max(lot, 1),
            expiry=expiry,
            strike=strike if is_option else None,
            underlying=(name or None) if kind in _DERIVATIVES else None,
        )
        result.listings.append(Listing(instrument, token))
    return result


class KiteInstruments:
    """The ``InstrumentProvider`` port: Kite's CSV master; the broker id is the int token."""

    broker = "kite"

    def __init__(self, download: Callable[[], Awaitable[ParsedMaster]], clock: Clock) -> None:
        self._download = download
        self._clock = clock
        self.skipped: dict[str, int] = {}

    async def fetch_master(self) -> InstrumentMaster:
        parsed = await self._download()
        self.skipped = parsed.skipped
        return InstrumentMaster(
            self.broker,
            to_ist(self._clock.now()).date(),
            parsed.listings,
        )

    def master_from_cache(self, instruments: Iterable[Instrument], day: date) -> InstrumentMaster:
        return InstrumentMaster(self.broker, day, (Listing(i, int(i.token)) for i in instruments))
