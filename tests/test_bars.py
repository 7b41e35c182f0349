"""Bars: NSE session buckets, OHLCV from ticks, closing rules and seeded history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.bars import BarBuilder, _new_bar, bucket_end, bucket_start, session_buckets
from services.bus import BARS, TICKS, EventBus, closed_bars
from services.clock import IST, ManualClock
from services.domain import LIVE_TIMEFRAMES, Bar, Tick, Timeframe
from services.instruments import bundled_universe
from services.simulator import MarketSimulator

KEY = "NSE:INFY"


def ist(h: int, m: int, s: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, h, m, s, tzinfo=IST)


def tick(ts: datetime, price: str, volume: int, last_quantity: int = 1, key: str = KEY) -> Tick:
    p = Decimal(price)
    return Tick(key, ts, p, last_quantity, volume, p, p, p, p)


@pytest.mark.parametrize(
    ("ts", "timeframe", "expected"),
    [
        (ist(9, 15), Timeframe.H1, ist(9, 15)),
        (ist(9, 15), Timeframe.M1, ist(9, 15)),
        (ist(10, 14, 59), Timeframe.H1, ist(9, 15)),
        (ist(10, 14, 59), Timeframe.M15, ist(10, 0)),
        (ist(10, 14, 59), Timeframe.M5, ist(10, 10)),
        (ist(10, 14, 59), Timeframe.M1, ist(10, 14)),
        (ist(10, 15), Timeframe.H1, ist(10, 15)),
        (ist(15, 29), Timeframe.H1, ist(15, 15)),
        (ist(15, 29, 59), Timeframe.M15, ist(15, 15)),
        (ist(15, 29), Timeframe.M5, ist(15, 25)),
        (ist(15, 29, 30), Timeframe.M1, ist(15, 29)),
        (ist(15, 45), Timeframe.H1, ist(15, 30)),  # after the close: its own grid
        (ist(15, 29), Timeframe.D1, ist(9, 15)),
        (ist(8, 0), Timeframe.D1, ist(9, 15)),
        (datetime(2026, 3, 2, 4, 44, 59, tzinfo=UTC), Timeframe.H1, ist(9, 15)),  # 10:14:59
    ],
)
def test_bucket_start_is_anchored_to_the_session_open(
    ts: datetime, timeframe: Timeframe, expected: datetime
) -> None:
    assert bucket_start(ts, timeframe) == expected


def test_bucket_end_truncates_at_the_close() -> None:
    assert bucket_end(ist(15, 15), Timeframe.H1) == ist(15, 30)
    assert bucket_end(ist(14, 15), Timeframe.H1) == ist(15, 15)
    assert bucket_end(ist(9, 15), Timeframe.D1) == ist(0, 0, day=3)


def test_session_buckets_skip_nights_and_weekends() -> None:
    monday_open = ist(9, 20)
    starts = session_buckets(monday_open, Timeframe.H1, 8)
    # Friday 27 Feb: 09:15 ... 15:15 is seven buckets, then Monday's 09:15 bar is still open.
    assert starts[-1] == datetime(2026, 2, 27, 15, 15, tzinfo=IST)
    assert starts[0] == datetime(2026, 2, 26, 15, 15, tzinfo=IST)
    assert session_buckets(ist(16, 0), Timeframe.D1, 1) == [ist(9, 15)]


async def test_ohlcv_aggregation_and_close_on_next_bucket() -> None:
    bus = EventBus()
    sub = bus.subscribe(BARS, "test")
    builder = BarBuilder(bus, [Timeframe.M1, Timeframe.M5])
    # Joined mid-session: cumulative 1000 already traded, this tick's own trade is 10.
    builder.on_tick(tick(ist(10, 0, 1), "100.00", 1000, last_quantity=10))
    builder.on_tick(tick(ist(10, 0, 20), "101.50", 1010))
    builder.on_tick(tick(ist(10, 0, 40), "99.00", 1030))
    builder.on_tick(tick(ist(10, 0, 59), "100.50", 1060))
    (live,) = [b for b in sub.drain() if b.timeframe is Timeframe.M1]
    assert live == Bar(
        KEY, Timeframe.M1, ist(10, 0), Decimal("100.00"), Decimal("101.50"),
        Decimal("99.00"), Decimal("100.50"), 70, closed=False,
    )  # fmt: skip
    builder.on_tick(tick(ist(10, 1, 5), "100.75", 1065))
    m1 = [b for b in sub.drain() if b.timeframe is Timeframe.M1]
    assert [(b.start, b.closed) for b in m1] == [(ist(10, 0), True), (ist(10, 1), False)]
    assert m1[0].volume == 70 and m1[0].close == Decimal("100.50")
    assert m1[1].open == Decimal("100.75") and m1[1].volume == 5
    five = builder.bars(KEY, Timeframe.M5)
    assert len(five) == 1 and not five[0].closed
    assert (five[0].high, five[0].low, five[0].volume) == (Decimal("101.50"), Decimal("99"), 75)
    assert [b.closed for b in builder.bars(KEY, Timeframe.M1)] == [True, False]


def test_close_stale_closes_only_ended_buckets_and_late_ticks_are_dropped() -> None:
    bus = EventBus()
    builder = BarBuilder(bus, [Timeframe.M1, Timeframe.M5])
    builder.on_tick(tick(ist(10, 0, 30), "50.00", 10, 10))
    assert builder.close_stale(ist(10, 0, 59)) == []
    closed = builder.close_stale(ist(10, 1))
    assert [(b.timeframe, b.start, b.closed) for b in closed] == [(Timeframe.M1, ist(10, 0), True)]
    builder.on_tick(tick(ist(10, 0, 45), "55.00", 20))  # late, for a closed minute
    assert builder.bars(KEY, Timeframe.M1) == closed
    assert builder.dropped_ticks == 1
    assert builder.bars(KEY, Timeframe.M5)[-1].high == Decimal("55.00")  # M5 still open
    assert [b.timeframe for b in builder.close_stale(ist(10, 5))] == [Timeframe.M5]


def test_new_day_volume_starts_from_the_tick_own_trade() -> None:
    builder = BarBuilder(EventBus(), [Timeframe.D1])
    builder.on_tick(tick(ist(15, 29), "10.00", 9000, 3))
    builder.on_tick(tick(ist(9, 15, 1, day=3), "11.00", 40, 40))
    monday, tuesday = builder.bars(KEY, Timeframe.D1)
    assert monday.closed and monday.volume == 3
    assert not tuesday.closed and tuesday.volume == 40


def test_history_is_bounded_and_seed_preloads() -> None:
    builder = BarBuilder(EventBus(), [Timeframe.M1], max_bars=3)
    old = [
        Bar(KEY, Timeframe.M1, ist(9, 15 + i), Decimal(1), Decimal(1), Decimal(1), Decimal(1), 1,
            closed=True)
        for i in range(5)
    ]  # fmt: skip
    builder.seed(KEY, Timeframe.M1, reversed(old))
    assert builder.bars(KEY, Timeframe.M1) == old[-3:]
    builder.on_tick(tick(ist(9, 25), "2.00", 5, 5))
    builder.on_tick(tick(ist(9, 26), "2.00", 6))
    bars = builder.bars(KEY, Timeframe.M1)
    assert [b.start for b in bars] == [ist(9, 18), ist(9, 19), ist(9, 25), ist(9, 26)]


async def test_run_consumes_ticks_from_the_bus() -> None:
    bus = EventBus()
    builder = BarBuilder(bus, [Timeframe.M1])
    task = asyncio.create_task(builder.run())
    await asyncio.sleep(0)
    bus.publish_many(TICKS, [tick(ist(11, 0, 1), "20.00", 1, 1), tick(ist(11, 1), "21.00", 3, 2)])
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bus.subscriber_count(TICKS) == 0
    # the builder's subscription is lossless: both ticks arrive, the first bar is closed
    first, second = builder.bars(KEY, Timeframe.M1)
    assert first.start == ist(11, 0) and first.closed and first.close == Decimal("20.00")
    assert second.start == ist(11, 1) and second.volume == 2


async def test_run_with_clock_closes_ended_bars() -> None:
    bus = EventBus()
    clock = ManualClock(ist(11, 0, 30))
    builder = BarBuilder(bus, [Timeframe.M1], clock=clock, stale_check_seconds=0.01)
    builder.on_tick(tick(ist(11, 0, 10), "20.00", 1, 1))
    task = asyncio.create_task(builder.run())
    clock.set(ist(11, 1, 1))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [b.closed for b in builder.bars(KEY, Timeframe.M1)] == [True]


def test_simulated_ticks_aggregate_to_the_day_volume() -> None:
    day = ist(9, 15)
    instruments, refs = bundled_universe(day.date())
    sim = MarketSimulator(instruments, refs, EventBus(), ManualClock(day), seed=5)
    builder = BarBuilder(EventBus())
    now = day
    for _ in range(600):
        builder.on_ticks(sim.step(now, 10))
        now += timedelta(seconds=6)
    last = sim.last_tick("NFO:NIFTY26MARFUT")
    assert last is not None
    for tf in LIVE_TIMEFRAMES:
        bars = builder.bars(last.key, tf)
        assert sum(b.volume for b in bars) == last.volume
        assert max(b.high for b in bars) == last.high
        assert min(b.low for b in bars) == last.low
    assert len(builder.bars(last.key, Timeframe.H1)) == 1


def test_one_minute_bars_roll_up_into_closed_higher_timeframes() -> None:
    from services.bars import aggregate

    minutes = [
        Bar(KEY, Timeframe.M1, ist(10, 15 + i), Decimal(100 + i), Decimal(101 + i + (i == 2) * 5),
            Decimal(99 + i - (i == 3) * 4), Decimal(100 + i) + Decimal("0.5"), 10 * (i + 1),
            closed=True)
        for i in range(10)
    ]  # fmt: skip
    rolled = aggregate(minutes, Timeframe.M5, now=ist(10, 24, 30))
    # 10:15-10:20 is complete and over; 10:20-10:25 is not over yet at 10:24:30.
    (bar,) = rolled
    assert (bar.start, bar.open, bar.close) == (ist(10, 15), Decimal(100), Decimal("104.5"))
    assert (bar.high, bar.low, bar.volume) == (Decimal(108), Decimal(98), 150)
    assert bar.closed and bar.timeframe is Timeframe.M5
    # A bucket whose first minute is missing is not rolled up (its open would be wrong).
    assert aggregate(minutes[1:], Timeframe.M5, now=ist(11, 0)) == [
        b for b in aggregate(minutes, Timeframe.M5, now=ist(11, 0)) if b.start != ist(10, 15)
    ]


def test_the_fast_path_folds_ticks_as_bucket_by_bucket_aggregation_does() -> None:
    # Three instruments ticking every 7 s (several ticks in one batch, some sharing an
    # instant) across minute, 5-, 15-minute and hour boundaries: every bar the builder keeps
    # equals the plain aggregation of its bucket's ticks.
    import random

    rng = random.Random(7)
    keys = ["NSE:A", "NSE:B", "NSE:C"]
    volume = dict.fromkeys(keys, 0)
    ticks: list[Tick] = []
    ts = ist(9, 15)
    while ts < ist(11, 40):
        for key in rng.sample(keys, rng.randint(1, 3)):
            qty = rng.randint(1, 50)
            volume[key] += qty
            price = Decimal(rng.randint(9_000, 11_000)) / 100
            ticks.append(Tick(key, ts, price, qty, volume[key], price, price, price, price))
        ts += timedelta(seconds=rng.choice((0, 7, 7, 13)))
    builder = BarBuilder(bus := EventBus())
    bus.subscribe(BARS, "chart")
    for start in range(0, len(ticks), 37):
        builder.on_ticks(ticks[start : start + 37])
    for key in keys:
        mine = [t for t in ticks if t.key == key]
        for tf in LIVE_TIMEFRAMES:
            expected: dict[datetime, list[Tick]] = {}
            for t in mine:
                expected.setdefault(bucket_start(t.ts, tf), []).append(t)
            got = builder.bars(key, tf)
            assert [b.start for b in got] == list(expected)
            for bar, group in zip(got, expected.values(), strict=True):
                prices = [t.last_price for t in group]
                assert (bar.open, bar.high, bar.low, bar.close) == (
                    prices[0], max(prices), min(prices), prices[-1]
                )
                assert bar.volume == sum(t.last_quantity for t in group)
            assert [b.closed for b in got] == [True] * (len(got) - 1) + [False]


def test_live_bars_are_built_only_when_a_subscriber_takes_them() -> None:
    bus = EventBus()
    recorder = bus.subscribe(BARS, "recorder", lossless=True, accept=closed_bars)
    builder = BarBuilder(bus, [Timeframe.M1])
    builder.on_tick(tick(ist(10, 0, 1), "100.00", 10, 10))
    builder.on_tick(tick(ist(10, 1, 1), "101.00", 20, 10))
    assert [(b.start, b.closed) for b in recorder.drain()] == [(ist(10, 0), True)]
    chart = bus.subscribe(BARS, "chart")
    builder.on_tick(tick(ist(10, 1, 2), "102.00", 25, 5))
    (live,) = chart.drain()
    assert (live.start, live.high, live.volume) == (ist(10, 1), Decimal(102), 15)
    assert not live.closed
    assert recorder.drain() == []


def test_a_bar_built_on_the_fast_path_equals_one_built_by_its_constructor() -> None:
    args = (KEY, Timeframe.M5, ist(10, 0), Decimal("1.5"), Decimal(2), Decimal(1), Decimal(2), 7)
    for closed in (False, True):
        fast = _new_bar(*args, closed)
        assert type(fast) is Bar
        assert fast == Bar(*args, closed=closed)
        assert hash(fast) == hash(Bar(*args, closed=closed))
        with pytest.raises(AttributeError):
            fast.close = Decimal(3)  # type: ignore[misc]
