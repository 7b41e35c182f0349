"""The simulator's options: weekly expiries, a smile the chain can read back, moving open
interest, and an expiry day that unwinds."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from services.bus import EventBus
from services.clock import IST, ManualClock
from services.domain import Instrument, InstrumentKind
from services.instruments import bundled_universe
from services.options.chain import OptionChain, option_expiries
from services.simulator.market import MarketSimulator

SESSION = date(2026, 12, 1)  # a Tuesday: a NIFTY weekly expires today
NIFTY = "NSE:NIFTY 50"
INSTRUMENTS, REFS = bundled_universe(SESSION)


def _sim(instruments: list[Instrument], start: datetime, seed: int = 3) -> MarketSimulator:
    return MarketSimulator(instruments, REFS, EventBus(), ManualClock(start), seed=seed)


def _series(expiry: date) -> list[Instrument]:
    return [i for i in INSTRUMENTS if i.key == NIFTY or (i.name == "NIFTY" and i.expiry == expiry)]


def test_nifty_has_weekly_and_monthly_expiries_banknifty_monthly_only() -> None:
    nifty = option_expiries(INSTRUMENTS, NIFTY)
    assert len(nifty) >= 5 and all(d.weekday() in (0, 1) for d in nifty)  # Tue, or Mon if holiday
    assert len(option_expiries(INSTRUMENTS, "NSE:NIFTY BANK")) == 2
    weekly = [i for i in INSTRUMENTS if i.name == "NIFTY" and i.expiry == SESSION]
    assert weekly and all(re.fullmatch(r"NIFTY26D01\d+(CE|PE)", i.tradingsymbol) for i in weekly)
    assert not [i for i in weekly if i.kind is InstrumentKind.FUTURE]  # no weekly future
    assert len(INSTRUMENTS) >= 3_000


def test_smile_has_a_put_skew_that_the_chain_reads_back() -> None:
    expiry = option_expiries(INSTRUMENTS, NIFTY)[2]
    start = datetime.combine(SESSION, time(10, 0), tzinfo=IST)
    sim = _sim(_series(expiry), start)
    now = start
    for _ in range(400):
        sim.step(now, 50)
        now += timedelta(seconds=1)
    chain = OptionChain.from_instruments(INSTRUMENTS, NIFTY, expiry)
    snap = chain.compute(sim.last_tick, now, rate=0.065)
    assert snap.atm_strike is not None
    atm = snap.index_of(snap.atm_strike)
    assert atm is not None
    low_put = snap.quote(atm - 12, call=False)
    atm_call = snap.quote(atm, call=True)
    high_call = snap.quote(atm + 12, call=True)
    assert low_put and atm_call and high_call
    assert low_put.iv and atm_call.iv and high_call.iv
    assert low_put.iv > atm_call.iv * 1.04  # puts below spot cost more volatility
    assert low_put.iv > high_call.iv
    assert snap.pcr is not None and snap.max_pain is not None


def test_open_interest_moves_during_the_day() -> None:
    expiry = option_expiries(INSTRUMENTS, NIFTY)[-1]
    start = datetime.combine(SESSION, time(9, 20), tzinfo=IST)
    sim = _sim(_series(expiry), start)
    ticks = []
    now = start
    for _ in range(300):
        ticks += sim.step(now, 40)
        now += timedelta(seconds=2)
    options = [t for t in ticks if t.key != NIFTY]
    assert options and all(t.oi > 0 and t.oi % 65 == 0 for t in options)
    assert sum(1 for t in options if t.oi != t.oi_close) > len(options) // 2


def test_expiry_day_unwinds_open_interest_and_collapses_time_value() -> None:
    start = datetime.combine(SESSION, time(9, 15), tzinfo=IST)
    sim = _sim(_series(SESSION), start)
    now = start
    while now.time() < time(15, 29):
        sim.step(now, 30)
        now += timedelta(seconds=15)
    chain = OptionChain.from_instruments(INSTRUMENTS, NIFTY, SESSION)
    oi_now = oi_open = 0
    for inst in (*chain.calls, *chain.puts):
        tick = sim.last_tick(inst.key) if inst else None
        if tick is not None:
            oi_now += tick.oi
            oi_open += tick.oi_close
    assert oi_now < oi_open  # positions close into expiry
    spot = sim.last_tick(NIFTY)
    assert spot is not None
    snap = chain.compute(sim.last_tick, now, rate=0.065)
    assert snap.atm_strike is not None
    i = snap.index_of(snap.atm_strike)
    assert i is not None
    call = snap.quote(i, call=True)
    assert call is not None and call.ltp is not None
    intrinsic = max(spot.last_price - snap.atm_strike, 0)
    assert call.ltp - intrinsic < spot.last_price / 500  # a minute left: little time value
