"""Backtest runs kept in the encrypted profile, to compare and export later.

The run's statistics, equity curve and trades are stored as JSON text: they are read back
whole, never queried by field, and JSON keeps the exact decimals as strings.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from services.backtest.engine import BacktestResult
from services.backtest.stats import Statistics
from services.domain import Timeframe
from services.storage.database import Database


@dataclass(frozen=True, slots=True)
class StoredRun:
    run_id: str
    created_at: datetime
    strategy: str
    params: dict[str, Any]
    symbols: list[str]
    timeframe: Timeframe
    first_day: date
    last_day: date
    source: str
    stats: dict[str, Any]
    equity: list[tuple[str, str]]
    trades: list[dict[str, str]]


def trades_of(result: BacktestResult) -> list[dict[str, str]]:
    """One row per fill, with its order's tag and what the fill paid, as strings."""
    orders = {o.order_id: o for o in result.orders}
    rows = []
    for f in result.fills:
        order = orders.get(f.order_id)
        rows.append(
            {
                "time": f.ts.isoformat(),
                "symbol": f.key,
                "side": f.side.value,
                "quantity": str(f.quantity),
                "price": str(f.price),
                "product": f.product.value,
                "order_id": f.order_id,
                "tag": (order.request.tag or "") if order else "",
            }
        )
    return rows


def as_run(
    result: BacktestResult,
    stats: Statistics,
    *,
    params: dict[str, Any],
    timeframe: Timeframe,
    first_day: date,
    last_day: date,
    source: str,
) -> StoredRun:
    """A finished backtest in the shape it is stored, reported and exported in."""
    now = datetime.now(UTC)
    return StoredRun(
        run_id=f"BT{now:%Y%m%d%H%M%S}{secrets.token_hex(2)}",
        created_at=now,
        strategy=result.strategy,
        params=params,
        symbols=list(result.keys),
        timeframe=timeframe,
        first_day=first_day,
        last_day=last_day,
        source=source,
        stats=stats.as_dict(),
        equity=[(p.ts.isoformat(), str(p.equity)) for p in result.equity],
        trades=trades_of(result),
    )


class BacktestStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, run: StoredRun) -> str:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO backtests (run_id, created_at, strategy, params, symbols, "
                "timeframe, first_day, last_day, source, stats, equity, trades) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.created_at.isoformat(),
                    run.strategy,
                    json.dumps(run.params, sort_keys=True, default=str),
                    json.dumps(run.symbols),
                    run.timeframe.value,
                    run.first_day.isoformat(),
                    run.last_day.isoformat(),
                    run.source,
                    json.dumps(run.stats),
                    json.dumps(run.equity),
                    json.dumps(run.trades),
                ),
            )
        return run.run_id

    def runs(self, limit: int = 50) -> list[StoredRun]:
        rows = self._db.query(
            "SELECT run_id, created_at, strategy, params, symbols, timeframe, first_day, "
            "last_day, source, stats, equity, trades FROM backtests "
            "ORDER BY created_at DESC LIMIT ?",
            (limit,),
        )
        return [_run(r) for r in rows]

    def get(self, run_id: str) -> StoredRun | None:
        rows = self._db.query(
            "SELECT run_id, created_at, strategy, params, symbols, timeframe, first_day, "
            "last_day, source, stats, equity, trades FROM backtests WHERE run_id = ?",
            (run_id,),
        )
        return _run(rows[0]) if rows else None


def _run(r: tuple[Any, ...]) -> StoredRun:
    return StoredRun(
        run_id=r[0],
        created_at=datetime.fromisoformat(r[1]),
        strategy=r[2],
        params=json.loads(r[3]),
        symbols=json.loads(r[4]),
        timeframe=Timeframe(r[5]),
        first_day=date.fromisoformat(r[6]),
        last_day=date.fromisoformat(r[7]),
        source=r[8],
        stats=json.loads(r[9]),
        equity=[tuple(p) for p in json.loads(r[10])],
        trades=json.loads(r[11]),
    )
