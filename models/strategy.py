"""A registered model as a backtest strategy: long while it says "up" with confidence.

The model's features are causal (the perturbation test in tests/models shows no look-ahead),
so they are computed once over the whole replay and scored in one batch; each bar then only
looks its probability up. The orders still go through the backtester's one order path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from models.features import BarArrays, compute_features
from models.inference import Predictor
from services.domain import Bar, Fill, OrderRequest, OrderType, Product, Side, Timeframe
from services.strategies.base import StrategyContext


@dataclass
class ModelStrategy:
    """Buy ``quantity`` when P(up) ≥ 0.5 + min_confidence/2, sell back to flat when P(up) ≤
    0.5 − min_confidence/2; bars the model cannot score yet (warm-up) do nothing."""

    predictor: Predictor
    timeframe: Timeframe
    quantity: int = 1
    product: Product = Product.MIS
    min_confidence: float = 0.2
    name: str = "model"
    _prob: dict[tuple[str, datetime], float] = field(default_factory=dict, repr=False)

    def prepare(self, bars: Sequence[Bar]) -> int:
        """Score every bar of the replay at once; returns how many could be scored."""
        by_key: dict[str, list[Bar]] = {}
        for bar in bars:
            if bar.timeframe is self.timeframe:
                by_key.setdefault(bar.key, []).append(bar)
        scored = 0
        for key, series in by_key.items():
            series.sort(key=lambda b: b.start)
            rows = compute_features(BarArrays.from_bars(series))
            good = [i for i, row in enumerate(rows) if np.isfinite(row).all()]
            if not good:
                continue
            probs = self.predictor.prob_up(rows[good])
            for i, p in zip(good, probs, strict=True):
                self._prob[(key, series[i].start)] = float(p)
            scored += len(good)
        return scored

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> Sequence[OrderRequest]:
        p = self._prob.get((bar.key, bar.start))
        if p is None:
            return ()
        held = ctx.position(bar.key)
        edge = self.min_confidence / 2
        if p >= 0.5 + edge and held <= 0:
            return (OrderRequest(bar.key, Side.BUY, self.quantity - held, OrderType.MARKET,
                                 self.product),)
        if p <= 0.5 - edge and held > 0:
            return (OrderRequest(bar.key, Side.SELL, held, OrderType.MARKET, self.product),)
        return ()

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> Sequence[OrderRequest]:
        return ()
