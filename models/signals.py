"""The live loop: closed bars in, model signals out, outcomes fed back to A/B tests and monitors.

``SignalService`` listens to closed bars on the bus (losslessly: a skipped bar would shift every
feature and every outcome), keeps a rolling window of bars per (symbol, timeframe) seeded from
stored history so features have their warm-up, and scores the symbol's production models off
the event loop on the inference engine's single thread. Everything that touches the registry,
the A/B store or the monitor runs on that same thread, so they are never used from two threads
at once and the loop never blocks on a database or a model.

When a later bar closes, earlier predictions are scored (``went_up`` = this close above the
close the prediction was made on, after the model's horizon in bars; one bar for the usual
horizon of 1), which feeds the A/B harness and the monitor; the monitor's rules are then
checked, and a tripped rule rolls the model back before the next bar is scored.

``SignalTrader`` optionally turns signals into paper (or real) orders through the app's order
path, so the risk engine sees every one of them. Shadow arms never trade.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np

from models.abtest import ABHarness, ABTest, ABTestError, Arm
from models.ensemble import Ensemble
from models.features import WARMUP, BarArrays, latest_features
from models.inference import InferenceEngine
from models.monitoring import ModelMonitor
from models.registry import ModelRecord, ModelRegistry
from services.bus import BARS, EventBus, SubscriberLagged, Subscription, Topic, closed_bars
from services.clock import IST, Clock
from services.domain import (
    Bar,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Timeframe,
)
from services.tasks import cancel_and_wait

log = logging.getLogger(__name__)

BarsSource = Callable[[str, Timeframe], Sequence[Bar]]
OrderSubmit = Callable[[OrderRequest], Awaitable[Order]]

DEFAULT_WINDOW = 500  # bars kept per (symbol, timeframe): EMA seeding effects decay to ~1e-16


@dataclass(frozen=True, slots=True)
class Signal:
    """One model call for one closed bar, as shown on the chart and fed to paper trading."""

    key: str
    timeframe: Timeframe
    bar_start: datetime
    close: Decimal  # the close the call was made on
    direction: int  # +1 up, -1 down
    prob_up: float
    confidence: float  # ensemble: agreement * |2p - 1|; single model: |2p - 1|
    agreement: float
    models: tuple[tuple[str, int], ...]  # (model id, version) of every member
    at: datetime
    ab: tuple[tuple[str, str], ...] = ()  # (A/B test id, arm) for each running test involved
    shadow: bool = False  # a shadow arm's call: shown and scored, never traded

    @property
    def arm(self) -> str | None:
        return self.ab[0][1] if self.ab else None

    @property
    def source(self) -> str:
        """The order source for the audit log: ``model:<id>`` (ids joined by ``+``)."""
        return "model:" + "+".join(model_id for model_id, _ in self.models)


SIGNALS: Topic[Signal] = Topic("signals")


class _Window:
    """A bounded, append-only run of one symbol's closed bars, as float columns."""

    def __init__(self, maxlen: int) -> None:
        self.open: deque[float] = deque(maxlen=maxlen)
        self.high: deque[float] = deque(maxlen=maxlen)
        self.low: deque[float] = deque(maxlen=maxlen)
        self.close: deque[float] = deque(maxlen=maxlen)
        self.volume: deque[float] = deque(maxlen=maxlen)
        self.timestamp: deque[int] = deque(maxlen=maxlen)
        self.minute: deque[float] = deque(maxlen=maxlen)
        self.count = 0  # bars ever appended: the clock that pending predictions fall due on

    def append(self, bar: Bar) -> bool:
        ts = int(bar.start.timestamp())
        if self.timestamp and ts <= self.timestamp[-1]:
            return False  # a replayed or out-of-order bar: already seen
        local = bar.start.astimezone(IST)
        self.open.append(float(bar.open))
        self.high.append(float(bar.high))
        self.low.append(float(bar.low))
        self.close.append(float(bar.close))
        self.volume.append(float(bar.volume))
        self.timestamp.append(ts)
        self.minute.append(local.hour * 60 + local.minute + local.second / 60)
        self.count += 1
        return True

    def __len__(self) -> int:
        return len(self.close)

    def arrays(self) -> BarArrays:
        return BarArrays(
            np.fromiter(self.open, np.float64, len(self)),
            np.fromiter(self.high, np.float64, len(self)),
            np.fromiter(self.low, np.float64, len(self)),
            np.fromiter(self.close, np.float64, len(self)),
            np.fromiter(self.volume, np.float64, len(self)),
            np.fromiter(self.timestamp, np.int64, len(self)),
            np.fromiter(self.minute, np.float64, len(self)),
        )


@dataclass(slots=True)
class _Pending:
    """Predictions made on one bar that resolve together ``horizon`` bars later."""

    due: int
    bar_start: datetime
    close: float
    monitor_key: tuple[str, str, datetime, int] | None = None
    tests: set[str] = field(default_factory=set)


class SignalService:
    def __init__(
        self,
        bus: EventBus,
        registry: ModelRegistry,
        engine: InferenceEngine,
        *,
        bars_source: BarsSource,
        ensemble: Ensemble,
        abharness: ABHarness | None = None,
        monitor: ModelMonitor | None = None,
        timeframes: Iterable[Timeframe] = (Timeframe.M1,),
        clock: Clock,
        window: int = DEFAULT_WINDOW,
        name: str = "signals",
    ) -> None:
        if window <= WARMUP:
            raise ValueError(f"window must exceed the features' warm-up of {WARMUP} bars")
        self.bus = bus
        self.registry = registry
        self.engine = engine
        self.ensemble = ensemble
        self.abharness = abharness
        self.monitor = monitor
        self.timeframes = frozenset(timeframes)
        self._bars_source = bars_source
        self._clock = clock
        self._maxlen = window
        self._name = name
        # Touched only on the engine's thread (inside ``_process_sync``).
        self._windows: dict[tuple[str, Timeframe], _Window] = {}
        self._pending: dict[tuple[str, Timeframe], list[_Pending]] = {}
        self._sub: Subscription[Bar] | None = None
        self._task: asyncio.Task[None] | None = None
        self.errors = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("signal service already started")
        # Closed bars only: the live-bar updates (one per instrument and timeframe per tick
        # batch) would fill the bounded mailbox at a high tick rate and make it lag.
        self._sub = self.bus.subscribe(BARS, self._name, lossless=True, accept=closed_bars)
        self._task = asyncio.get_running_loop().create_task(self._run(self._sub))

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        await cancel_and_wait([self._task])
        self._sub = self._task = None

    async def _run(self, sub: Subscription[Bar]) -> None:
        while True:
            try:
                batch = await sub.next_batch()
            except SubscriberLagged:
                # Bars were dropped: windows now have holes. Start again from stored history.
                log.warning("signal service lagged on bars; reseeding its windows")
                await self.engine.run(self._reset_sync)
                continue
            closed = [b for b in batch if b.closed and b.timeframe in self.timeframes]
            if not closed:
                continue
            try:
                await self.process(closed)
            except Exception:
                self.errors += 1
                log.exception("signal service failed on a batch of %d bars", len(closed))

    async def process(self, bars: Sequence[Bar]) -> list[Signal]:
        """Score a batch of closed bars (in order) off the loop and publish the signals."""
        batch = list(bars)
        signals = await self.engine.run(lambda: self._process_sync(batch))
        for signal in signals:
            self.bus.publish(SIGNALS, signal)
        return signals

    def _reset_sync(self) -> None:
        self._windows.clear()
        self._pending.clear()

    # -- the engine thread -----------------------------------------------------------------

    def _process_sync(self, bars: Sequence[Bar]) -> list[Signal]:
        scopes: dict[tuple[str, Timeframe], list[ModelRecord]] = {}
        for r in self.registry.productions():
            scopes.setdefault((r.symbol, r.timeframe), []).append(r)
        tests: dict[str, ABTest] = {}
        if self.abharness is not None:
            for t in self.abharness.store.tests():
                if t.status == "running":
                    tests.setdefault(t.model_id, t)
        signals: list[Signal] = []
        resolved = 0
        for bar in bars:
            scope = (bar.key, bar.timeframe)
            records = scopes.get(scope, [])
            window = self._windows.get(scope)
            if window is None:
                if not records:
                    continue  # nobody scores this symbol: do not even keep its bars
                window = self._seed(bar)
            if not window.append(bar):
                continue
            resolved += self._resolve_due(scope, window)
            if records:
                signals.extend(self._predict(bar, window, records, tests))
        if resolved and self.monitor is not None:
            for health in self.monitor.check_all():
                if health.rolled_back_to is not None:
                    log.warning("%s v%d rolled back to v%d: %s", health.model_id, health.version,
                                health.rolled_back_to, "; ".join(health.tripped))
        return signals

    def _seed(self, bar: Bar) -> _Window:
        window = _Window(self._maxlen)
        try:
            history = sorted(
                (b for b in self._bars_source(bar.key, bar.timeframe)
                 if b.closed and b.start < bar.start),
                key=lambda b: b.start,
            )
        except Exception:
            log.exception("no history for %s %s; warming up from live bars", bar.key,
                          bar.timeframe.value)
            history = []
        for b in history[-(self._maxlen - 1):]:
            window.append(b)
        self._windows[(bar.key, bar.timeframe)] = window
        return window

    def _resolve_due(self, scope: tuple[str, Timeframe], window: _Window) -> int:
        pending = self._pending.get(scope)
        if not pending:
            return 0
        close = window.close[-1]
        due = [p for p in pending if p.due <= window.count]
        if not due:
            return 0
        self._pending[scope] = [p for p in pending if p.due > window.count]
        for p in due:
            went_up = close > p.close
            if p.monitor_key is not None and self.monitor is not None:
                self.monitor.resolve(p.monitor_key, went_up)
            for test_id in p.tests:
                assert self.abharness is not None
                # A test concluded since the prediction has nothing left to score.
                with contextlib.suppress(ABTestError):
                    self.abharness.resolve(test_id, scope[0], p.bar_start, went_up)
        return len(due)

    def _predict(
        self, bar: Bar, window: _Window, records: Sequence[ModelRecord],
        tests: dict[str, ABTest],
    ) -> list[Signal]:
        if len(window) <= WARMUP:
            return []
        arrays = window.arrays()
        row = latest_features(arrays)
        if not np.isfinite(row).all():
            return []
        previous_up = bool(arrays.close[-1] > arrays.close[-2])
        members: list[ModelRecord] = []
        ab: list[tuple[str, str]] = []
        shadows: list[tuple[ABTest, Arm, ModelRecord]] = []
        for record in records:
            test = tests.get(record.model_id)
            if test is None or self.abharness is None:
                members.append(record)
                continue
            routing = self.abharness.route(test.test_id, bar.key, bar.start)
            members.append(self._version(record, routing.trading_version))
            ab.append((test.test_id, routing.trading_arm.value))
            shadows.extend(
                (test, arm, self._version(record, v))
                for arm, v in routing.scored.items() if arm is not routing.trading_arm
            )
        try:
            vote, predictions = self.ensemble.score_sync(members, row, on_error=self._failed)
        except LookupError:
            return []
        pending: dict[int, _Pending] = {}

        def pending_for(record: ModelRecord) -> _Pending:
            h = max(record.horizon, 1)
            if h not in pending:
                pending[h] = _Pending(window.count + h, bar.start, float(arrays.close[-1]))
            return pending[h]

        by_id = {r.model_id: r for r in records}
        for p in predictions:
            record = next(r for r in members if (r.model_id, r.version) == (p.model_id, p.version))
            slot = pending_for(record)
            test = tests.get(p.model_id)
            if test is not None and self.abharness is not None:
                arm = Arm.CHAMPION if p.version == test.champion else Arm.CHALLENGER
                self._record_ab(test, arm, bar, p.prob_up)
                slot.tests.add(test.test_id)
            if self.monitor is not None and by_id[p.model_id].version == p.version:
                slot.monitor_key = (bar.key, bar.timeframe.value, bar.start, record.horizon)
                self.monitor.observe(p.model_id, p.version, slot.monitor_key, p.prob_up, row,
                                     p.latency_s, previous_up)
        at = self._clock.now()
        signals = [Signal(
            key=bar.key, timeframe=bar.timeframe, bar_start=bar.start, close=bar.close,
            direction=vote.direction, prob_up=vote.prob_up, confidence=vote.confidence,
            agreement=vote.agreement, models=tuple((m.model_id, m.version) for m in vote.members),
            at=at, ab=tuple(ab),
        )]
        for test, arm, record in shadows:
            try:
                p = self.engine.predict_sync(record.model_id, record.version, row)
            except Exception as exc:
                self._failed(record, exc)
                continue
            self._record_ab(test, arm, bar, p.prob_up)
            pending_for(record).tests.add(test.test_id)
            signals.append(Signal(
                key=bar.key, timeframe=bar.timeframe, bar_start=bar.start, close=bar.close,
                direction=p.direction, prob_up=p.prob_up, confidence=p.confidence,
                agreement=1.0, models=((record.model_id, record.version),), at=at,
                ab=((test.test_id, arm.value),), shadow=True,
            ))
        self._pending.setdefault((bar.key, bar.timeframe), []).extend(pending.values())
        return signals

    def _version(self, production: ModelRecord, version: int) -> ModelRecord:
        if production.version == version:
            return production
        return self.registry.get(production.model_id, version)

    def _record_ab(self, test: ABTest, arm: Arm, bar: Bar, prob_up: float) -> None:
        assert self.abharness is not None
        try:
            self.abharness.record_prediction(test.test_id, arm, bar.key, bar.start, prob_up)
        except ABTestError:
            log.warning("A/B test %s: could not record %s for %s", test.test_id, arm, bar.key)

    def _failed(self, record: ModelRecord, exc: Exception) -> None:
        self.errors += 1
        log.error("%s could not predict: %s", record.label, exc)


class SignalTrader:
    """Turns confident, non-shadow signals into market orders; at most one position a symbol.

    A signal against the open position closes it (it does not reverse in one order: the next
    confident signal opens the new side), so the trader never holds more than ``quantity`` of
    a symbol. Orders go through ``order_submit`` (the app's ``OrderManager.submit``), so the
    validation and risk checks apply to the model exactly as to a person.
    """

    def __init__(
        self,
        order_submit: OrderSubmit,
        *,
        quantity: int,
        min_confidence: float,
        product: Product = Product.MIS,
    ) -> None:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError("min_confidence must be between 0 and 1")
        self._submit = order_submit
        self.quantity = quantity
        self.min_confidence = min_confidence
        self.product = product
        self.positions: dict[str, Side] = {}  # the side of each open model position
        self._in_flight: set[str] = set()
        self._sub: Subscription[Signal] | None = None
        self._task: asyncio.Task[None] | None = None

    async def on_signal(self, signal: Signal) -> Order | None:
        if signal.shadow or signal.confidence < self.min_confidence:
            return None
        key = signal.key
        if key in self._in_flight:
            return None
        want = Side.BUY if signal.direction > 0 else Side.SELL
        held = self.positions.get(key)
        if held is want:
            return None
        request = OrderRequest(key, want, self.quantity, OrderType.MARKET, self.product,
                               source=signal.source)
        self._in_flight.add(key)
        try:
            order = await self._submit(request)
        except Exception as exc:  # refused by validation, risk or the broker: stay as we were
            log.warning("signal order for %s refused: %s", key, exc)
            return None
        finally:
            self._in_flight.discard(key)
        if order.status is OrderStatus.REJECTED:
            return order
        if held is None:
            self.positions[key] = want
        else:
            del self.positions[key]
        return order

    def start(self, bus: EventBus) -> None:
        if self._task is not None:
            raise RuntimeError("signal trader already started")
        self._sub = bus.subscribe(SIGNALS, "signal-trader", lossless=True)
        self._task = asyncio.get_running_loop().create_task(self._run(self._sub))

    async def _run(self, sub: Subscription[Signal]) -> None:
        while True:
            try:
                batch = await sub.next_batch()
            except SubscriberLagged:
                log.warning("signal trader lagged; stale signals skipped")
                continue
            for signal in batch:
                await self.on_signal(signal)

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        await cancel_and_wait([self._task])
        self._sub = self._task = None
