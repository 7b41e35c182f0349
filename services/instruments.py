"""The instrument registry and the bundled simulated NSE universe.

Everything that validates or displays an order looks its instrument up here, so the tick
size, lot size and freeze quantity come from one place whatever broker filled the registry.
The bundled universe derives its futures and options from the session date (the current
monthly contract, expiring on the last Tuesday of the month, as NSE index derivatives do),
so a fresh install always shows live-looking contracts.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from importlib import resources

from services.calendar import default_calendar
from services.domain import Exchange, Instrument, InstrumentKind


@dataclass(frozen=True, slots=True)
class Reference:
    """Simulation seed data for one instrument: where its price starts and how it moves."""

    price: Decimal
    annual_volatility: Decimal


class InstrumentRegistry:
    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_key: dict[str, Instrument] = {}
        self._by_token: dict[str, Instrument] = {}
        self.add(instruments)

    def add(self, instruments: Iterable[Instrument]) -> None:
        for inst in instruments:
            self._by_key[inst.key] = inst
            self._by_token[inst.token] = inst

    def remove_expired(self, today: date) -> int:
        """Forget contracts that expired before ``today``; return how many went."""
        gone = [i for i in self._by_key.values() if i.expiry is not None and i.expiry < today]
        for inst in gone:
            del self._by_key[inst.key]
            self._by_token.pop(inst.token, None)
        return len(gone)

    def get(self, key: str) -> Instrument | None:
        return self._by_key.get(key)

    def by_token(self, token: str) -> Instrument | None:
        return self._by_token.get(token)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def search(self, text: str, limit: int = 20) -> list[Instrument]:
        """Return instruments matching ``text``: symbol prefix first, then name or key substring."""
        needle = text.strip().upper()
        if not needle:
            return []
        prefix: list[Instrument] = []
        contains: list[Instrument] = []
        for inst in self._by_key.values():
            symbol = inst.tradingsymbol.upper()
            if symbol.startswith(needle):
                prefix.append(inst)
            elif needle in symbol or needle in inst.name.upper() or needle in inst.key:
                contains.append(inst)
        # NSE first among equal symbols: "RELIANCE" means NSE:RELIANCE, BSE is one row down.
        prefix.sort(key=lambda i: (len(i.tradingsymbol), i.exchange is not Exchange.NSE, i.key))
        contains.sort(key=lambda i: (len(i.tradingsymbol), i.exchange is not Exchange.NSE, i.key))
        return (prefix + contains)[:limit]


def monthly_expiry(on_or_after: date) -> date:
    """Return the NSE monthly index expiry (last Tuesday) not before ``on_or_after``.

    When the last Tuesday is an exchange holiday the contract expires on the trading day
    before it, as NSE rolls it.
    """
    year, month = on_or_after.year, on_or_after.month
    exchange = default_calendar()
    while True:
        last_day = date(year, month, calendar.monthrange(year, month)[1])
        expiry = last_day - timedelta(days=(last_day.weekday() - calendar.TUESDAY) % 7)
        if not exchange.is_trading_day(expiry):
            expiry = exchange.previous_trading_day(expiry)
        if expiry >= on_or_after:
            return expiry
        month = month % 12 + 1
        year += month == 1


def _contract_prefix(root: str, expiry: date) -> str:
    return f"{root}{expiry:%y}{expiry.strftime('%b').upper()}"


def bundled_universe(session_day: date) -> tuple[list[Instrument], dict[str, Reference]]:
    """Return the simulated NSE and BSE universe for ``session_day`` and each instrument's
    seed data."""
    raw = json.loads(
        resources.files("resources").joinpath("instruments", "nse.json").read_text("utf-8")
    )
    tick = Decimal(raw["tick_size"])
    instruments: list[Instrument] = []
    refs: dict[str, Reference] = {}

    for row in raw["equities"]:
        inst = Instrument(
            exchange=Exchange.NSE,
            tradingsymbol=row["symbol"],
            token=str(row["token"]),
            name=row["name"],
            kind=InstrumentKind.EQUITY,
            tick_size=tick,
            lot_size=1,
        )
        instruments.append(inst)
        refs[inst.key] = Reference(Decimal(row["reference_price"]), Decimal("0.25"))

    expiry = monthly_expiry(session_day)
    n_strikes = int(raw["strikes_each_side"])
    for row in raw["indices"]:
        index = Instrument(
            exchange=Exchange.NSE,
            tradingsymbol=row["symbol"],
            token=str(row["token"]),
            name=row["name"],
            kind=InstrumentKind.INDEX,
            tick_size=tick,
            lot_size=1,
        )
        spot = Decimal(row["reference_price"])
        vol = Decimal(row["annual_volatility"])
        instruments.append(index)
        refs[index.key] = Reference(spot, vol)

        root = row["derivative_root"]
        prefix = _contract_prefix(root, expiry)
        common = {
            "exchange": Exchange.NFO,
            "name": root,
            "tick_size": tick,
            "lot_size": int(row["lot_size"]),
            "expiry": expiry,
            "underlying": index.key,
            "freeze_quantity": int(row["freeze_quantity"]),
        }
        token = int(index.token) * 10
        future = Instrument(
            tradingsymbol=f"{prefix}FUT", token=str(token), kind=InstrumentKind.FUTURE, **common
        )
        instruments.append(future)
        refs[future.key] = Reference(spot, vol)

        step = Decimal(row["strike_step"])
        atm = (spot / step).to_integral_value() * step
        for i in range(-n_strikes, n_strikes + 1):
            strike = atm + step * i
            for kind in (InstrumentKind.CALL, InstrumentKind.PUT):
                token += 1
                option = Instrument(
                    tradingsymbol=f"{prefix}{strike:f}{kind.value}",
                    token=str(token),
                    kind=kind,
                    strike=strike,
                    **common,
                )
                instruments.append(option)
                refs[option.key] = Reference(spot, vol)
    _add_bse(instruments, refs)
    return instruments, refs


def _add_bse(instruments: list[Instrument], refs: dict[str, Reference]) -> None:
    """SENSEX and a few BSE listings, after the NSE universe (so NSE's draws are unchanged)."""
    raw = json.loads(
        resources.files("resources").joinpath("instruments", "bse.json").read_text("utf-8")
    )
    tick = Decimal(raw["tick_size"])
    for row in raw["equities"]:
        inst = Instrument(Exchange.BSE, row["symbol"], str(row["token"]), row["name"],
                          InstrumentKind.EQUITY, tick, 1)  # fmt: skip
        instruments.append(inst)
        refs[inst.key] = Reference(Decimal(row["reference_price"]), Decimal("0.25"))
    for row in raw["indices"]:
        index = Instrument(Exchange.BSE, row["symbol"], str(row["token"]), row["name"],
                           InstrumentKind.INDEX, tick, 1)  # fmt: skip
        instruments.append(index)
        refs[index.key] = Reference(
            Decimal(row["reference_price"]), Decimal(row["annual_volatility"])
        )
