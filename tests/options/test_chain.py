"""The option chain snapshot: IV and Greeks per side, ATM, PCR, max pain, change in OI."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pytest

from services.clock import IST
from services.domain import Exchange, Instrument, InstrumentKind, Tick
from services.options.chain import OptionChain, max_pain, option_expiries, option_underlyings
from services.options.pricing import Model, greeks, years_to_expiry

EXPIRY = date(2026, 12, 29)
NOW = datetime(2026, 12, 22, 11, 0, tzinfo=IST)
RATE = 0.065


def _contract(strike: int, kind: InstrumentKind, token: int) -> Instrument:
    return Instrument(
        exchange=Exchange.NFO,
        tradingsymbol=f"NIFTY26DEC{strike}{kind.value}",
        token=token,
        name="NIFTY",
        kind=kind,
        tick_size=Decimal("0.05"),
        lot_size=65,
        expiry=EXPIRY,
        strike=Decimal(strike),
        underlying="NSE:NIFTY 50",
    )


def _tick(key: str, price: float, oi: int = 0, oi_close: int = 0, up: int = 0) -> Tick:
    p = Decimal(str(round(price, 2)))
    return Tick(key, NOW, p, 65, 6500, p, p, p, p + up, None, oi, oi_close)


@pytest.fixture
def market() -> tuple[OptionChain, dict[str, Tick]]:
    strikes = list(range(25_500, 26_501, 100))
    contracts = []
    for n, k in enumerate(strikes):
        contracts += [
            _contract(k, InstrumentKind.CALL, 2 * n),
            _contract(k, InstrumentKind.PUT, 2 * n + 1),
        ]
    future = Instrument(
        Exchange.NFO, "NIFTY26DECFUT", 99, "NIFTY", InstrumentKind.FUTURE, Decimal("0.05"), 65,
        expiry=EXPIRY, underlying="NSE:NIFTY 50",
    )
    chain = OptionChain.from_instruments([*contracts, future], "NSE:NIFTY 50", EXPIRY)
    fwd, years = 26_030.0, years_to_expiry(EXPIRY, NOW)
    ticks = {"NSE:NIFTY 50": _tick("NSE:NIFTY 50", 26_000), future.key: _tick(future.key, fwd)}
    for inst in contracts:
        assert inst.strike is not None
        k = float(inst.strike)
        vol = 0.13 + 0.5 * math.log(k / fwd) ** 2
        value = float(greeks(fwd, k, years, vol, inst.kind is InstrumentKind.CALL, rate=RATE).value)
        puts_heavier = 2 if inst.kind is InstrumentKind.PUT else 1
        oi = 1000 * (1 + abs(int(k) - 26_000) // 100) * puts_heavier
        ticks[inst.key] = _tick(inst.key, value, oi=oi, oi_close=oi - 130, up=1)
    return chain, ticks


def test_snapshot_prices_every_side_with_greeks(
    market: tuple[OptionChain, dict[str, Tick]],
) -> None:
    chain, ticks = market
    snap = chain.compute(ticks.get, NOW, rate=RATE)
    assert snap.forward == pytest.approx(26_030.0)
    assert snap.atm_strike == Decimal(26_000)
    row = snap.row_for(Decimal(26_000))
    assert row is not None and row.call is not None and row.put is not None
    assert row.call.iv == pytest.approx(0.13, abs=2e-4)  # LTP is on the paisa grid
    assert row.call.delta is not None and 0.5 < row.call.delta < 0.6
    assert row.put.delta is not None and row.call.delta - row.put.delta == pytest.approx(
        math.exp(-RATE * years_to_expiry(EXPIRY, NOW)), abs=1e-3
    )
    assert row.call.theta is not None and row.call.theta < 0
    assert row.call.oi_change == 130 and row.call.change == Decimal(-1)
    assert snap.lot_size == 65


def test_pcr_and_max_pain(market: tuple[OptionChain, dict[str, Tick]]) -> None:
    chain, ticks = market
    snap = chain.compute(ticks.get, NOW, rate=RATE)
    assert snap.pcr == pytest.approx(2.0)
    strikes = np.array([float(s) for s in chain.strikes])
    call_oi = np.array([ticks[c.key].oi for c in chain.calls if c], dtype=float)
    put_oi = np.array([ticks[p.key].oi for p in chain.puts if p], dtype=float)
    brute = min(
        strikes,
        key=lambda s: sum(max(s - k, 0) * c + max(k - s, 0) * p
                          for k, c, p in zip(strikes, call_oi, put_oi, strict=True)),
    )
    assert snap.max_pain == Decimal(int(brute))


def test_max_pain_hand_example() -> None:
    # Calls heavy at 110, puts heavy at 90: writers lose least at 100.
    strikes = np.array([90.0, 100.0, 110.0])
    idx = max_pain(strikes, np.array([0.0, 10.0, 500.0]), np.array([500.0, 10.0, 0.0]))
    assert idx == 1
    assert max_pain(np.array([90.0]), np.zeros(1), np.zeros(1)) is None


def test_missing_prices_show_as_none_not_nan(market: tuple[OptionChain, dict[str, Tick]]) -> None:
    chain, ticks = market
    key = chain.calls[0].key if chain.calls[0] else ""
    del ticks[key]
    ticks[chain.puts[-1].key if chain.puts[-1] else ""] = _tick("x", 0.05)  # below intrinsic
    snap = chain.compute(ticks.get, NOW, rate=RATE)
    first, last = snap.rows[0], snap.rows[-1]
    assert first.call is not None and first.call.ltp is None and first.call.iv is None
    assert last.put is not None and last.put.iv is None and last.put.delta is None
    for row in snap.rows:
        for q in (row.call, row.put):
            assert q is not None
            for v in (q.iv, q.delta, q.gamma, q.theta, q.vega):
                assert v is None or not math.isnan(v)


def test_weekly_without_a_future_uses_the_synthetic_forward(
    market: tuple[OptionChain, dict[str, Tick]],
) -> None:
    chain, ticks = market
    contracts = [*filter(None, chain.calls), *filter(None, chain.puts)]
    weekly = OptionChain("NSE:NIFTY 50", EXPIRY, contracts)
    snap = weekly.compute(ticks.get, NOW, rate=RATE)
    assert snap.forward == pytest.approx(26_030.0, abs=1.0)
    bs = weekly.compute(ticks.get, NOW, rate=RATE, model=Model.BLACK_SCHOLES)
    assert bs.forward == 26_000.0


def test_listing_helpers(market: tuple[OptionChain, dict[str, Tick]]) -> None:
    chain, _ = market
    contracts = [*filter(None, chain.calls)]
    assert option_underlyings(contracts) == ["NSE:NIFTY 50"]
    assert option_expiries(contracts, "NSE:NIFTY 50") == [EXPIRY]
