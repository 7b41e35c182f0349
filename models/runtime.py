"""The embedded models of a running terminal: one object the desktop and headless both use.

(Moved from ``app/models_runtime.py``: behaviour lives in models/, the app only builds it.)

It composes the registry (in the unlocked profile database), signed artifacts beside it,
the inference engine (with the ONNX fast path when the optional extra is installed), the
ensemble, the A/B harness, the monitor and the live signal loop, and optionally a
``SignalTrader`` that sends confident signals through the app's normal order path (so every
risk check applies).

Threads: everything that touches the registry, the A/B store or the monitor runs on the
inference engine's single thread (``engine.run``), exactly like ``SignalService`` does, so
they are never used from two threads at once and the event loop never blocks on the
database. Training runs on its own thread so a long fit never delays a live signal.

scikit-learn is imported only when a model is first loaded or trained: building and
starting this runtime costs numpy and nothing more, which keeps desktop cold start fast.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from models.abtest import ABEvaluation, ABHarness, ABTest
from models.artifacts import ArtifactStore, KeyProvider
from models.ensemble import Ensemble, EnsembleSignal, Member
from models.features import WARMUP, BarArrays, latest_features
from models.inference import InferenceEngine, MissingFeaturesError
from models.monitoring import ModelHealth, ModelMonitor
from models.registry import (
    AuditFn,
    LoadedModel,
    ModelRecord,
    ModelRegistry,
    RegistryError,
    Stage,
    StageEvent,
    parse_stage,
)
from models.signals import DEFAULT_WINDOW, SignalService, SignalTrader
from models.sqlstore import SqlABStore, SqlOnnxStore, SqlRegistryStore
from services.bus import EventBus
from services.clock import Clock
from services.domain import LIVE_TIMEFRAMES, Bar, Order, OrderRequest, Timeframe
from services.marketdata.service import HistoryService, recorded_from
from services.storage import Database

log = logging.getLogger(__name__)

T = TypeVar("T")

ACTOR = "terminal"
Progress = Callable[[int, int, str], None]
# (key, timeframe, count, end) -> up to ``count`` closed bars ending before ``end``
HistorySource = Callable[[str, Timeframe, int, datetime], Sequence[Bar]]
OrderSubmit = Callable[[OrderRequest], Awaitable[Order]]
# (model id, version) -> (inference seconds, outcome correct): ``Metrics.model_observers``
Observers = Callable[[str, str], tuple[Callable[[float], None], Callable[[bool], None]]]

_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # as models.registry enforces
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class UnknownSymbolError(LookupError):
    """A symbol the terminal does not know."""


class NoProductionModelError(LookupError):
    """Nothing in production can score this request."""


class StageOrderError(RegistryError):
    """A deployment that would skip a stage without ``force``."""


@dataclass(frozen=True)
class ModelsConfig:
    """How the runtime trains and trades. Training sizes are the CLI's defaults."""

    paper_trading: bool = False
    paper_quantity: int = 1
    min_confidence: float = 0.3
    train_bars: int = 3000
    train_size: int = 1000
    test_size: int = 250
    max_splits: int = 5
    timeframes: tuple[Timeframe, ...] = LIVE_TIMEFRAMES
    # joblib backend for training: "threading" on one machine; "dask" or "ray" once their
    # joblib backend is registered (models/training.py) to spread a large universe.
    training_backend: str = "threading"
    training_jobs: int = 1


@dataclass(frozen=True)
class PredictionResult:
    """One answer to ``predict``: the ensemble's vote (a single member for one model)."""

    symbol: str | None
    timeframe: Timeframe | None
    signal: EnsembleSignal
    features: dict[str, float] = field(default_factory=dict)


class _MeteredMonitor(ModelMonitor):
    """The monitor, also feeding the metrics hooks (latency per prediction, each outcome)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.observers: Observers | None = None
        self._bound: dict[tuple[str, int], tuple[Callable[[float], None],
                                                   Callable[[bool], None]]] = {}
        self._calls: dict[Hashable, list[tuple[str, int, float]]] = {}

    def _hooks(
        self, model_id: str, version: int
    ) -> tuple[Callable[[float], None], Callable[[bool], None]] | None:
        if self.observers is None:
            return None
        key = (model_id, version)
        if key not in self._bound:
            self._bound[key] = self.observers(model_id, str(version))
        return self._bound[key]

    def observe(
        self, model_id: str, version: int, key: Hashable, prob_up: float,
        features: Any = None, latency_s: float | None = None, previous_up: bool | None = None,
    ) -> None:
        super().observe(model_id, version, key, prob_up, features, latency_s, previous_up)
        hooks = self._hooks(model_id, version)
        if hooks is not None:
            if latency_s is not None:
                hooks[0](latency_s)
            self._calls.setdefault(key, []).append((model_id, version, prob_up))

    def resolve(self, key: Hashable, went_up: bool) -> int:
        n = super().resolve(key, went_up)
        for model_id, version, prob_up in self._calls.pop(key, []):
            hooks = self._hooks(model_id, version)
            if hooks is not None:
                hooks[1]((prob_up > 0.5) == went_up)
        return n

    def live_accuracy(self) -> dict[tuple[str, int], float]:
        out: dict[tuple[str, int], float] = {}
        for model_id in list(self._states):
            health = self.health(model_id)
            if health.resolved:
                out[(model_id, health.version)] = health.accuracy
        return out


class ModelsRuntime:
    def __init__(
        self,
        database: Database,
        bus: EventBus,
        clock: Clock,
        *,
        artifacts_dir: Path,
        signing_key: KeyProvider,
        symbol_known: Callable[[str], bool],
        history: HistoryService | HistorySource | None = None,
        order_submit: OrderSubmit | None = None,
        config: ModelsConfig | None = None,
        audit: AuditFn | None = None,
    ) -> None:
        from models import onnx_path

        self.config = config or ModelsConfig()
        self.bus = bus
        self.clock = clock
        self._db = database
        if not isinstance(history, HistoryService):
            # Bars recorded in this profile, then the given synthetic history (no providers).
            history = HistoryService(None, recorded=recorded_from(database), fallback=history,
                                     clock=clock)
        self.history = history
        self._symbol_known = symbol_known
        audit_fn: AuditFn = audit or _audit_into(database)
        tx = database.transaction
        self.artifacts = ArtifactStore(artifacts_dir, signing_key)
        self.registry = ModelRegistry(
            SqlRegistryStore(tx, create=False), self.artifacts, audit=audit_fn, now=clock.now,
            symbol_known=symbol_known,
        )
        self.onnx: onnx_path.OnnxPath | None = None
        if onnx_path.available():
            self.onnx = onnx_path.OnnxPath(SqlOnnxStore(tx, create=False), self.artifacts,
                                           self._load)
            self.registry.production_hooks.append(self.onnx.on_production)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._training = ThreadPoolExecutor(max_workers=1, thread_name_prefix="training")
        self._threads_limited = False
        self.loaded: set[tuple[str, int]] = set()
        self.engine = InferenceEngine(
            self._load, self._executor, fast=self.onnx.scorer if self.onnx else None
        )
        self.ensemble = Ensemble(self.registry, self.engine)
        self.harness = ABHarness(SqlABStore(tx, create=False), self.registry, audit=audit_fn,
                                 now=clock.now)
        self.alerts: deque[ModelHealth] = deque(maxlen=50)
        self.monitor = _MeteredMonitor(self.registry, alert=self._alert, audit=audit_fn)
        self.on_rollback: Callable[[str, str], None] | None = None  # (model id, reason)
        self.signals = SignalService(
            bus, self.registry, self.engine, bars_source=self._window_bars,
            ensemble=self.ensemble, abharness=self.harness, monitor=self.monitor,
            timeframes=self.config.timeframes, clock=clock,
        )
        self.trader: SignalTrader | None = None
        if self.config.paper_trading and order_submit is not None:
            self.trader = SignalTrader(order_submit, quantity=self.config.paper_quantity,
                                       min_confidence=self.config.min_confidence)
        self.training_now: str | None = None
        self.started = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the live signal loop (and the trader) on the running loop."""
        self.signals.start()
        if self.trader is not None:
            self.trader.start(self.bus)
        self.started = True

    async def stop(self) -> None:
        await self.signals.stop()
        if self.trader is not None:
            await self.trader.stop()
        self.started = False
        self._training.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._executor.shutdown, True)

    def attach_metrics(self, observers: Observers) -> None:
        """Feed ``Metrics.model_observers`` from every live prediction and outcome."""
        self.monitor.observers = observers

    # -- the engine thread -------------------------------------------------------------------
    def _load(self, model_id: str, version: int) -> LoadedModel:
        if not self._threads_limited:
            from models.inference import limit_threads  # scikit-learn: only now

            limit_threads()
            self._threads_limited = True
        loaded = self.registry.load(model_id, version)
        self.loaded.add((model_id, version))
        return loaded

    def _alert(self, health: ModelHealth) -> None:
        self.alerts.append(health)
        log.warning("model %s v%d: %s%s", health.model_id, health.version,
                    "; ".join(health.tripped),
                    f" (rolled back to v{health.rolled_back_to})"
                    if health.rolled_back_to is not None else "")
        if health.rolled_back_to is not None and self.on_rollback is not None:
            self.on_rollback(health.model_id, "monitor")

    async def _on_engine(self, fn: Callable[[], T]) -> T:
        return await self.engine.run(fn)

    # -- bars ------------------------------------------------------------------------------
    def bars(self, symbol: str, timeframe: Timeframe, count: int) -> list[Bar]:
        """The last ``count`` closed bars from the history service, without fetching.

        Blocking (database): call it off the event loop.
        """
        return self.history.window(symbol, timeframe, count, self.clock.now())

    def _window_bars(self, symbol: str, timeframe: Timeframe) -> Sequence[Bar]:
        return self.bars(symbol, timeframe, DEFAULT_WINDOW)

    # -- reading ---------------------------------------------------------------------------
    async def models(self, model_id: str | None = None) -> list[ModelRecord]:
        return await self._on_engine(lambda: self.registry.records(model_id))

    async def events(self, model_id: str | None = None) -> list[StageEvent]:
        return await self._on_engine(lambda: self.registry.history(model_id))

    async def ab_tests(self) -> list[ABEvaluation]:
        """Every A/B test with its evidence so far, newest first."""

        def run() -> list[ABEvaluation]:
            tests = self.harness.store.tests()
            return [self.harness.evaluate(t.test_id) for t in reversed(tests)]

        return await self._on_engine(run)

    async def status(self) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            productions = self.registry.productions()
            health = []
            for r in productions:
                try:
                    h = self.monitor.health(r.model_id)
                except RegistryError:
                    continue
                health.append({
                    "model_id": h.model_id, "version": h.version, "resolved": h.resolved,
                    "accuracy": _finite(h.accuracy), "baseline_accuracy":
                        _finite(h.baseline_accuracy), "brier": _finite(h.brier),
                    "max_psi": _finite(h.max_psi), "latency_p99_s": _finite(h.latency_p99_s),
                })
            running = [t for t in self.harness.store.tests() if t.status == "running"]
            return {
                "enabled": True,
                "signals_running": self.started,
                "paper_trading": self.trader is not None,
                "onnx_available": self.onnx is not None,
                "production": [
                    {"model_id": r.model_id, "version": r.version, "symbol": r.symbol,
                     "timeframe": r.timeframe.value, "model_type": r.model_type,
                     "loaded": (r.model_id, r.version) in self.loaded}
                    for r in productions
                ],
                "ab_tests_running": [t.test_id for t in running],
                "health": health,
                "alerts": [
                    {"model_id": a.model_id, "version": a.version, "tripped": list(a.tripped),
                     "rolled_back_to": a.rolled_back_to} for a in self.alerts
                ],
                "training": self.training_now,
                "errors": self.signals.errors,
            }

        return await self._on_engine(run)

    def live_accuracy(self) -> dict[tuple[str, int], float]:
        """Live accuracy per observed production version (engine thread or a scrape)."""
        try:
            return self.monitor.live_accuracy()
        except RuntimeError:  # the monitor's dict changed under a concurrent scrape
            return {}

    # -- writing ---------------------------------------------------------------------------
    async def train(
        self,
        model_id: str,
        symbol: str,
        timeframe: Timeframe | str,
        model_type: str,
        *,
        horizon: int = 1,
        actor: str = ACTOR,
        progress: Progress | None = None,
    ) -> ModelRecord:
        """Train on the training thread and register a new version (stage dev).

        ``progress`` is called on the event loop, so a view can update from it directly.
        """
        from models.training import TrainingConfig, check_model_type, train

        tf = Timeframe(timeframe)
        check_model_type(model_type)
        self._check_target(model_id, symbol)
        config = TrainingConfig(
            model_type, horizon=horizon, train_size=self.config.train_size,
            test_size=self.config.test_size, max_splits=self.config.max_splits,
            backend=self.config.training_backend, n_jobs=self.config.training_jobs,
        )
        loop = asyncio.get_running_loop()

        def report(done: int, total: int, message: str) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, done, total, message)

        self.training_now = f"{model_id} ({model_type}, {symbol} {tf.value})"
        try:
            # Fetch what is missing first (on the loop: network and the store's thread), then
            # fit on the training thread.
            bars = await self.history.bars(symbol, tf, self.config.train_bars,
                                           progress=_fetching(progress), closed_only=True)

            def fit() -> Any:
                report(0, 1, f"{len(bars)} bars of {symbol} {tf.value}")
                return train(BarArrays.from_bars(bars), config, progress=report)

            result = await loop.run_in_executor(self._training, fit)
        finally:
            self.training_now = None
        return await self._on_engine(lambda: self.registry.register(
            result, model_id=model_id, symbol=symbol, timeframe=tf, actor=actor))

    def _check_target(self, model_id: str, symbol: str) -> None:
        if not _MODEL_ID.match(model_id):
            raise RegistryError(
                f"invalid model id {model_id!r}: letters, digits, _ and - (at most 64)"
            )
        if not self._symbol_known(symbol):
            raise UnknownSymbolError(f"unknown symbol {symbol!r}")

    async def promote(
        self, model_id: str, version: int, stage: str | Stage, *, actor: str = ACTOR,
        force: bool = False, reason: str = "",
    ) -> ModelRecord:
        return await self._on_engine(lambda: self.registry.promote(
            model_id, version, stage, actor=actor, force=force, reason=reason))

    async def rollback(self, model_id: str, *, actor: str = ACTOR, reason: str = "") -> ModelRecord:
        record = await self._on_engine(
            lambda: self.registry.rollback(model_id, actor=actor, reason=reason))
        if self.on_rollback is not None:
            self.on_rollback(model_id, "manual")
        return record

    async def deploy(
        self,
        model_id: str,
        symbol: str,
        timeframe: Timeframe | str,
        model_type: str,
        environment: str,
        *,
        actor: str = ACTOR,
        force: bool = False,
        version: int | None = None,
        horizon: int = 1,
        progress: Progress | None = None,
    ) -> ModelRecord:
        """Put a version in ``environment`` (dev, staging or production).

        Without ``version`` a new version is trained and registered (stage dev), then moved
        to ``environment``: staging is one step; production skips staging, so it needs
        ``force``. With ``version`` that existing version is promoted, one step at a time
        unless ``force``. Every refusal happens before anything is trained or written.
        """
        from models.training import check_model_type

        target = parse_stage(environment)
        if target is Stage.ARCHIVED:
            raise RegistryError("deploy to dev, staging or production (archive is not a deploy)")
        tf = Timeframe(timeframe)
        check_model_type(model_type)
        self._check_target(model_id, symbol)
        if version is None:
            if target is Stage.PRODUCTION and not force:
                raise StageOrderError(
                    "a new version starts in dev: production would skip staging; deploy to "
                    "staging first (then deploy that version to production) or pass force"
                )
            record = await self.train(model_id, symbol, tf, model_type, horizon=horizon,
                                      actor=actor, progress=progress)
            if target is Stage.DEV:
                return record
            return await self.promote(model_id, record.version, target, actor=actor,
                                      force=force, reason="deployed")
        existing = await self._on_engine(lambda: self.registry.get(model_id, version))
        if (existing.symbol, existing.timeframe, existing.model_type) != (symbol, tf, model_type):
            raise RegistryError(
                f"{existing.label} is a {existing.model_type} model of {existing.symbol} "
                f"{existing.timeframe.value}, not {model_type} of {symbol} {tf.value}"
            )
        if existing.stage is target:
            return existing
        try:
            return await self.promote(model_id, version, target, actor=actor, force=force,
                                      reason="deployed")
        except RegistryError as exc:
            if "skips or reverses" in str(exc):
                raise StageOrderError(str(exc)) from None
            raise

    async def ab_start(
        self, model_id: str, champion: int, challenger: int, *, actor: str = ACTOR,
        split: float = 0.5, shadow: bool = False, min_samples: int = 200, alpha: float = 0.05,
        tau: float = 0.05,
    ) -> ABTest:
        return await self._on_engine(lambda: self.harness.start(
            model_id, champion, challenger, actor=actor, split=split, shadow=shadow,
            min_samples=min_samples, alpha=alpha, tau=tau))

    async def ab_evaluate(self, test_id: str) -> ABEvaluation:
        return await self._on_engine(lambda: self.harness.evaluate(test_id))

    async def ab_conclude(self, test_id: str, *, actor: str = ACTOR, force: bool = False) -> ABTest:
        """Promote the challenger if it won, else stop the test (``force``: without a verdict)."""
        return await self._on_engine(
            lambda: self.harness.conclude(test_id, actor=actor, force=force))

    # -- prediction ------------------------------------------------------------------------
    async def predict(
        self,
        *,
        symbol: str | None = None,
        features: Mapping[str, float] | None = None,
        model_id: str | None = None,
        version: int | None = None,
        timeframe: Timeframe | str | None = None,
    ) -> PredictionResult:
        """Score ``features`` (or the symbol's latest bars) with its production ensemble.

        With ``model_id`` only that model (its production version, or ``version``) votes.
        """
        if symbol is not None and not self._symbol_known(symbol):
            raise UnknownSymbolError(f"unknown symbol {symbol!r}")
        if symbol is None and model_id is None:
            raise ValueError("give a symbol, a model_id, or both")
        if features is None and symbol is None:
            raise MissingFeaturesError("without a symbol, send the features to score")
        tf = Timeframe(timeframe) if timeframe is not None else None
        return await self._on_engine(
            lambda: self._predict_sync(symbol, features, model_id, version, tf))

    def _predict_sync(
        self, symbol: str | None, features: Mapping[str, float] | None, model_id: str | None,
        version: int | None, tf: Timeframe | None,
    ) -> PredictionResult:
        records: list[ModelRecord]
        if model_id is not None:
            if version is not None:
                records = [self.registry.get(model_id, version)]
            else:
                live = self.registry.production(model_id)
                if live is None:
                    raise NoProductionModelError(f"{model_id} has no production version")
                records = [live]
        else:
            assert symbol is not None
            records = self.registry.productions(symbol)
            if tf is not None:
                records = [r for r in records if r.timeframe is tf]
            if not records:
                raise NoProductionModelError(
                    f"no production model for {symbol}"
                    + (f" {tf.value}" if tf is not None else "")
                )
        scope_tf = tf or records[0].timeframe
        records = [r for r in records if r.timeframe is scope_tf] or records
        row: Any
        shown: dict[str, float] = {}
        if features is not None:
            row = dict(features)
            shown = {k: float(v) for k, v in features.items()}
        else:
            key = symbol or records[0].symbol
            bars = self.bars(key, scope_tf, DEFAULT_WINDOW)
            if len(bars) <= WARMUP:
                raise MissingFeaturesError(
                    f"only {len(bars)} bars of {key} {scope_tf.value}: features need more than "
                    f"{WARMUP}"
                )
            row = latest_features(BarArrays.from_bars(bars))
            if not np.isfinite(row).all():
                raise MissingFeaturesError(f"the latest bars of {key} give incomplete features")
            shown = dict(zip(records[0].feature_names, (float(x) for x in row), strict=False))
        vote, _ = self.ensemble.score_sync(records, row)
        return PredictionResult(symbol or records[0].symbol, scope_tf, vote, shown)


def _fetching(progress: Progress | None) -> Progress | None:
    if progress is None:
        return None

    def report(done: int, total: int, message: str) -> None:
        progress(0, 1, f"fetching history: {done}/{total} days, {message}")

    return report


def members_text(members: Sequence[Member] | Sequence[tuple[str, int]]) -> str:
    parts = []
    for m in members:
        model_id, version = (m.model_id, m.version) if isinstance(m, Member) else m
        parts.append(f"{model_id} v{version}")
    return ", ".join(parts)


def _finite(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def _audit_into(database: Database) -> AuditFn:
    from services.security import AuditLog

    audit_log = AuditLog(database)

    def record(kind: str, actor: str, details: dict[str, Any]) -> object:
        try:
            return audit_log.record(kind, actor, details)
        except Exception:  # the change is made; a failed audit write is logged, not undone
            log.exception("could not write audit event %s", kind)
            return None

    return record
