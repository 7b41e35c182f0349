"""The live loop end to end: a real bus, a real SQLite registry, trained models, closed bars."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest

from models.abtest import ABHarness
from models.ensemble import Ensemble
from models.features import BarArrays, latest_features
from models.inference import InferenceEngine
from models.monitoring import ModelHealth, ModelMonitor, MonitorRules
from models.registry import ModelRegistry, Stage
from models.signals import SIGNALS, Signal, SignalService, SignalTrader
from models.sqlstore import SqlABStore
from models.synthetic import synthetic_bars
from models.training import TrainingResult
from services.broker import OrderRejected
from services.bus import BARS, EventBus, Subscription
from services.clock import ManualClock
from services.domain import Bar, Order, OrderRequest, OrderStatus, Product, Side, Timeframe
from tests.models.conftest import AuditSpy

SYMBOL = "NSE:SYNTH"
TF = Timeframe.M5
NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


class Rig:
    def __init__(self, registry: ModelRegistry, history: Sequence[Bar], *,
                 harness: ABHarness | None = None, monitor: ModelMonitor | None = None) -> None:
        self.bus = EventBus()
        self.registry = registry
        self.engine = InferenceEngine(registry.load)
        self.clock = ManualClock(NOW)
        self.history = list(history)
        self.source_calls: list[tuple[str, Timeframe]] = []
        self.service = SignalService(
            self.bus, registry, self.engine, bars_source=self._source,
            ensemble=Ensemble(registry, self.engine), abharness=harness, monitor=monitor,
            timeframes=(TF,), clock=self.clock,
        )
        self.signals: Subscription[Signal] = self.bus.subscribe(SIGNALS, "test", lossless=True)

    def _source(self, key: str, timeframe: Timeframe) -> list[Bar]:
        self.source_calls.append((key, timeframe))
        return self.history if key == SYMBOL else []

    async def feed(self, bar: Bar) -> list[Signal]:
        """Publish one closed bar and wait for the signals it produces."""
        self.bus.publish(BARS, bar)
        return await asyncio.wait_for(self.signals.next_batch(), 20)


@pytest.fixture
async def rig_factory() -> AsyncIterator[list[Rig]]:
    rigs: list[Rig] = []
    yield rigs
    for rig in rigs:
        await rig.service.stop()
        rig.engine.close()


def _promote(registry: ModelRegistry, result: TrainingResult, model_id: str = "mom") -> int:
    v = registry.register(result, model_id=model_id, symbol=SYMBOL, timeframe=TF,
                          actor="t").version
    registry.promote(model_id, v, "production", actor="t", force=True)
    return v


async def test_closed_bars_produce_signals_with_the_models_call(
    registry: ModelRegistry, trained: dict[str, TrainingResult], rig_factory: list[Rig]
) -> None:
    result = trained["logistic_regression"]
    _promote(registry, result)
    bars = synthetic_bars(260, seed=5, phi=0.3, timeframe=TF)
    rig = Rig(registry, bars[:250])
    rig_factory.append(rig)
    rig.service.start()
    live = bars[250:]

    rig.bus.publish(BARS, replace(live[0], closed=False))  # a bar still building: ignored
    rig.bus.publish(BARS, replace(live[0], key="NSE:OTHER"))  # no model for it: ignored
    [signal] = await rig.feed(live[0])

    row = latest_features(BarArrays.from_bars(bars[:251]))
    expected = float(result.estimator.predict_proba(row.reshape(1, -1))[0, 1])
    assert signal.key == SYMBOL and signal.timeframe is TF
    assert signal.bar_start == live[0].start and signal.close == live[0].close
    assert signal.prob_up == pytest.approx(expected, abs=1e-9)
    assert signal.direction == (1 if expected > 0.5 else -1)
    assert signal.confidence == pytest.approx(abs(2 * expected - 1))
    assert signal.models == (("mom", 1),) and signal.source == "model:mom"
    assert signal.ab == () and signal.arm is None and not signal.shadow
    assert signal.at == NOW
    assert rig.source_calls == [(SYMBOL, TF)]  # seeded once, never for the unscored symbol

    # A replay of the same bar is not scored twice; the next bar is.
    rig.bus.publish(BARS, live[0])
    [nxt] = await rig.feed(live[1])
    assert nxt.bar_start == live[1].start
    assert rig.signals.pending() == 0


async def test_outcomes_feed_the_ab_harness_and_the_monitor(
    registry: ModelRegistry, ab_store: SqlABStore, trained: dict[str, TrainingResult],
    contrarian: TrainingResult, rig_factory: list[Rig],
) -> None:
    _promote(registry, trained["logistic_regression"])
    registry.register(contrarian, model_id="mom", symbol=SYMBOL, timeframe=TF, actor="t")
    harness = ABHarness(ab_store, registry)
    test = harness.start("mom", 1, 2, actor="t", shadow=True, min_samples=5, test_id="ab1")
    monitor = ModelMonitor(registry, rules=MonitorRules(min_resolved=10_000))
    bars = synthetic_bars(240, seed=7, phi=0.3, timeframe=TF)
    rig = Rig(registry, bars[:200], harness=harness, monitor=monitor)
    rig_factory.append(rig)
    rig.service.start()

    champion: list[Signal] = []
    challenger: list[Signal] = []
    for bar in bars[200:]:
        out = await rig.feed(bar)
        assert len(out) == 2
        main, shadow = out
        assert not main.shadow and main.ab == (("ab1", "champion"),) and main.models == (
            ("mom", 1),)
        assert shadow.shadow and shadow.arm == "challenger" and shadow.models == (("mom", 2),)
        champion.append(main)
        challenger.append(shadow)

    closes = np.array([float(b.close) for b in bars[200:]])
    went_up = closes[1:] > closes[:-1]  # the last bar's outcome is not known yet

    def hits(signals: list[Signal]) -> int:
        return int(sum((s.prob_up > 0.5) == up for s, up in zip(signals, went_up, strict=False)))

    ev = harness.evaluate(test.test_id)
    assert (ev.champion.n, ev.challenger.n) == (39, 39)
    assert ev.champion.hits == hits(champion)
    assert ev.challenger.hits == hits(challenger)
    assert ev.champion.hits > ev.challenger.hits  # momentum model beats the contrarian

    health = monitor.health("mom")
    assert health.version == 1 and health.resolved == 39
    assert health.accuracy == pytest.approx(hits(champion) / 39)
    assert health.latency_p99_s < 0.05


async def test_degraded_model_is_rolled_back_by_the_live_loop(
    registry: ModelRegistry, trained: dict[str, TrainingResult], contrarian: TrainingResult,
    audit: AuditSpy, rig_factory: list[Rig],
) -> None:
    _promote(registry, trained["logistic_regression"])
    _promote(registry, contrarian)  # v2, the planted degraded model, replaces v1
    alerts: list[ModelHealth] = []
    monitor = ModelMonitor(registry, rules=MonitorRules(min_resolved=150), alert=alerts.append,
                           audit=audit)
    bars = synthetic_bars(400, seed=11, phi=0.3, timeframe=TF)
    rig = Rig(registry, bars[:100], monitor=monitor)
    rig_factory.append(rig)
    rig.service.start()

    served: list[int] = []
    for bar in bars[100:]:
        [signal] = await rig.feed(bar)
        served.append(signal.models[0][1])

    assert served[0] == 2 and served[-1] == 1
    switch = served.index(1)
    assert 150 <= switch <= 160, switch  # rolled back as soon as the rule could trip
    assert set(served[switch:]) == {1}
    assert registry.production("mom").version == 1  # type: ignore[union-attr]
    assert registry.get("mom", 2).stage is Stage.ARCHIVED
    assert alerts and alerts[0].rolled_back_to == 1 and "accuracy" in alerts[0].tripped[0]
    assert "model.rollback" in audit.kinds()


def _signal(direction: int = 1, confidence: float = 0.4, *, shadow: bool = False,
            key: str = SYMBOL) -> Signal:
    p = 0.5 + direction * confidence / 2
    return Signal(key, TF, NOW, Decimal("100.00"), direction, p, confidence, 1.0,
                  (("mom", 1),), NOW, shadow=shadow)


class Submitted:
    def __init__(self) -> None:
        self.requests: list[OrderRequest] = []
        self.refuse = False

    async def __call__(self, request: OrderRequest) -> Order:
        if self.refuse:
            raise OrderRejected("max loss reached", rule="daily_loss")
        self.requests.append(request)
        return Order(f"o{len(self.requests)}", request, OrderStatus.OPEN, NOW, NOW)


async def test_signal_trader_trades_confident_signals_only() -> None:
    submit = Submitted()
    trader = SignalTrader(submit, quantity=10, min_confidence=0.3)

    assert await trader.on_signal(_signal(1, 0.2)) is None  # not confident enough
    assert await trader.on_signal(_signal(1, 0.9, shadow=True)) is None  # shadow never trades
    assert submit.requests == []

    order = await trader.on_signal(_signal(1, 0.4))
    assert order is not None
    [req] = submit.requests
    assert (req.key, req.side, req.quantity, req.product) == (SYMBOL, Side.BUY, 10, Product.MIS)
    assert req.source == "model:mom"
    assert await trader.on_signal(_signal(1, 0.8)) is None  # already long: one position a symbol

    await trader.on_signal(_signal(-1, 0.5))  # against the position: close it, do not reverse
    assert [r.side for r in submit.requests] == [Side.BUY, Side.SELL]
    assert trader.positions == {}

    submit.refuse = True  # the risk engine says no: the trader stays flat
    assert await trader.on_signal(_signal(-1, 0.5)) is None
    assert trader.positions == {}
    submit.refuse = False
    await trader.on_signal(_signal(-1, 0.5))
    assert submit.requests[-1].side is Side.SELL and trader.positions == {SYMBOL: Side.SELL}


async def test_signal_trader_follows_the_live_loop_without_ever_doubling_up(
    registry: ModelRegistry, trained: dict[str, TrainingResult], rig_factory: list[Rig],
) -> None:
    _promote(registry, trained["logistic_regression"])
    bars = synthetic_bars(300, seed=3, phi=0.3, timeframe=TF)
    rig = Rig(registry, bars[:200])
    rig_factory.append(rig)
    submit = Submitted()
    trader = SignalTrader(submit, quantity=5, min_confidence=0.0)
    trader.start(rig.bus)
    rig.service.start()
    try:
        for bar in bars[200:]:
            await rig.feed(bar)
        for _ in range(50):
            await asyncio.sleep(0)
    finally:
        await trader.stop()
    assert len(submit.requests) > 2
    net = 0
    for r in submit.requests:
        net += r.quantity if r.side is Side.BUY else -r.quantity
        assert abs(net) <= 5
        assert r.source == "model:mom"
