"""The bars a sweep's configurations replay, boxed for sending to cluster workers.

One object, scattered to each worker once before the tasks run: a plain list would be pickled
into every task (joblib's dask backend scatters only weak-referenceable objects, and
``client.scatter`` would split a list into one future per bar).

Pickled as ``Bar`` records (four ``Decimal`` prices and an aware ``datetime`` each), 13,500
one-minute bars are 1.4 MB and take about 0.3 s to pickle and unpickle; a scatter to two
workers does that twice on its critical path (the second worker copies from the first). So a
``Candles`` pickles as a few integer arrays: each price as its integer coefficient and
decimal exponent, each start as wall-clock microseconds with its ``fold``, the volume, the
key and timeframe as indexes into short tables. That is exact: ``Decimal(coefficient)``
scaled by the exponent is the same number with the same trailing zeros, and the start is
rebuilt with the same tzinfo object, so a backtest on the rebuilt bars computes the same
figures as one on the originals. Bars that cannot be packed exactly (mixed tzinfos, naive
starts, a non-finite price, a coefficient beyond 64 bits) travel as records, as before.

The receiving process rebuilds the records on first use and keeps them, so each worker
decodes once however many configurations it runs; a worker that passes the candles on to
another sends the packed arrays it received, without packing again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from services.domain import Bar, Timeframe

_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001  # wall-clock time, the zone kept apart
_MICROSECOND = timedelta(microseconds=1)
_INT64 = 2**63
_FIELDS = ("open", "high", "low", "close")

# keys, timeframes, tzinfo, key index, timeframe index, starts, folds,
# coefficients (n x 4), exponents (n x 4), volumes, closed
_Array = npt.NDArray[Any]
_Packed = tuple[
    tuple[str, ...], tuple[str, ...], tzinfo,
    _Array, _Array, _Array, _Array, _Array, _Array, _Array, _Array,
]


class Candles:
    """An immutable sequence of bars that pickles compactly (see the module's docstring)."""

    __slots__ = ("_bars", "_packed")

    def __init__(self, bars: Sequence[Bar]) -> None:
        self._bars: tuple[Bar, ...] | None = tuple(bars)
        self._packed: _Packed | None = None

    @property
    def bars(self) -> tuple[Bar, ...]:
        if self._bars is None:
            assert self._packed is not None
            self._bars = _unpack(self._packed)
        return self._bars

    def __len__(self) -> int:
        if self._bars is not None:
            return len(self._bars)
        assert self._packed is not None
        return len(self._packed[5])

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self._packed is None:
            assert self._bars is not None
            packed = _pack(self._bars)
            if packed is None:
                return (Candles, (self._bars,))
            self._packed = packed
        return (_from_packed, (self._packed,))


def _from_packed(packed: _Packed) -> Candles:
    candles = Candles(())
    candles._bars = None
    candles._packed = packed
    return candles


def _pack(bars: tuple[Bar, ...]) -> _Packed | None:
    """The arrays for ``bars``, or None when some bar cannot be packed exactly."""
    if not bars:
        return None
    zone = bars[0].start.tzinfo
    if zone is None:
        return None
    keys: dict[str, int] = {}
    frames: dict[str, int] = {}
    key_ix: list[int] = []
    frame_ix: list[int] = []
    starts: list[int] = []
    folds: list[int] = []
    coefficients: list[int] = []
    exponents: list[int] = []
    volumes: list[int] = []
    closed: list[bool] = []
    seen: dict[str, tuple[int, int]] = {}  # a Decimal's str names its value and exponent
    for bar in bars:
        start = bar.start
        if start.tzinfo is not zone:
            return None
        key_ix.append(keys.setdefault(bar.key, len(keys)))
        frame_ix.append(frames.setdefault(bar.timeframe.value, len(frames)))
        starts.append((start.replace(tzinfo=None, fold=0) - _EPOCH) // _MICROSECOND)
        folds.append(start.fold)
        for price in (bar.open, bar.high, bar.low, bar.close):
            text = str(price)
            known = seen.get(text)
            if known is None:
                exponent = price.as_tuple().exponent
                if not isinstance(exponent, int) or (price.is_signed() and not price):
                    return None  # NaN, infinity, or a negative zero (its sign would be lost)
                known = seen[text] = (int(price.scaleb(-exponent)), exponent)
            coefficients.append(known[0])
            exponents.append(known[1])
        volumes.append(bar.volume)
        closed.append(bar.closed)
    if len(frames) > 127 or len(keys) >= 2**31:
        return None
    try:
        return (
            tuple(keys), tuple(frames), zone,
            np.array(key_ix, np.int32), np.array(frame_ix, np.int8),
            np.array(starts, np.int64), np.array(folds, np.int8),
            np.array(coefficients, np.int64).reshape(-1, 4),
            np.array(exponents, np.int16).reshape(-1, 4),
            np.array(volumes, np.int64), np.array(closed, np.bool_),
        )
    except OverflowError:  # a coefficient, exponent or volume beyond its array's type
        return None


def _unpack(packed: _Packed) -> tuple[Bar, ...]:
    keys, frames, zone, key_ix, frame_ix, starts, folds, coefficients, exponents, volumes, \
        closed = packed
    timeframes = [Timeframe(v) for v in frames]
    prices: dict[tuple[int, int], Decimal] = {}
    times: dict[tuple[int, int], datetime] = {}

    def price(coefficient: int, exponent: int) -> Decimal:
        value = prices.get((coefficient, exponent))
        if value is None:
            value = prices[(coefficient, exponent)] = Decimal(coefficient).scaleb(exponent)
        return value

    bars = []
    for k, f, s, fold, c, e, v, done in zip(
        key_ix.tolist(), frame_ix.tolist(), starts.tolist(), folds.tolist(),
        coefficients.tolist(), exponents.tolist(), volumes.tolist(), closed.tolist(),
        strict=True,
    ):
        start = times.get((s, fold))
        if start is None:
            start = times[(s, fold)] = (_EPOCH + s * _MICROSECOND).replace(
                tzinfo=zone, fold=fold
            )
        bars.append(Bar(keys[k], timeframes[f], start, price(c[0], e[0]), price(c[1], e[1]),
                        price(c[2], e[2]), price(c[3], e[3]), v, done))
    return tuple(bars)
