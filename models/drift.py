"""Population Stability Index: how far live feature values moved from the training data.

Bins are the training deciles, fixed when the model is registered and stored with its record
(JSON numbers, so monitoring never needs to unpickle anything). Empty bins get a small floor so
that one unseen bin does not make the index infinite. Conventional reading: below 0.10 stable,
0.10-0.25 moderate shift, above 0.25 major shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.features import FloatArray

DEFAULT_BINS = 10
FLOOR = 1e-4

DriftReference = dict[str, dict[str, list[float]]]


def drift_reference(
    X: FloatArray, names: Sequence[str], bins: int = DEFAULT_BINS
) -> DriftReference:
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError("reference rows do not match the feature names")
    out: DriftReference = {}
    for j, name in enumerate(names):
        col = X[:, j]
        col = col[np.isfinite(col)]
        edges = np.unique(np.quantile(col, np.linspace(0, 1, bins + 1)[1:-1]))
        out[name] = {"edges": edges.tolist(), "fractions": _fractions(col, edges).tolist()}
    return out


def _fractions(values: FloatArray, edges: Any) -> FloatArray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return np.asarray(counts / max(len(values), 1), dtype=np.float64)


def psi(reference: dict[str, list[float]], values: FloatArray) -> float:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return 0.0
    edges = np.asarray(reference["edges"])
    expected = np.maximum(np.asarray(reference["fractions"]), FLOOR)
    actual = np.maximum(_fractions(values, edges), FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_by_feature(
    reference: DriftReference, X: FloatArray, names: Sequence[str]
) -> dict[str, float]:
    return {
        name: psi(reference[name], X[:, j]) for j, name in enumerate(names) if name in reference
    }
