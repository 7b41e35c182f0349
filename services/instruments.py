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
from services.options.search import DerivativeIndex, parse_query


@dataclass(frozen=True, slots=True)
class Reference:
    """Simulation seed data for one instrument: where its price starts and how it moves."""

    price: Decimal
    annual_volatility: Decimal


class InstrumentRegistry:
    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_key: dict[str, Instrument] = {}
        self._by_token: dict[str, Instrument] = {}
        self._derivatives = DerivativeIndex()
        self.add(instruments)

    def add(self, instruments: Iterable[Instrument]) -> None:
        for inst in instruments:
            self._by_key[inst.key] = inst
            self._by_token[inst.token] = inst
            if inst.is_derivative:
                self._derivatives.add((inst,))

    def remove_expired(self, today: date) -> int:
        """Forget contracts that expired before ``today``; return how many went."""
        gone = [i for i in self._by_key.values() if i.expiry is not None and i.expiry < today]
        for inst in gone:
            del self._by_key[inst.key]
            self._by_token.pop(inst.token, None)
            self._derivatives.discard(inst)
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
        """Return instruments matching ``text``: symbol prefix first, then name or key substring.

        Words that name a contract ("NIFTY 26000 CE", "BANKNIFTY DEC FUT") are answered from
        the derivatives index instead (``services.options.search``).
        """
        needle = text.strip().upper()
        if not needle:
            return []
        query = parse_query(needle)
        contracts: list[Instrument] = []
        if query is not None and query.is_derivative:
            contracts = self._derivatives.search(query, limit)
            if len(contracts) >= limit:
                return contracts
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
        seen = {i.key for i in contracts}  # "NIFTY 50" is also the index, not only strike 50..
        return (contracts + [i for i in prefix + contains if i.key not in seen])[:limit]


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


def weekly_expiries(on_or_after: date, count: int) -> list[date]:
    """Return the next ``count`` weekly index expiries (Tuesdays) not before ``on_or_after``.

    A Tuesday holiday moves that week's expiry to the trading day before, as NSE does.
    """
    exchange = default_calendar()
    tuesday = on_or_after + timedelta(days=(calendar.TUESDAY - on_or_after.weekday()) % 7)
    out: list[date] = []
    while len(out) < count:
        expiry = tuesday
        if not exchange.is_trading_day(expiry):
            expiry = exchange.previous_trading_day(expiry)
        if expiry >= on_or_after:
            out.append(expiry)
        tuesday += timedelta(days=7)
    return out


def _contract_prefix(root: str, expiry: date) -> str:
    return f"{root}{expiry:%y}{expiry.strftime('%b').upper()}"


_WEEKLY_MONTH = "123456789OND"


def _weekly_prefix(root: str, expiry: date) -> str:
    """Kite's weekly option symbol: ``NIFTY25D0926000CE`` is 9 December 2025."""
    return f"{root}{expiry:%y}{_WEEKLY_MONTH[expiry.month - 1]}{expiry:%d}"


def _stock_lot(price: Decimal) -> int:
    """A synthetic stock F&O lot: about Rs 7.5 lakh of contract value, in multiples of 25.

    NSE sets real lots twice a year from the same rule of thumb; a broker's master carries
    the real ones.
    """
    return max(1, round(750_000 / float(price) / 25)) * 25


def _stock_strike_step(price: Decimal) -> Decimal:
    """The largest usual NSE strike step not above 1% of the price."""
    steps = ("1", "2.5", "5", "10", "20", "50", "100", "250")
    fitting = [Decimal(s) for s in steps if Decimal(s) <= price / 100]
    return fitting[-1] if fitting else Decimal(steps[0])


def _chain(
    root: str,
    underlying: Instrument,
    spot: Decimal,
    vol: Decimal,
    expiry: date,
    prefix: str,
    *,
    step: Decimal,
    strikes_each_side: int,
    lot: int,
    freeze: int | None,
    tick: Decimal,
    first_token: int,
    future: bool,
) -> tuple[list[Instrument], dict[str, Reference]]:
    """One expiry's future (when listed) and strikes around the money, tokens from ``first``."""
    common = {
        "exchange": Exchange.NFO,
        "name": root,
        "tick_size": tick,
        "lot_size": lot,
        "expiry": expiry,
        "underlying": underlying.key,
        "freeze_quantity": freeze,
    }
    out: list[Instrument] = []
    token = first_token
    if future:
        out.append(
            Instrument(
                tradingsymbol=f"{_contract_prefix(root, expiry)}FUT",
                token=str(token),
                kind=InstrumentKind.FUTURE,
                **common,  # type: ignore[arg-type]
            )
        )
    atm = (spot / step).to_integral_value() * step
    for i in range(-strikes_each_side, strikes_each_side + 1):
        strike = atm + step * i
        for kind in (InstrumentKind.CALL, InstrumentKind.PUT):
            token += 1
            out.append(
                Instrument(
                    tradingsymbol=f"{prefix}{strike.normalize():f}{kind.value}",
                    token=str(token),
                    kind=kind,
                    strike=strike,
                    **common,  # type: ignore[arg-type]
                )
            )
    return out, {i.key: Reference(spot, vol) for i in out}


# Tokens for contracts beyond the current monthly index series: a synthetic range well
# clear of the equity tokens (~5,000,000) and the index series (index token x 10).
_EXTRA_TOKEN_BASE = 100_000_000
_STOCK_FREEZE_LOTS = 30  # synthetic: NSE derives stock freeze limits from market-wide limits
_EXTRA_TOKENS_PER_SERIES = 1_000


def bundled_universe(session_day: date) -> tuple[list[Instrument], dict[str, Reference]]:
    """Return the simulated NSE and BSE universe for ``session_day`` and each instrument's
    seed data.

    Indices: futures for this and next month, options on the monthly expiries and, where
    ``weekly_expiries`` is set (NIFTY), on the next weekly Tuesdays too. Stocks: futures and
    options for this and next month. Around 4,000 instruments, so the memory benchmark can
    subscribe to 3,000 of them. BSE (SENSEX and a few stocks) comes last, so NSE's draws in
    the simulator are unchanged.
    """
    raw = json.loads(
        resources.files("resources").joinpath("instruments", "nse.json").read_text("utf-8")
    )
    tick = Decimal(raw["tick_size"])
    instruments: list[Instrument] = []
    refs: dict[str, Reference] = {}
    stock_fno: list[Instrument] = []
    monthly = monthly_expiry(session_day)
    next_monthly = monthly_expiry(monthly + timedelta(days=1))
    series = 0

    def extra_token() -> int:
        nonlocal series
        series += 1
        return _EXTRA_TOKEN_BASE + series * _EXTRA_TOKENS_PER_SERIES

    stock_strikes = int(raw["stock_strikes_each_side"])
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
        price = Decimal(row["reference_price"])
        instruments.append(inst)
        refs[inst.key] = Reference(price, Decimal("0.25"))
        lot = _stock_lot(price)
        for expiry in (monthly, next_monthly):
            contracts, seeds = _chain(
                row["symbol"], inst, price, Decimal("0.25"), expiry,
                _contract_prefix(row["symbol"], expiry),
                step=_stock_strike_step(price), strikes_each_side=stock_strikes,
                lot=lot, freeze=lot * _STOCK_FREEZE_LOTS, tick=tick,
                first_token=extra_token(), future=True,
            )
            stock_fno += contracts
            refs.update(seeds)

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
        weeklies = [
            d for d in weekly_expiries(session_day, int(row.get("weekly_expiries", 0)))
            if d not in (monthly, next_monthly)
        ]
        for expiry in sorted({monthly, next_monthly, *weeklies}):
            is_monthly = expiry in (monthly, next_monthly)
            contracts, seeds = _chain(
                root, index, spot, vol, expiry,
                _contract_prefix(root, expiry) if is_monthly else _weekly_prefix(root, expiry),
                step=Decimal(row["strike_step"]), strikes_each_side=n_strikes,
                lot=int(row["lot_size"]), freeze=int(row["freeze_quantity"]), tick=tick,
                # The current monthly keeps the tokens it always had (index token x 10).
                first_token=int(index.token) * 10 if expiry == monthly else extra_token(),
                future=is_monthly,
            )
            instruments += contracts
            refs.update(seeds)
    # Stock F&O after the indices' series, so "the first future" is still NIFTY's.
    instruments += stock_fno
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
