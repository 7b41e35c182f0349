"""A synthetic NSE market: ticks with depth for a bundled universe, reproducible from a seed.

Each equity and index follows its own log-price random walk, scaled from its annual
volatility to the time between its ticks, with a U-shaped intraday profile and rare small
jumps. Index futures and options have no walk of their own: they are priced from their
index's current level (a carry for futures, Black-Scholes for options), so the F&O chain
always agrees with its index.

Determinism: every draw comes from one ``random.Random(seed)``, and the only other input is
the sequence of ``now`` values handed to ``step``. Two simulators with the same seed, the same
instruments and the same times therefore produce identical ticks, which is what lets a test
or a backtest replay a session exactly.

Speed: the hot path works on floats and integer tick counts held per instrument and builds
``Decimal`` values only for the fields of the ``Tick`` it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from services.bars import SESSION_SECONDS, session_buckets
from services.bus import CONNECTION, TICKS, EventBus
from services.clock import IST, MARKET_CLOSE, Clock, is_market_open, to_ist
from services.domain import (
    Bar,
    ConnectionState,
    ConnectionStatus,
    Depth,
    Instrument,
    InstrumentKind,
    Tick,
    Timeframe,
)
from services.instruments import Reference
from services.simulator.depth import BITS as DEPTH_BITS
from services.simulator.depth import LazyDepth
from services.simulator.history import backward_path, bar_shape, history_rng
from services.simulator.pricing import (
    SECONDS_PER_YEAR,
    black_scholes,
    futures_price,
    intraday_profile,
    per_second_variance,
    session_fraction,
    smile_volatility,
)

COMPONENT = "feed:simulator"
_ROLE_SPOT, _ROLE_FUTURE, _ROLE_CALL, _ROLE_PUT = 0, 1, 2, 3
_JUMPS_PER_SESSION = 3.0
_JUMP_SHARE_OF_DAILY_SD = 0.15  # so jumps carry ~7% of the variance
_GAP_SHARE_OF_DAILY_SD = 0.3
_MAX_STEP_SECONDS = 22_500.0  # one session: a longer silence is a day roll, not a walk
_BATCH_SECONDS = 0.015
_CLOSED_POLL_SECONDS = 0.5
_MAX_OWED_SECONDS = 0.25
_LIQUID = frozenset({"RELIANCE", "HDFCBANK", "ICICIBANK", "INFY", "SBIN", "TCS", "BHARTIARTL"})
# Tick classes. Index options and stock F&O are capped at a multiple of the ticks the
# indices, index futures and equities get, so thousands of contracts cannot starve the
# equities a watchlist shows; a universe within the caps keeps its plain weights.
_CLASS_INDEX, _CLASS_INDEX_FUTURE, _CLASS_EQUITY, _CLASS_INDEX_OPTION, _CLASS_STOCK_FNO = range(5)
_OPTION_CAP = (0.0, 0.0, 0.0, 0.6, 0.1)
_EXPIRY_DAY_ACTIVITY = 3.0  # expiring contracts trade this much more on their last day
_OI_OPEN_SHARE = 0.56  # of trades that open a position, an ordinary day


@dataclass(slots=True, eq=False)
class _Walk:
    """The latent log-price of an index or equity, which its derivatives share."""

    x: float
    last_t: float
    variance: float  # per second of trading time, net of the jumps' share
    jump_rate: float  # per second
    jump_sd: float
    gap_sd: float
    volatility: float
    prev_close: float


@dataclass(slots=True, eq=False)
class _State:
    inst: Instrument
    key: str
    walk: _Walk
    role: int
    tick: float
    tick_dec: Decimal
    lot: int
    strike: float
    expiry_ts: float
    spread_frac: float
    spread_min: int
    spread_extra: int
    gap_max: int
    depth_lots: int
    trade_lots: float
    daily_volume: float
    # day state, in tick counts; 0 means "no trade yet today"
    prev_close: Decimal = Decimal(0)
    open_n: int = 0
    high_n: int = 0
    low_n: int = 0
    open: Decimal = Decimal(0)
    high: Decimal = Decimal(0)
    low: Decimal = Decimal(0)
    volume: int = 0
    basis: float = 0.0
    oi: int = 0  # open interest in units; derivatives only
    oi_close: int = 0
    expiry_day: date | None = None
    last_n: int = 0  # the last trade today, in ticks (the close at the next day roll)

    def price(self, n: int) -> Decimal:
        return self.tick_dec * n


def _role(inst: Instrument, has_underlying: bool) -> int:
    if not has_underlying:
        return _ROLE_SPOT
    return {
        InstrumentKind.FUTURE: _ROLE_FUTURE,
        InstrumentKind.CALL: _ROLE_CALL,
        InstrumentKind.PUT: _ROLE_PUT,
    }.get(inst.kind, _ROLE_SPOT)


def _expiry_ts(inst: Instrument) -> float:
    if inst.expiry is None:
        return 0.0
    return datetime.combine(inst.expiry, MARKET_CLOSE, tzinfo=IST).timestamp()


class MarketSimulator:
    def __init__(
        self,
        instruments: list[Instrument],
        references: dict[str, Reference],
        bus: EventBus,
        clock: Clock,
        *,
        seed: int = 0,
        ticks_per_second: float = 50.0,
        always_open: bool = False,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._seed = seed
        self._rate = float(ticks_per_second)
        self._always_open = always_open
        self._rng = random.Random(seed)  # noqa: S311 -- a simulation, not a secret
        self._day: date | None = None
        self._walks: dict[str, _Walk] = {}
        self._states: list[_State] = []
        self._by_key: dict[str, _State] = {}
        self._last: dict[str, Tick] = {}
        # Open interest has its own random stream so that turning it on left every price
        # path of a seed unchanged.
        self._oi_rng = random.Random(f"{seed}:oi")  # noqa: S311 -- a simulation
        # ``run`` generates on a thread of its own; this lock keeps the loop's readers
        # (``history``, ``fair_price``, ``step``) from seeing a walk half-way through a batch.
        self._lock = threading.Lock()
        self._outbox: list[Tick] = []  # generated, not yet published (guarded by _out_lock)
        self._out_lock = threading.Lock()
        self._flush_scheduled = False
        self.generated_on: str | None = None  # the thread ``run`` generated on (tests read it)
        self._build(instruments, references)
        self._indices = range(len(self._states))
        self._cum_weights = self._weights(None)

    # -- construction -------------------------------------------------------------------

    def _walk(self, key: str, ref: Reference) -> _Walk:
        walk = self._walks.get(key)
        if walk is not None:
            return walk
        vol = float(ref.annual_volatility)
        daily_sd = vol / math.sqrt(252.0)
        jump_sd = _JUMP_SHARE_OF_DAILY_SD * daily_sd
        jump_var_share = _JUMPS_PER_SESSION * jump_sd**2 / daily_sd**2
        prev_close = float(ref.price) * math.exp(self._rng.gauss(0.0, 0.5 * daily_sd))
        walk = _Walk(
            x=math.log(prev_close),
            last_t=0.0,
            variance=per_second_variance(vol) * (1.0 - jump_var_share),
            jump_rate=_JUMPS_PER_SESSION / SESSION_SECONDS,
            jump_sd=jump_sd,
            gap_sd=_GAP_SHARE_OF_DAILY_SD * daily_sd,
            volatility=vol,
            prev_close=prev_close,
        )
        self._walks[key] = walk
        return walk

    def _build(self, instruments: list[Instrument], references: dict[str, Reference]) -> None:
        self._index_keys = {i.key for i in instruments if i.kind is InstrumentKind.INDEX}
        self._index_keys |= {  # an index left out of the simulation is still an index
            i.underlying
            for i in instruments
            if i.underlying and not i.underlying.endswith(":" + i.name)
        }
        for inst in instruments:  # spots first so derivatives find their walk
            if not (inst.is_derivative and inst.underlying is not None):
                self._walk(inst.key, references[inst.key])
        for inst in instruments:
            ref = references[inst.key]
            derived = inst.is_derivative and inst.underlying is not None
            if derived:
                assert inst.underlying is not None
                # An option's Reference carries its underlying's spot, so a missing
                # underlying can still be walked, unseen.
                walk = self._walk(inst.underlying, ref)
            else:
                walk = self._walks[inst.key]
            role = _role(inst, derived)
            price = math.exp(walk.x)
            option = role in (_ROLE_CALL, _ROLE_PUT)
            lot = inst.lot_size
            if inst.kind is InstrumentKind.EQUITY or role == _ROLE_SPOT:
                spread = (0.00005, 1, 1, 1)
                depth_lots = max(1, int(300_000 / price))
                trade_lots = max(1.0, 60_000 / price)
                daily_volume = 4e9 / price
            elif role == _ROLE_FUTURE:
                spread = (0.00001, 1, 2, 1)
                depth_lots, trade_lots, daily_volume = 40, 2.0, lot * 120_000.0
            else:
                spread = (0.001, 2, 2, 2)
                depth_lots, trade_lots, daily_volume = 60, 4.0, lot * 250_000.0
            state = _State(
                inst=inst,
                key=inst.key,
                walk=walk,
                role=role,
                tick=float(inst.tick_size),
                tick_dec=inst.tick_size,
                lot=lot,
                strike=float(inst.strike) if option and inst.strike is not None else 0.0,
                expiry_ts=_expiry_ts(inst),
                spread_frac=spread[0],
                spread_min=spread[1],
                spread_extra=spread[2],
                gap_max=spread[3],
                depth_lots=depth_lots,
                trade_lots=trade_lots,
                daily_volume=0.0 if inst.kind is InstrumentKind.INDEX else daily_volume,
            )
            if role != _ROLE_SPOT:
                state.expiry_day = inst.expiry
                state.oi = state.oi_close = self._initial_oi(state, price)
            self._states.append(state)
            self._by_key[inst.key] = state

    def _weights(self, day: date | None) -> list[float]:
        """Cumulative pick weights for ``day`` (None: before the first session)."""
        raw = [self._weight(s) for s in self._states]
        if day is not None:
            # Expired contracts stop trading; expiring ones are busiest on their last day.
            raw = [
                0.0
                if s.expiry_day is not None and s.expiry_day < day
                else w * _EXPIRY_DAY_ACTIVITY
                if s.expiry_day == day
                else w
                for w, s in zip(raw, self._states, strict=True)
            ]
            if not any(raw):
                raw = [1.0] * len(raw)
        classes = [self._class(s) for s in self._states]
        totals = [0.0] * len(_OPTION_CAP)
        for w, c in zip(raw, classes, strict=True):
            totals[c] += w
        base = totals[_CLASS_INDEX] + totals[_CLASS_INDEX_FUTURE] + totals[_CLASS_EQUITY]
        factor = [1.0] * len(_OPTION_CAP)
        for c in (_CLASS_INDEX_OPTION, _CLASS_STOCK_FNO):
            if totals[c] and base:
                factor[c] = min(1.0, _OPTION_CAP[c] * base / totals[c])
        scaled = [w * factor[c] for w, c in zip(raw, classes, strict=True)]
        return list(itertools.accumulate(scaled))

    def _class(self, s: _State) -> int:
        if s.inst.kind is InstrumentKind.INDEX:
            return _CLASS_INDEX
        if s.role == _ROLE_SPOT:
            return _CLASS_EQUITY
        index_derivative = s.inst.underlying in self._index_keys
        if s.role == _ROLE_FUTURE and index_derivative:
            return _CLASS_INDEX_FUTURE
        return _CLASS_INDEX_OPTION if index_derivative else _CLASS_STOCK_FNO

    @staticmethod
    def _weight(s: _State) -> float:
        """Relative tick frequency: indices and futures most, near-the-money options next."""
        kind = s.inst.kind
        if kind is InstrumentKind.INDEX:
            return 6.0
        if s.role == _ROLE_FUTURE:
            return 4.0
        if s.role in (_ROLE_CALL, _ROLE_PUT):
            moneyness = s.strike / s.walk.prev_close - 1.0
            return 0.5 + 2.0 * math.exp(-((moneyness / 0.006) ** 2))
        return 3.0 if s.inst.tradingsymbol in _LIQUID else 1.0

    def _initial_oi(self, s: _State, spot: float) -> int:
        """Open interest piles up near the money and on round strikes; writers sell calls
        above spot and puts below, so each side is heavier out of the money."""
        rng = self._oi_rng
        if s.role == _ROLE_FUTURE:
            return s.lot * int(rng.uniform(40_000, 90_000) * 65 / s.lot)
        moneyness = s.strike / spot - 1.0
        otm = moneyness if s.role == _ROLE_CALL else -moneyness
        near = math.exp(-((moneyness / 0.03) ** 2))
        lots = 2_000 + 60_000 * near * (1.6 if otm > 0 else 0.7)
        if s.strike % (s.tick * 2000) < 1e-9:  # round hundreds on NIFTY: traders' levels
            lots *= 1.8
        return s.lot * int(lots * rng.uniform(0.6, 1.4) * 65 / s.lot)

    def _move_oi(self, s: _State, lots: int, fraction: float | None) -> None:
        """A trade opens or closes positions; on expiry day the book unwinds into the close."""
        share = _OI_OPEN_SHARE
        if s.expiry_day == self._day:
            share = 0.5 - 0.3 * (fraction or 0.0)
        delta = lots * s.lot if self._oi_rng.random() < share else -lots * s.lot
        s.oi = max(0, s.oi + delta)

    # -- model ----------------------------------------------------------------------------

    def _fair(self, s: _State, spot: float, t: float) -> float:
        role = s.role
        if role == _ROLE_SPOT:
            return spot
        years = (s.expiry_ts - t) / SECONDS_PER_YEAR
        if role == _ROLE_FUTURE:
            return futures_price(spot, years) * math.exp(s.basis)
        vol = smile_volatility(s.walk.volatility, futures_price(spot, years), s.strike, years)
        return black_scholes(spot, s.strike, years, vol, role == _ROLE_CALL)

    def _to_steps(self, s: _State, value: float) -> int:
        return max(1, int(value / s.tick + 0.5))

    def _roll_day(self, day: date, t: float) -> None:
        """Start a session: yesterday's last price becomes ``close``, then an opening gap."""
        first = self._day is None
        for s in self._states:
            if not first and s.open_n:
                s.prev_close = s.price(s.last_n)
            else:
                spot = s.walk.prev_close if first else math.exp(s.walk.x)
                s.prev_close = s.price(self._to_steps(s, self._fair(s, spot, t)))
            s.open_n = s.high_n = s.low_n = 0
            s.volume = 0
            s.oi_close = s.oi
        for key, walk in self._walks.items():
            walk.x += self._opening_gap(key, walk, day)
            walk.last_t = t
        self._day = day
        self._cum_weights = self._weights(day)

    def _opening_gap(self, walk_key: str, walk: _Walk, day: date) -> float:
        """Return the day's opening gap in log terms.

        Drawn from its own stream, not the tick stream, so ``history`` can add a gap that
        has not happened yet without disturbing the ticks that follow.
        """
        return history_rng(self._seed, "gap", walk_key, day.isoformat()).gauss(0.0, walk.gap_sd)

    # -- ticks ----------------------------------------------------------------------------

    def _generate(self, now: datetime, count: int) -> list[Tick]:
        """Make the next ``count`` ticks at ``now`` (none outside market hours).

        The time since each walk last moved is shared out over its ticks in the batch, so the
        volatility per second of exchange time does not depend on the tick rate. The last
        price sits on the best bid or the best ask, as a trade does.
        """
        if count <= 0 or not is_market_open(now, always_open=self._always_open):
            return []
        t = now.timestamp()
        day = to_ist(now).date()
        if day != self._day:
            self._roll_day(day, t)
        profile = intraday_profile(session_fraction(now))
        rng = self._rng
        r = rng.random
        gauss = rng.gauss
        states = self._states
        picks = rng.choices(self._indices, cum_weights=self._cum_weights, k=count)

        # Split the time since each walk last moved evenly over its ticks in this batch.
        uses: dict[_Walk, int] = {}
        for i in picks:
            w = states[i].walk
            uses[w] = uses.get(w, 0) + 1
        move_sd: dict[_Walk, float] = {}
        jump_p: dict[_Walk, float] = {}
        for walk, n_uses in uses.items():
            dt = min(max(t - walk.last_t, 0.0), _MAX_STEP_SECONDS) / n_uses
            move_sd[walk] = math.sqrt(walk.variance * dt * profile)
            jump_p[walk] = walk.jump_rate * dt
            walk.last_t = max(walk.last_t, t)

        ticks: list[Tick] = []
        append = ticks.append
        fraction = session_fraction(now)
        for i in picks:
            s = states[i]
            walk = s.walk
            sd = move_sd[walk]
            if sd > 0.0:
                walk.x += gauss(0.0, sd)
                if r() < jump_p[walk]:
                    walk.x += gauss(0.0, walk.jump_sd)
            if s.role == _ROLE_FUTURE:
                s.basis = 0.95 * s.basis + gauss(0.0, 0.00004)
            append(self._tick(s, self._fair(s, math.exp(walk.x), t), now, profile, fraction))
        return ticks

    def step(self, now: datetime, count: int) -> list[Tick]:
        """Produce the next ``count`` ticks at ``now`` (none outside market hours).

        ``last_tick`` answers with them at once; ``run`` records them as it publishes them.
        """
        with self._lock:
            ticks = self._generate(now, count)
        self._remember(ticks)
        return ticks

    def _remember(self, ticks: list[Tick]) -> None:
        last = self._last
        for tick in ticks:
            last[tick.key] = tick

    def _tick(
        self, s: _State, fair: float, now: datetime, profile: float, fraction: float | None
    ) -> Tick:
        r = self._rng.random
        tick = s.tick
        if s.inst.kind is InstrumentKind.INDEX:
            n = self._to_steps(s, fair)
            depth: Depth | None = None
            quantity = 0
        else:
            spread = max(s.spread_min, int(fair * s.spread_frac / tick + 0.5))
            spread += int(r() * (s.spread_extra + 1))
            bid = int(fair / tick - spread / 2 + 0.5)
            if s.role == _ROLE_CALL:
                bid = max(bid, math.ceil(max(math.exp(s.walk.x) - s.strike, 0.0) / tick))
            elif s.role == _ROLE_PUT:
                bid = max(bid, math.ceil(max(s.strike - math.exp(s.walk.x), 0.0) / tick))
            bid = max(bid, 1)
            ask = bid + spread
            n = ask if r() < 0.5 else bid
            # Drawn now (one call on the stream), built when read: see simulator/depth.py.
            depth = LazyDepth(
                self._rng.getrandbits(DEPTH_BITS), bid, ask, s.tick_dec, s.lot, s.depth_lots,
                s.gap_max,
            )
            lots = 1 + int(self._rng.expovariate(1.0 / (s.trade_lots * profile)))
            quantity = lots * s.lot
            s.volume += quantity
            if s.role != _ROLE_SPOT:
                self._move_oi(s, lots, fraction)
        price = s.tick_dec * n
        s.last_n = n
        if not s.open_n:
            s.open_n = s.high_n = s.low_n = n
            s.open = s.high = s.low = price
        elif n > s.high_n:
            s.high_n, s.high = n, price
        elif n < s.low_n:
            s.low_n, s.low = n, price
        return Tick(
            key=s.key,
            ts=now,
            last_price=price,
            last_quantity=quantity,
            volume=s.volume,
            open=s.open,
            high=s.high,
            low=s.low,
            close=s.prev_close,
            depth=depth,
            oi=s.oi,
            oi_close=s.oi_close,
        )

    # -- public -------------------------------------------------------------------------

    @property
    def ticks_per_second(self) -> float:
        return self._rate

    def set_rate(self, ticks_per_second: float) -> None:
        if ticks_per_second < 0:
            raise ValueError("tick rate must be >= 0")
        self._rate = float(ticks_per_second)

    def keys(self) -> list[str]:
        return [s.key for s in self._states]

    def last_tick(self, key: str) -> Tick | None:
        return self._last.get(key)

    def fair_price(self, key: str, now: datetime) -> Decimal | None:
        """Return the model value of ``key`` at ``now`` on its tick grid (mid, no spread)."""
        s = self._by_key.get(key)
        if s is None:
            return None
        with self._lock:
            x = s.walk.x
        return s.price(self._to_steps(s, self._fair(s, math.exp(x), now.timestamp())))

    def history(self, key: str, timeframe: Timeframe, count: int, end: datetime) -> list[Bar]:
        """Return ``count`` synthetic closed bars ending before ``end``, joining the live price.

        The path belongs to the instrument's walk (its index for F&O), seeded from the
        simulator seed, the walk and the newest bucket, so repeated calls agree and an
        option's history moves with its index's history.
        """
        s = self._by_key.get(key)
        if s is None:
            raise KeyError(key)
        walk = s.walk
        walk_key = next(k for k, v in self._walks.items() if v is walk)
        with self._lock:
            spot, today = walk.x, self._day
        day = to_ist(end).date()
        if day != today and is_market_open(end, always_open=self._always_open):
            spot += self._opening_gap(walk_key, walk, day)  # the first tick at ``end`` adds it
        return self._path_bars(key, timeframe, count, end, spot)

    def previous_sessions(
        self, key: str, timeframe: Timeframe, count: int, end: datetime
    ) -> list[Bar]:
        """Return ``count`` closed bars ending before ``end``, closing where the market opened.

        Anchored on the close the simulator started from, never on the live price, so the
        same seed and ``end`` give the same bars however long the market has been ticking:
        the history a profile keeps (``services.simulator.backfill``) is reproducible.
        """
        s = self._by_key.get(key)
        if s is None:
            raise KeyError(key)
        return self._path_bars(key, timeframe, count, end, math.log(s.walk.prev_close))

    def _path_bars(
        self, key: str, timeframe: Timeframe, count: int, end: datetime, spot: float
    ) -> list[Bar]:
        s = self._by_key[key]
        starts = session_buckets(end, timeframe, count)
        if not starts:
            return []
        shape = bar_shape(starts, timeframe)
        walk = s.walk
        walk_key = next(k for k, v in self._walks.items() if v is walk)
        path = backward_path(
            history_rng(self._seed, walk_key, timeframe, starts[-1].isoformat()),
            math.exp(spot),
            shape,
            walk.variance,
        )
        vol_rng = history_rng(self._seed, key, timeframe, starts[-1].isoformat(), "volume")
        per_second = s.daily_volume / SESSION_SECONDS
        bars: list[Bar] = []
        for start, (seconds, profile, mid), (o, h, lo, c) in zip(starts, shape, path, strict=True):
            if s.role == _ROLE_SPOT:
                vo, vh, vl, vc = o, h, lo, c
            else:
                vo, vc = self._fair(s, o, mid), self._fair(s, c, mid)
                up, down = self._fair(s, h, mid), self._fair(s, lo, mid)
                vh, vl = max(up, down), min(up, down)
            no, nc = self._to_steps(s, vo), self._to_steps(s, vc)
            nh = max(no, nc, self._to_steps(s, vh))
            nl = min(no, nc, self._to_steps(s, vl))
            volume = 0
            if per_second:
                expected = per_second * seconds * profile * vol_rng.lognormvariate(0.0, 0.35)
                volume = max(1, round(expected / s.lot)) * s.lot
            bars.append(
                Bar(
                    key,
                    timeframe,
                    start,
                    s.price(no),
                    s.price(nh),
                    s.price(nl),
                    s.price(nc),
                    volume,
                    closed=True,
                )
            )
        return bars

    def _announce(self, status: ConnectionStatus) -> None:
        self._bus.publish(CONNECTION, ConnectionState(COMPONENT, status, ts=self._clock.now()))

    async def run(self) -> None:
        """Publish TICKS at the configured rate in ~15 ms batches until cancelled.

        The ticks are made on a thread of their own: at 5,000 ticks/s generating them took
        a fifth of the desktop's UI thread. The thread hands each batch to the loop with
        ``call_soon_threadsafe``, and makes no more while the loop has not published the
        last one (a long UI frame): then it owes at most a quarter of a second of ticks, as
        the loop-driven feed did, because every lossless subscriber (bars, paper broker,
        recorder) takes a backlog in one go on the loop. Each tick keeps the time it was
        made at, so a tick that waited for the loop counts that wait in its latency.
        """
        loop = asyncio.get_running_loop()
        self._announce(ConnectionStatus.CONNECTED)
        stop = threading.Event()
        ended: asyncio.Future[None] = loop.create_future()
        thread = threading.Thread(
            target=self._produce, args=(loop, stop, ended), name="simulator-ticks", daemon=True
        )
        thread.start()
        try:
            await ended  # only the thread's own failure ends it; otherwise cancelled
        finally:
            stop.set()
            with contextlib.suppress(BaseException):
                await asyncio.shield(asyncio.to_thread(thread.join))
            with contextlib.suppress(Exception):
                self._announce(ConnectionStatus.DISCONNECTED)

    def _produce(
        self, loop: asyncio.AbstractEventLoop, stop: threading.Event, ended: asyncio.Future[None]
    ) -> None:
        """The tick thread: generate a batch every ~15 ms while the market is open."""
        self.generated_on = threading.current_thread().name
        try:
            last = time.monotonic()
            owed = 0.0
            while not stop.is_set():
                if not is_market_open(self._clock.now(), always_open=self._always_open):
                    owed = 0.0
                    stop.wait(_CLOSED_POLL_SECONDS)
                    last = time.monotonic()
                    continue
                if stop.wait(_BATCH_SECONDS):
                    return
                mono = time.monotonic()
                # At most a quarter of a second is owed: after a stall (of this thread, or
                # of the loop, which has not taken the last batch yet) the feed resumes at
                # its normal pace instead of bursting, as a slow loop's ``run`` always did;
                # a burst is processed in one go by every lossless subscriber on the loop.
                owed = min(owed + self._rate * (mono - last), self._rate * _MAX_OWED_SECONDS)
                last = mono
                with self._out_lock:
                    if self._flush_scheduled:
                        continue
                count = int(owed)
                if count:
                    owed -= count
                    with self._lock:
                        ticks = self._generate(self._clock.now(), count)
                    if ticks:
                        self._post(loop, ticks)
        except BaseException as e:  # handed to ``run``, which raises it
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                loop.call_soon_threadsafe(_fail, ended, e)

    def _post(self, loop: asyncio.AbstractEventLoop, ticks: list[Tick]) -> None:
        with self._out_lock:
            self._outbox.extend(ticks)
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        """On the loop: publish every batch made since the last flush, oldest first."""
        with self._out_lock:
            ticks, self._outbox = self._outbox, []
            self._flush_scheduled = False
        if ticks:
            self._remember(ticks)
            self._bus.publish_many(TICKS, ticks)


def _fail(ended: asyncio.Future[None], error: BaseException) -> None:
    if not ended.done():
        ended.set_exception(error)
