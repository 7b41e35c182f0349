"""Backtest statistics, each beside buy-and-hold of the same instruments.

Returns are daily (the last equity of each IST day), annualised over 252 trading days.
These are report figures, so floats are fine here; the order path that produced the equity
is exact. An empty or one-day backtest reports ``None`` where a figure has no meaning rather
than a NaN that would poison a JSON export.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal

from services.backtest.engine import BacktestResult
from services.clock import to_ist

TRADING_DAYS = 252


@dataclass(frozen=True, slots=True)
class Statistics:
    start_equity: float
    end_equity: float
    total_return: float
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    hit_rate: float | None
    trades: int
    turnover: float
    charges: float
    buy_hold_return: float | None
    buy_hold_cagr: float | None
    buy_hold_sharpe: float | None
    buy_hold_sortino: float | None
    buy_hold_max_drawdown: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _daily(points: list[tuple[date, float]]) -> list[float]:
    last: dict[date, float] = {}
    for day, value in points:
        last[day] = value
    return [last[d] for d in sorted(last)]


def _returns(values: list[float]) -> list[float]:
    return [b / a - 1 for a, b in itertools.pairwise(values) if a > 0]


def _sharpe(returns: list[float]) -> float | None:
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return None if var <= 0 else mean / math.sqrt(var) * math.sqrt(TRADING_DAYS)


def _sortino(returns: list[float]) -> float | None:
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    downside = [min(r, 0.0) ** 2 for r in returns]
    dd = math.sqrt(sum(downside) / len(returns))
    return None if dd <= 0 else mean / dd * math.sqrt(TRADING_DAYS)


def max_drawdown(values: list[float]) -> float:
    """Largest fall from a peak, as a positive fraction of the peak (0.12 = 12%)."""
    peak = -math.inf
    worst = 0.0
    for v in values:
        peak = max(peak, v)
        if peak > 0:
            worst = max(worst, (peak - v) / peak)
    return worst


def _cagr(start: float, end: float, days: int) -> float | None:
    if start <= 0 or end <= 0 or days < 2:
        return None
    return float((end / start) ** (365.25 / days) - 1)


def statistics(result: BacktestResult) -> Statistics:
    start_equity = float(result.funds.opening_balance)
    points = [(to_ist(p.ts).date(), float(p.equity)) for p in result.equity]
    daily = [start_equity, *_daily(points)]
    end_equity = daily[-1]
    first_day = to_ist(result.fills[0].ts).date() if result.fills else None
    days = (
        (to_ist(result.equity[-1].ts).date() - first_day).days + 1
        if first_day is not None and result.equity
        else len(daily)
    )
    returns = _returns(daily)
    # Trades: fills that reduce a position; a win when the realised move beats zero.
    held: dict[str, tuple[int, Decimal]] = {}
    wins = trades = 0
    turnover = Decimal(0)
    for fill in sorted(result.fills, key=lambda f: (f.ts, f.fill_id)):
        turnover += fill.price * fill.quantity
        qty, avg = held.get(fill.key, (0, Decimal(0)))
        signed = fill.side.sign * fill.quantity
        if qty and (qty > 0) != (signed > 0):
            trades += 1
            wins += (fill.price - avg) * (1 if qty > 0 else -1) > 0
            after = qty + signed
            if after == 0:
                avg = Decimal(0)
            elif (after > 0) != (qty > 0):
                avg = fill.price  # flipped through zero: the rest opens at this price
            qty = after
        else:
            avg = (avg * abs(qty) + fill.price * fill.quantity) / (abs(qty) + fill.quantity)
            qty += signed
        held[fill.key] = (qty, avg)
    bh = _buy_and_hold(result.first_prices, result.last_prices)
    bh_curve = _buy_and_hold_curve(result)
    bh_returns = _returns(bh_curve)
    return Statistics(
        start_equity=start_equity,
        end_equity=end_equity,
        total_return=end_equity / start_equity - 1 if start_equity else 0.0,
        cagr=_cagr(start_equity, end_equity, days),
        sharpe=_sharpe(returns),
        sortino=_sortino(returns),
        max_drawdown=max_drawdown(daily),
        hit_rate=wins / trades if trades else None,
        trades=trades,
        turnover=float(turnover),
        charges=float(result.funds.charges),
        buy_hold_return=bh,
        buy_hold_cagr=_cagr(1.0, 1.0 + bh, days) if bh is not None else None,
        buy_hold_sharpe=_sharpe(bh_returns),
        buy_hold_sortino=_sortino(bh_returns),
        buy_hold_max_drawdown=max_drawdown(bh_curve) if len(bh_curve) > 1 else None,
    )


def _buy_and_hold_curve(result: BacktestResult) -> list[float]:
    """Value of 1 rupee split equally and held, at each day's close (bought at the open)."""
    legs = [
        (key, float(result.first_prices[key]), closes)
        for key, closes in result.daily_closes.items()
        if result.first_prices.get(key)
    ]
    days = sorted({d for _, _, closes in legs for d in closes})
    if not legs or not days:
        return []
    last = {key: first for key, first, _ in legs}
    curve = [1.0]
    for day in days:
        for key, _, closes in legs:
            if day in closes:
                last[key] = float(closes[day])
        curve.append(sum(last[key] / first for key, first, _ in legs) / len(legs))
    return curve

def _buy_and_hold(first: dict[str, Decimal], last: dict[str, Decimal]) -> float | None:
    """Equal weights bought at the first price and held to the last, before charges."""
    legs = [float(last[k] / first[k]) - 1 for k in first if k in last and first[k] > 0]
    return sum(legs) / len(legs) if legs else None
