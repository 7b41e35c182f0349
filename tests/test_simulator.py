"""The simulated market: prices on the grid, sane books, reproducible, realistic enough."""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from services.bars import bucket_end
from services.bus import CONNECTION, TICKS, EventBus
from services.clock import IST, ManualClock, SystemClock, is_market_open, is_trading_day
from services.domain import ConnectionStatus, InstrumentKind, Tick, Timeframe, is_on_tick
from services.instruments import bundled_universe
from services.simulator import MarketSimulator
from services.simulator.pricing import RISK_FREE_RATE, black_scholes

MONDAY = date(2026, 3, 2)
OPEN = datetime(2026, 3, 2, 9, 15, tzinfo=IST)
UNIVERSE = bundled_universe(MONDAY)
INSTRUMENTS = {inst.key: inst for inst in UNIVERSE[0]}
NIFTY = "NSE:NIFTY 50"


def make_sim(
    keys: list[str] | None = None,
    *,
    seed: int = 7,
    bus: EventBus | None = None,
    always_open: bool = False,
    ticks_per_second: float = 50.0,
) -> MarketSimulator:
    instruments, refs = UNIVERSE
    if keys is not None:
        instruments = [INSTRUMENTS[k] for k in keys]
    return MarketSimulator(
        instruments,
        refs,
        bus or EventBus(),
        ManualClock(OPEN),
        seed=seed,
        ticks_per_second=ticks_per_second,
        always_open=always_open,
    )


def run_steps(
    sim: MarketSimulator, start: datetime, steps: int, every: float, count: int
) -> list[Tick]:
    ticks: list[Tick] = []
    now = start
    for _ in range(steps):
        ticks.extend(sim.step(now, count))
        now += timedelta(seconds=every)
    return ticks


def test_prices_stay_on_grid_and_positive_through_sessions_and_expiry_day() -> None:
    sim = make_sim()
    ticks = run_steps(sim, OPEN, 750, 30.0, 20)  # a whole Monday session
    expiry = INSTRUMENTS["NFO:NIFTY26MARFUT"].expiry
    assert expiry is not None
    expiry_open = datetime.combine(expiry, OPEN.timetz())
    ticks += run_steps(sim, expiry_open + timedelta(hours=5), 170, 10.0, 50)  # to 15:28
    assert len(ticks) > 20_000
    seen = set()
    for t in ticks:
        tick = INSTRUMENTS[t.key].tick_size
        seen.add(t.key)
        for price in (t.last_price, t.open, t.high, t.low, t.close):
            assert price > 0 and is_on_tick(price, tick), (t.key, price)
        assert t.low <= t.last_price <= t.high
        assert t.low <= t.open <= t.high
        if t.depth is not None:
            for level in t.depth.bids + t.depth.asks:
                assert level.price > 0 and is_on_tick(level.price, tick)
    # Every equity and index ticked, and contracts of every listed expiry did too (with
    # ~4,000 instruments not every far strike trades in a test-sized sample).
    spot_kinds = (InstrumentKind.EQUITY, InstrumentKind.INDEX)
    assert {k for k, i in INSTRUMENTS.items() if i.kind in spot_kinds} <= seen
    expiries = {i.expiry for i in INSTRUMENTS.values() if i.expiry is not None}
    assert {INSTRUMENTS[k].expiry for k in seen if INSTRUMENTS[k].expiry} == expiries


def test_depth_is_an_ordered_five_level_book_in_lots() -> None:
    sim = make_sim()
    ticks = run_steps(sim, OPEN + timedelta(hours=1), 200, 1.0, 25)
    for t in ticks:
        inst = INSTRUMENTS[t.key]
        if inst.kind is InstrumentKind.INDEX:
            assert t.depth is None and t.volume == 0 and t.last_quantity == 0
            continue
        depth = t.depth
        assert depth is not None and depth.best_bid and depth.best_ask
        assert len(depth.asks) == 5
        assert len(depth.bids) == 5 or depth.bids[-1].price <= 5 * inst.tick_size
        assert depth.best_bid.price < depth.best_ask.price
        spread_ticks = (depth.best_ask.price - depth.best_bid.price) / inst.tick_size
        if inst.kind in (InstrumentKind.CALL, InstrumentKind.PUT):
            assert spread_ticks >= 2
        assert t.last_price in (depth.best_bid.price, depth.best_ask.price)
        for better, worse in zip(depth.bids, depth.bids[1:], strict=False):
            assert better.price - worse.price >= inst.tick_size
        for better, worse in zip(depth.asks, depth.asks[1:], strict=False):
            assert worse.price - better.price >= inst.tick_size
        for level in depth.bids + depth.asks:
            assert level.quantity > 0 and level.quantity % inst.lot_size == 0
            assert 1 <= level.orders <= level.quantity // inst.lot_size
        assert t.last_quantity > 0 and t.last_quantity % inst.lot_size == 0


def test_cumulative_volume_adds_up_and_resets_next_day() -> None:
    sim = make_sim(["NSE:RELIANCE"])
    monday = run_steps(sim, OPEN, 50, 5.0, 3)
    assert monday[-1].volume == sum(t.last_quantity for t in monday)
    assert sim.step(OPEN + timedelta(days=1), 1) == []  # Tuesday 3 March 2026 is Holi
    wednesday = sim.step(OPEN + timedelta(days=2), 1)[0]
    assert wednesday.volume == wednesday.last_quantity
    assert wednesday.close == monday[-1].last_price  # the last session's last trade
    assert wednesday.open == wednesday.high == wednesday.low == wednesday.last_price


def test_same_seed_same_ticks_and_different_seed_differs() -> None:
    times = [OPEN + timedelta(seconds=0.02 * i) for i in range(300)]

    def ticks(seed: int) -> list[Tick]:
        sim = make_sim(seed=seed)
        return [t for now in times for t in sim.step(now, 7)]

    first, again, other = ticks(3), ticks(3), ticks(4)
    assert first == again
    assert first != other


def test_no_ticks_outside_market_hours_unless_always_open() -> None:
    closed_times = [
        datetime(2026, 3, 2, 9, 14, 59, tzinfo=IST),
        datetime(2026, 3, 2, 15, 30, tzinfo=IST),
        datetime(2026, 3, 7, 11, 0, tzinfo=IST),  # Saturday
    ]
    sim = make_sim()
    for when in closed_times:
        assert not is_market_open(when)
        assert sim.step(when, 50) == []
    demo = make_sim(always_open=True)
    for when in closed_times:
        assert len(demo.step(when, 50)) == 50


def test_black_scholes_respects_intrinsic_bounds_and_parity() -> None:
    for spot in (20_000.0, 25_000.0, 26_000.0, 30_000.0):
        for years in (0.0, 1 / 365, 30 / 365, 1.0):
            strike = 25_500.0
            call = black_scholes(spot, strike, years, 0.13, True)
            put = black_scholes(spot, strike, years, 0.13, False)
            assert call >= max(spot - strike, 0.0)
            assert put >= max(strike - spot, 0.0)
            if years > 0.05 and abs(spot - strike) < 1_000:  # the floor does not bind
                parity = spot - strike * math.exp(-RISK_FREE_RATE * years)
                assert call - put == pytest.approx(parity, abs=1e-6)
    assert black_scholes(25_000, 25_500, 0.1, 0.13, True) < black_scholes(
        25_100, 25_500, 0.1, 0.13, True
    )


def test_simulated_options_never_trade_below_intrinsic() -> None:
    keys = [NIFTY] + [k for k in INSTRUMENTS if k.startswith("NFO:NIFTY26MAR2")]
    sim = make_sim(keys)
    checked = 0
    now = OPEN
    for _ in range(3000):
        now += timedelta(seconds=2)
        (tick,) = sim.step(now, 1)
        inst = INSTRUMENTS[tick.key]
        if inst.strike is None:
            continue
        spot = sim.fair_price(NIFTY, now)
        assert spot is not None
        intrinsic = spot - inst.strike if inst.kind is InstrumentKind.CALL else inst.strike - spot
        assert tick.last_price >= max(intrinsic, Decimal(0)) - inst.tick_size
        assert tick.last_price >= inst.tick_size
        checked += 1
    assert checked > 1000


def test_future_tracks_index_with_a_small_premium() -> None:
    sim = make_sim([NIFTY, "NFO:NIFTY26MARFUT"])
    run_steps(sim, OPEN, 500, 5.0, 4)
    index = sim.last_tick(NIFTY)
    future = sim.last_tick("NFO:NIFTY26MARFUT")
    assert index is not None and future is not None
    premium = (future.last_price - index.last_price) / index.last_price
    assert Decimal("0") < premium < Decimal("0.01")


def test_realised_volatility_matches_configured_and_is_u_shaped() -> None:
    sim = make_sim([NIFTY, "NSE:RELIANCE"], seed=11)
    configured = 0.13  # bundled NIFTY 50 annual volatility
    day_sums: list[float] = []
    edge_sq: list[float] = []
    mid_sq: list[float] = []
    for day in range(5):
        start = OPEN + timedelta(days=day)
        samples: list[tuple[datetime, float]] = []
        now = start
        for i in range(2250):  # every 10 s through the session
            sim.step(now, 2)
            if i % 6 == 0:  # one-minute returns
                last = sim.last_tick(NIFTY)
                assert last is not None
                samples.append((now, float(last.last_price)))
            now += timedelta(seconds=10)
        total = 0.0
        for (t0, p0), (_, p1) in itertools.pairwise(samples):
            sq = math.log(p1 / p0) ** 2
            total += sq
            minutes = (t0 - start).total_seconds() / 60
            if minutes < 45 or minutes >= 330:
                edge_sq.append(sq)
            elif 150 <= minutes < 225:
                mid_sq.append(sq)
        day_sums.append(total)
    realised = math.sqrt(sum(day_sums) / len(day_sums) * 252)
    assert configured * 0.75 < realised < configured * 1.25, realised
    edge = sum(edge_sq) / len(edge_sq)
    mid = sum(mid_sq) / len(mid_sq)
    assert edge > 1.3 * mid, (edge, mid)


async def test_run_publishes_about_the_configured_rate_and_connection_state() -> None:
    bus = EventBus()
    sim = make_sim(always_open=True, ticks_per_second=2000, bus=bus)
    conn = bus.subscribe(CONNECTION, "test")
    ticks = bus.subscribe(TICKS, "test")
    task = asyncio.create_task(sim.run())
    await asyncio.sleep(0.1)
    assert [s.status for s in conn.drain()] == [ConnectionStatus.CONNECTED]
    before = bus.published.get("ticks", 0)
    await asyncio.sleep(1.0)
    produced = bus.published.get("ticks", 0) - before
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 0.4 * 2000 < produced < 1.25 * 2000, produced
    assert ticks.pending() > 0
    assert [s.status for s in conn.drain()] == [ConnectionStatus.DISCONNECTED]


async def test_run_makes_ticks_on_its_own_thread_and_does_not_flood_a_busy_loop() -> None:
    """The ticks are made off the loop (a tick is made while the loop is blocked), and a
    long UI frame costs at most a quarter of a second of catch-up, in order, afterwards."""
    bus = EventBus()
    rate = 2000
    sim = MarketSimulator(
        *UNIVERSE, bus, SystemClock(), seed=7, ticks_per_second=rate, always_open=True
    )
    ticks = bus.subscribe(TICKS, "test", lossless=True)
    task = asyncio.create_task(sim.run())
    await asyncio.sleep(0.2)
    ticks.drain()
    blocked_from = datetime.now(IST)
    time.sleep(0.6)  # noqa: ASYNC251 -- the point: the loop serves nothing for 0.6 s
    blocked_to = datetime.now(IST)
    await asyncio.sleep(0)  # one pass of the loop: what waited is published now
    burst = ticks.drain()
    await asyncio.sleep(0.3)
    after = ticks.drain()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sim.generated_on == "simulator-ticks"
    assert [t for t in burst if blocked_from < t.ts < blocked_to]  # made during the block
    assert 0 < len(burst) <= rate * (0.25 + 0.1), len(burst)  # not 0.6 s of ticks at once
    assert len(after) > rate * 0.3 * 0.3  # then the normal pace (a loaded machine: less)
    got = burst + after
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(got))
    assert not [t for t in threading.enumerate() if t.name == "simulator-ticks"]


def test_set_rate_validates() -> None:
    sim = make_sim()
    sim.set_rate(5000)
    assert sim.ticks_per_second == 5000
    with pytest.raises(ValueError):
        sim.set_rate(-1)


def test_history_is_continuous_on_grid_and_joins_the_live_price() -> None:
    sim = make_sim()
    run_steps(sim, OPEN, 100, 3.0, 20)
    end = OPEN + timedelta(minutes=5, seconds=1)
    for key in ("NSE:RELIANCE", NIFTY):
        bars = sim.history(key, Timeframe.M5, 300, end)
        assert len(bars) == 300
        tick = INSTRUMENTS[key].tick_size
        for bar in bars:
            assert bar.closed
            assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
            for price in (bar.open, bar.high, bar.low, bar.close):
                assert price > 0 and is_on_tick(price, tick)
            local = bar.start.astimezone(IST)
            assert local.weekday() < 5 and is_market_open(local)
        for older, newer in itertools.pairwise(bars):
            assert older.start < newer.start
            assert newer.open == older.close
        assert bars[-1].start == OPEN  # the 09:15 bar ended at 09:20, before ``end``
        assert bucket_end(bars[-1].start, Timeframe.M5) <= end
        live = sim.last_tick(key)
        assert live is not None
        assert abs(bars[-1].close - live.last_price) / live.last_price < Decimal("0.002")
        assert sim.history(key, Timeframe.M5, 300, end) == bars  # reproducible
    assert all(b.volume > 0 for b in sim.history("NSE:RELIANCE", Timeframe.M5, 50, end))
    assert all(b.volume == 0 for b in sim.history(NIFTY, Timeframe.M5, 50, end))


def test_option_and_daily_history_are_sane() -> None:
    sim = make_sim()
    end = OPEN + timedelta(hours=2)
    run_steps(sim, OPEN, 100, 72.0, 20)
    key = "NFO:NIFTY26MAR25750CE"
    bars = sim.history(key, Timeframe.M15, 300, end)
    assert len(bars) == 300
    for bar in bars:
        assert Decimal("0.05") <= bar.low <= min(bar.open, bar.close)
        assert max(bar.open, bar.close) <= bar.high
        assert is_on_tick(bar.close, Decimal("0.05"))
    fair = sim.fair_price(key, end)
    assert fair is not None
    assert abs(bars[-1].close - fair) / fair < Decimal("0.05")
    daily = sim.history("NSE:INFY", Timeframe.D1, 300, end)
    assert len(daily) == 300
    assert all(is_trading_day(b.start.date()) for b in daily)
    days = {b.start.date() for b in daily}
    assert date(2026, 2, 1) in days  # the Budget Sunday traded
    assert date(2026, 1, 26) not in days and date(2026, 1, 15) not in days  # holidays
    assert daily[-1].start.date() == date(2026, 2, 27)  # the previous session (Friday)
    assert len({b.start.date() for b in daily}) == 300


def test_history_at_start_up_joins_the_first_live_tick() -> None:
    key = "NSE:RELIANCE"
    end = OPEN + timedelta(hours=2)  # the terminal is started mid-session
    for seed in range(5):
        sim = make_sim([key], seed=seed)
        bars = sim.history(key, Timeframe.M1, 300, end)
        (first,) = sim.step(end, 1)
        assert abs(first.last_price - bars[-1].close) / first.last_price < Decimal("0.001")
        assert bars[-1].start == end - timedelta(minutes=1)
