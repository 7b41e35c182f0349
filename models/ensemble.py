"""An ensemble of production models: a weighted vote whose confidence falls when members disagree.

Weights come from each member's walk-forward log loss against a coin flip (ln 2 - log loss):
a model no better than a coin gets almost no say. Confidence is the weighted share of members
on the ensemble's side times the strength of the averaged probability, so two members pulling
in opposite directions give a low-confidence signal even if each is sure of itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from models.inference import Features, InferenceEngine, Prediction
from models.registry import ModelRecord, ModelRegistry

MIN_WEIGHT = 1e-3


@dataclass(frozen=True, slots=True)
class Member:
    model_id: str
    version: int
    weight: float
    prob_up: float


@dataclass(frozen=True, slots=True)
class EnsembleSignal:
    prob_up: float
    agreement: float  # weighted share of members voting with the ensemble, 0.5..1
    confidence: float  # agreement * |2p - 1|
    members: tuple[Member, ...]

    @property
    def direction(self) -> int:
        return 1 if self.prob_up > 0.5 else -1


def weight_of(record: ModelRecord) -> float:
    log_loss = record.metrics.get("model", {}).get("log_loss", math.log(2))
    return max(math.log(2) - log_loss, MIN_WEIGHT)


def combine(members: Sequence[Member]) -> EnsembleSignal:
    if not members:
        raise ValueError("an ensemble needs at least one member")
    total = sum(m.weight for m in members)
    if total <= 0:
        raise ValueError("ensemble weights must be positive")
    p = sum(m.weight * m.prob_up for m in members) / total
    up = p > 0.5
    agreement = sum(m.weight for m in members if (m.prob_up > 0.5) == up) / total
    return EnsembleSignal(p, agreement, agreement * abs(2 * p - 1), tuple(members))


class Ensemble:
    def __init__(self, registry: ModelRegistry, engine: InferenceEngine) -> None:
        self.registry = registry
        self.engine = engine

    def score_sync(
        self,
        records: Sequence[ModelRecord],
        features: Features,
        *,
        on_error: Callable[[ModelRecord, Exception], None] | None = None,
    ) -> tuple[EnsembleSignal, list[Prediction]]:
        """Vote of exactly these versions (the live loop swaps in an A/B arm's version).

        Blocking: call from the engine's thread. The members' own predictions come back too, for
        monitoring (latency) and A/B recording. With ``on_error``, a member that fails (refused
        artifact, missing features) is reported and left out instead of sinking the vote; if
        none is left, ``LookupError``.
        """
        predictions: list[Prediction] = []
        members: list[Member] = []
        for r in records:
            try:
                p = self.engine.predict_sync(r.model_id, r.version, features)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(r, exc)
                continue
            predictions.append(p)
            members.append(Member(r.model_id, r.version, weight_of(r), p.prob_up))
        if not members:
            raise LookupError("no ensemble member could predict")
        return combine(members), predictions

    def predict_sync(self, symbol: str, features: Features) -> EnsembleSignal:
        records = self.registry.productions(symbol)
        if not records:
            raise LookupError(f"no production model for {symbol}")
        return self.score_sync(records, features)[0]

    async def predict(self, symbol: str, features: Features) -> EnsembleSignal:
        return await self.engine.run(lambda: self.predict_sync(symbol, features))
