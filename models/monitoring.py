"""Live health of production models, and automatic rollback when a rule trips.

For each production model we keep its recent resolved predictions (was the call right? how far
was the probability from the outcome?), recent feature rows and prediction latencies. Rules:

* accuracy over the last ``min_resolved`` resolved predictions below the better of the two live
  baselines (always up; same direction as the previous bar) measured on the *same* bars;
* PSI above ``psi_threshold`` on any feature, once ``psi_min_rows`` live rows are in.

A tripped rule rolls the model back to its previous production version through the registry,
calls the alert callback and writes an audit entry. A model with no previous version cannot be
rolled back: the alert still fires. Blocking (registry writes): run ``check`` off the loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.drift import psi_by_feature
from models.features import FloatArray
from models.registry import AuditFn, ModelRecord, ModelRegistry, RegistryError


@dataclass(frozen=True, slots=True)
class MonitorRules:
    min_resolved: int = 200
    accuracy_margin: float = 0.0  # accuracy may fall this far below the baseline before tripping
    psi_threshold: float = 0.25
    # Slow features (MACD, 20-bar returns) move in long swings: a few hundred bars look
    # "drifted" by chance (measured: PSI ~1 on MACD with 400 live bars of the same process).
    psi_min_rows: int = 1000
    psi_window: int = 1000
    rollback_on_drift: bool = True


@dataclass(frozen=True, slots=True)
class ModelHealth:
    model_id: str
    version: int
    resolved: int
    accuracy: float
    brier: float
    baseline_accuracy: float
    psi: dict[str, float]
    latency_p50_s: float
    latency_p99_s: float
    tripped: tuple[str, ...] = ()
    rolled_back_to: int | None = None

    @property
    def max_psi(self) -> float:
        return max(self.psi.values(), default=0.0)


Alert = Callable[[ModelHealth], None]


@dataclass
class _State:
    record: ModelRecord
    pending: dict[Hashable, tuple[float, bool | None]] = field(default_factory=dict)
    resolved: deque[tuple[float, bool, bool | None]] = field(default_factory=deque)
    rows: deque[FloatArray] = field(default_factory=deque)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


def _no_audit(kind: str, actor: str, details: dict[str, Any]) -> object:
    return None


def _no_alert(health: ModelHealth) -> None:
    pass


class ModelMonitor:
    def __init__(
        self,
        registry: ModelRegistry,
        *,
        rules: MonitorRules | None = None,
        alert: Alert = _no_alert,
        audit: AuditFn = _no_audit,
        actor: str = "monitor",
    ) -> None:
        self.registry = registry
        self.rules = rules or MonitorRules()
        self._alert = alert
        self._audit = audit
        self._actor = actor
        self._states: dict[str, _State] = {}
        self._alerted: dict[tuple[str, int], frozenset[str]] = {}

    def _state(self, model_id: str, version: int) -> _State:
        state = self._states.get(model_id)
        if state is None or state.record.version != version:
            record = self.registry.get(model_id, version)
            state = _State(record, resolved=deque(maxlen=self.rules.min_resolved),
                           rows=deque(maxlen=self.rules.psi_window))
            self._states[model_id] = state
        return state

    def observe(
        self,
        model_id: str,
        version: int,
        key: Hashable,
        prob_up: float,
        features: FloatArray | None = None,
        latency_s: float | None = None,
        previous_up: bool | None = None,
    ) -> None:
        """A prediction was served; ``key`` (e.g. (symbol, bar start)) resolves it later."""
        state = self._state(model_id, version)
        state.pending[key] = (prob_up, previous_up)
        if features is not None:
            state.rows.append(np.asarray(features, dtype=np.float64))
        if latency_s is not None:
            state.latencies.append(latency_s)

    def resolve(self, key: Hashable, went_up: bool) -> int:
        """The outcome of ``key`` is known: score every model that predicted it."""
        n = 0
        for state in self._states.values():
            pending = state.pending.pop(key, None)
            if pending is not None:
                state.resolved.append((pending[0], went_up, pending[1]))
                n += 1
        return n

    def health(self, model_id: str) -> ModelHealth:
        state = self._states.get(model_id)
        if state is None:
            raise RegistryError(f"{model_id} has no observed predictions")
        rec = state.record
        resolved = list(state.resolved)
        n = len(resolved)
        if n:
            p = np.array([r[0] for r in resolved])
            y = np.array([r[1] for r in resolved], dtype=np.float64)
            accuracy = float(np.mean((p > 0.5) == (y == 1.0)))
            brier = float(np.mean((p - y) ** 2))
            baselines = [float(np.mean(y))]
            prev = [(r[2], r[1]) for r in resolved if r[2] is not None]
            if prev:
                baselines.append(float(np.mean([a == b for a, b in prev])))
            baseline = max(baselines)
        else:
            accuracy = brier = baseline = float("nan")
        psi: dict[str, float] = {}
        if len(state.rows) >= self.rules.psi_min_rows and rec.reference:
            psi = psi_by_feature(rec.reference, np.vstack(state.rows), rec.feature_names)
        lat = np.array(state.latencies) if state.latencies else np.array([np.nan])
        tripped: list[str] = []
        if n >= self.rules.min_resolved and accuracy < baseline - self.rules.accuracy_margin:
            tripped.append(
                f"accuracy {accuracy:.3f} below baseline {baseline:.3f} over {n} predictions"
            )
        worst = max(psi.items(), key=lambda kv: kv[1], default=None)
        if worst is not None and worst[1] > self.rules.psi_threshold:
            tripped.append(f"feature drift: PSI {worst[1]:.2f} on {worst[0]}")
        return ModelHealth(
            rec.model_id, rec.version, n, accuracy, brier, baseline, psi,
            float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), tuple(tripped),
        )

    def check(self, model_id: str) -> ModelHealth:
        """Evaluate the rules; roll back to the previous production version if one trips."""
        health = self.health(model_id)
        rollback_reasons = [
            t for t in health.tripped
            if self.rules.rollback_on_drift or not t.startswith("feature drift")
        ]
        alerted_key = (model_id, health.version)
        if not health.tripped:
            self._alerted.pop(alerted_key, None)  # recovered: a new trip alerts again
            return health
        rolled_to: int | None = None
        if rollback_reasons:
            current = self.registry.production(model_id)
            if current is not None and current.version == health.version:
                reason = "; ".join(rollback_reasons)
                try:
                    rolled_to = self.registry.rollback(
                        model_id, actor=self._actor, reason=reason
                    ).version
                except RegistryError:  # nothing to roll back to: keep watching this version
                    rolled_to = None
                else:
                    del self._states[model_id]
        result = ModelHealth(**{**_fields(health), "rolled_back_to": rolled_to})
        # check() runs after every scored bar: a rule that stays tripped on a version with
        # nothing to roll back to must alert once, not on every bar.
        kinds = frozenset(_rule_kind(t) for t in health.tripped)
        seen = self._alerted.get(alerted_key, frozenset())
        if rolled_to is None and kinds <= seen:
            return result
        self._alerted[alerted_key] = seen | kinds
        self._audit("model.monitor_trip", self._actor, {
            "model_id": model_id, "version": health.version, "tripped": list(health.tripped),
            "rolled_back_to": rolled_to, "resolved": health.resolved,
            "accuracy": _finite(health.accuracy),
            "baseline_accuracy": _finite(health.baseline_accuracy),
            "max_psi": _finite(health.max_psi),
        })
        self._alert(result)
        return result

    def check_all(self) -> list[ModelHealth]:
        return [self.check(model_id) for model_id in list(self._states)]


def _rule_kind(tripped: str) -> str:
    """``"accuracy ..."`` or ``"feature drift: ..."``: the rule, without its changing figures."""
    return "drift" if tripped.startswith("feature drift") else tripped.split(" ", 1)[0]


def _finite(x: float) -> float | None:
    """Audit details are canonical JSON, which has no NaN."""
    return round(x, 6) if np.isfinite(x) else None


def _fields(health: ModelHealth) -> Mapping[str, Any]:
    return {name: getattr(health, name) for name in ModelHealth.__dataclass_fields__}
