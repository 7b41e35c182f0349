"""One underlying's option chain for one expiry, priced in a single vectorised pass.

``OptionChain`` is built once from the instrument master (strikes, contracts, lot size) and
holds the strike and flag arrays; ``compute`` takes the latest ticks and returns an immutable
``ChainSnapshot`` with LTP, change, OI, change in OI, volume, IV and Greeks per side, the ATM
strike, the put-call ratio and max pain. The view only formats the snapshot.

The underlying of Black-76 is the future of the same expiry when one trades; weekly expiries
have none, so the chain then uses the synthetic forward from put-call parity at the strike
nearest spot (``F = K + (C - P) e^{rT}``), which is what the market itself prices off, and
falls back to spot carried at the rate when the ATM pair has not traded yet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import numpy as np

from services.domain import Instrument, InstrumentKind, Tick
from services.options.iv import implied_volatility_array
from services.options.pricing import FloatArray, Model, greeks, years_to_expiry


@dataclass(frozen=True, slots=True)
class ChainQuote:
    """One side (CE or PE) of one strike. ``None`` fields have no value yet and show "—"."""

    instrument: Instrument
    ltp: Decimal | None
    change: Decimal | None
    oi: int
    oi_change: int
    volume: int
    iv: float | None
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None

    @property
    def key(self) -> str:
        return self.instrument.key


@dataclass(frozen=True, slots=True)
class ChainRow:
    strike: Decimal
    call: ChainQuote | None
    put: ChainQuote | None


class ChainSnapshot:
    """The chain at one moment. Per-contract figures are kept as arrays (calls then puts) and
    turned into ``ChainQuote`` records only when asked for, so a view that shows the 30
    strikes around ATM does not pay for the other 170."""

    __slots__ = (
        "_contracts",
        "_delta",
        "_gamma",
        "_iv",
        "_oi_change",
        "_rows",
        "_theta",
        "_ticks",
        "_vega",
        "atm_strike",
        "computed_at",
        "expiry",
        "forward",
        "lot_size",
        "max_pain",
        "pcr",
        "spot",
        "strikes",
        "underlying",
    )

    def __init__(
        self,
        *,
        underlying: str,
        expiry: date,
        computed_at: datetime,
        spot: Decimal | None,
        forward: float | None,
        atm_strike: Decimal | None,
        pcr: float | None,
        max_pain: Decimal | None,
        lot_size: int,
        strikes: tuple[Decimal, ...],
        contracts: tuple[Instrument | None, ...],
        ticks: list[Tick | None],
        iv: FloatArray,
        greeks: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None,
        oi_change: Callable[[str, Tick], int],
    ) -> None:
        self.underlying = underlying
        self.expiry = expiry
        self.computed_at = computed_at
        self.spot = spot
        self.forward = forward  # the price the Greeks are taken against
        self.atm_strike = atm_strike
        self.pcr = pcr  # total put OI / total call OI
        self.max_pain = max_pain  # the settlement that pays option buyers least
        self.lot_size = lot_size
        self.strikes = strikes
        self._contracts = contracts
        self._ticks = ticks
        self._iv = iv
        nan = np.full_like(iv, np.nan)
        self._delta, self._gamma, self._theta, self._vega = greeks or (nan, nan, nan, nan)
        self._oi_change = oi_change
        self._rows: tuple[ChainRow, ...] | None = None

    def __len__(self) -> int:
        return len(self.strikes)

    def quote(self, index: int, call: bool) -> ChainQuote | None:
        """The CE (``call``) or PE side of the ``index``-th strike, or None if not listed."""
        j = index if call else len(self.strikes) + index
        inst = self._contracts[j]
        if inst is None:
            return None
        iv = _opt(float(self._iv[j]))
        greek: tuple[float | None, ...] = (None, None, None, None)
        if iv is not None:
            greek = tuple(
                _opt(float(a[j])) for a in (self._delta, self._gamma, self._theta, self._vega)
            )
        t = self._ticks[j]
        if t is None:
            return ChainQuote(inst, None, None, 0, 0, 0, None, *greek)
        change = t.last_price - t.close if t.close else None
        return ChainQuote(
            inst, t.last_price, change, t.oi, self._oi_change(inst.key, t), t.volume, iv, *greek
        )

    def row(self, index: int) -> ChainRow:
        return ChainRow(self.strikes[index], self.quote(index, True), self.quote(index, False))

    @property
    def rows(self) -> tuple[ChainRow, ...]:
        if self._rows is None:
            self._rows = tuple(self.row(i) for i in range(len(self.strikes)))
        return self._rows

    def index_of(self, strike: Decimal) -> int | None:
        try:
            return self.strikes.index(strike)
        except ValueError:
            return None

    def row_for(self, strike: Decimal) -> ChainRow | None:
        i = self.index_of(strike)
        return None if i is None else self.row(i)


def option_underlyings(instruments: Iterable[Instrument]) -> list[str]:
    """Keys of every underlying that has options, sorted."""
    return sorted(
        {
            i.underlying
            for i in instruments
            if i.underlying and i.kind in (InstrumentKind.CALL, InstrumentKind.PUT)
        }
    )


def option_expiries(instruments: Iterable[Instrument], underlying: str) -> list[date]:
    """Every option expiry of ``underlying``, nearest first."""
    return sorted(
        {
            i.expiry
            for i in instruments
            if i.underlying == underlying
            and i.expiry is not None
            and i.kind in (InstrumentKind.CALL, InstrumentKind.PUT)
        }
    )


def max_pain(strikes: FloatArray, call_oi: FloatArray, put_oi: FloatArray) -> int | None:
    """Index of the strike at which expiring options pay their holders the least in total.

    ``strikes`` ascending. With settlement at strike i, calls at or below it pay
    ``S_i * sum(C) - sum(C*K)`` over j <= i and puts above it ``sum(P*K) - S_i * sum(P)`` over
    j > i: two cumulative sums, O(n) instead of the n-by-n table.
    """
    if strikes.size == 0 or (call_oi.sum() + put_oi.sum()) <= 0:
        return None
    cum_c = np.cumsum(call_oi)
    cum_ck = np.cumsum(call_oi * strikes)
    rev_p = np.cumsum(put_oi[::-1])[::-1]  # sum over j >= i
    rev_pk = np.cumsum((put_oi * strikes)[::-1])[::-1]
    payout = strikes * cum_c - cum_ck + (rev_pk - strikes * rev_p)
    return int(np.argmin(payout))


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else x


class OptionChain:
    """The contracts of ``underlying`` expiring on ``expiry``, keyed by strike."""

    def __init__(
        self,
        underlying: str,
        expiry: date,
        contracts: Iterable[Instrument],
        future: Instrument | None = None,
    ) -> None:
        calls: dict[Decimal, Instrument] = {}
        puts: dict[Decimal, Instrument] = {}
        for inst in contracts:
            if inst.underlying != underlying or inst.expiry != expiry or inst.strike is None:
                continue
            if inst.kind is InstrumentKind.CALL:
                calls[inst.strike] = inst
            elif inst.kind is InstrumentKind.PUT:
                puts[inst.strike] = inst
        self.underlying = underlying
        self.expiry = expiry
        self.future = future
        self.strikes: list[Decimal] = sorted(set(calls) | set(puts))
        self.calls = [calls.get(s) for s in self.strikes]
        self.puts = [puts.get(s) for s in self.strikes]
        any_contract = next((i for i in (*self.calls, *self.puts) if i is not None), None)
        self.lot_size = any_contract.lot_size if any_contract is not None else 1
        n = len(self.strikes)
        self._strike_f = np.array([float(s) for s in self.strikes], dtype=np.float64)
        # Two rows per strike, calls then puts, so one vectorised call prices both sides.
        self._k2 = np.concatenate([self._strike_f, self._strike_f])
        self._is_call2 = np.concatenate([np.ones(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)])
        self._oi_base: dict[str, int] = {}
        self._contracts: tuple[Instrument | None, ...] = (*self.calls, *self.puts)
        self._keys = [None if i is None else i.key for i in self._contracts]
        self._strike_tuple = tuple(self.strikes)

    @classmethod
    def from_instruments(
        cls, instruments: Iterable[Instrument], underlying: str, expiry: date
    ) -> OptionChain:
        contracts: list[Instrument] = []
        future: Instrument | None = None
        for inst in instruments:
            if inst.underlying != underlying or inst.expiry != expiry:
                continue
            if inst.kind is InstrumentKind.FUTURE:
                future = inst
            else:
                contracts.append(inst)
        return cls(underlying, expiry, contracts, future)

    def keys(self) -> list[str]:
        """Every key the chain needs ticks for: underlying, future, and each contract."""
        keys = [self.underlying]
        if self.future is not None:
            keys.append(self.future.key)
        keys += [i.key for i in (*self.calls, *self.puts) if i is not None]
        return keys

    def _oi_change(self, key: str, tick: Tick) -> int:
        if tick.oi_close:
            return tick.oi - tick.oi_close
        base = self._oi_base.setdefault(key, tick.oi)  # no base sent: since first seen
        return tick.oi - base

    def compute(
        self,
        last_tick: Callable[[str], Tick | None],
        now: datetime,
        *,
        rate: float,
        model: Model = Model.BLACK_76,
        dividend_yield: float = 0.0,
    ) -> ChainSnapshot:
        n = len(self.strikes)
        spot_tick = last_tick(self.underlying)
        spot = spot_tick.last_price if spot_tick is not None else None
        years = years_to_expiry(self.expiry, now)

        ticks: list[Tick | None] = [
            None if key is None else last_tick(key) for key in self._keys
        ]
        ltp = np.full(2 * n, np.nan)
        oi = np.zeros(2 * n)
        for j, t in enumerate(ticks):
            if t is not None:
                ltp[j] = float(t.last_price)
                oi[j] = t.oi

        underlying_price = self._underlying_price(last_tick, spot, ltp, years, rate, model)
        if underlying_price is None or n == 0:
            iv = np.full(2 * n, np.nan)
            g = None
        else:
            iv = implied_volatility_array(
                ltp,
                underlying_price,
                self._k2,
                years,
                self._is_call2,
                rate=rate,
                model=model,
                dividend_yield=dividend_yield,
            )
            g = greeks(
                underlying_price,
                self._k2,
                years,
                iv,
                self._is_call2,
                rate=rate,
                model=model,
                dividend_yield=dividend_yield,
            )

        call_oi, put_oi = oi[:n], oi[n:]
        total_call = float(call_oi.sum())
        pcr = float(put_oi.sum()) / total_call if total_call > 0 else None
        pain = max_pain(self._strike_f, call_oi, put_oi)
        atm = None
        if underlying_price is not None and n:
            atm = self.strikes[int(np.argmin(np.abs(self._strike_f - underlying_price)))]
        return ChainSnapshot(
            underlying=self.underlying,
            expiry=self.expiry,
            computed_at=now,
            spot=spot,
            forward=underlying_price,
            atm_strike=atm,
            pcr=pcr,
            max_pain=None if pain is None else self.strikes[pain],
            lot_size=self.lot_size,
            strikes=self._strike_tuple,
            contracts=self._contracts,
            ticks=ticks,
            iv=iv,
            greeks=None if g is None else (g.delta, g.gamma, g.theta, g.vega),
            oi_change=self._oi_change,
        )

    def _underlying_price(
        self,
        last_tick: Callable[[str], Tick | None],
        spot: Decimal | None,
        ltp: FloatArray,
        years: float,
        rate: float,
        model: Model,
    ) -> float | None:
        if model is Model.BLACK_SCHOLES:
            return None if spot is None else float(spot)
        if self.future is not None:
            fut = last_tick(self.future.key)
            if fut is not None:
                return float(fut.last_price)
        if spot is None:
            return None
        s = float(spot)
        n = len(self.strikes)
        if n:
            # Synthetic forward from the strike nearest spot whose call and put both traded.
            order = np.argsort(np.abs(self._strike_f - s))
            for i in order[:5]:
                c, p = ltp[i], ltp[n + i]
                if not (math.isnan(c) or math.isnan(p)):
                    return float(self._strike_f[i] + (c - p) * math.exp(rate * years))
        return s * math.exp(rate * years)
