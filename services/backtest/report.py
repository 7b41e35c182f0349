"""Exports of a backtest run: trades as CSV, and one self-contained HTML report.

pandas sits here, at the boundary: the run's exact figures (strings) become a DataFrame once,
for CSV and HTML tables. The charts are inline SVG drawn from the equity curve, so the
report opens anywhere, offline, with nothing fetched.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from services.backtest.stats import max_drawdown
from services.backtest.store import StoredRun

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]  # no stubs for pandas 3

_FIGURES = (
    ("Total return", "total_return", "buy_hold_return", "pct"),
    ("CAGR", "cagr", "buy_hold_cagr", "pct"),
    ("Sharpe", "sharpe", "buy_hold_sharpe", "num"),
    ("Sortino", "sortino", "buy_hold_sortino", "num"),
    ("Max drawdown", "max_drawdown", "buy_hold_max_drawdown", "pct"),
    ("Hit rate", "hit_rate", None, "pct"),
    ("Trades", "trades", None, "int"),
    ("Turnover (₹)", "turnover", None, "money"),
    ("Charges paid (₹)", "charges", None, "money"),
)


def _fmt(value: object, kind: str) -> str:
    if value is None:
        return "—"
    assert isinstance(value, int | float)
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:.2f}"


def figures_table(run: StoredRun) -> list[tuple[str, str, str]]:
    """(figure, strategy, buy-and-hold) rows, formatted for people."""
    rows = []
    for label, mine, theirs, kind in _FIGURES:
        bh = _fmt(run.stats.get(theirs), kind) if theirs else "—"
        rows.append((label, _fmt(run.stats.get(mine), kind), bh))
    return rows


def trades_frame(run: StoredRun) -> pd.DataFrame:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]  # no stubs for pandas 3

    columns = ["time", "symbol", "side", "quantity", "price", "product", "order_id", "tag"]
    return pd.DataFrame(run.trades, columns=columns)


def write_csv(run: StoredRun, path: Path) -> None:
    trades_frame(run).to_csv(path, index=False)


def _svg(values: list[float], *, colour: str, title: str, width: int = 720) -> str:
    height = 180
    if len(values) < 2:
        return f"<p>{html.escape(title)}: not enough points to draw.</p>"
    lo, hi = min(values), max(values)
    spread = (hi - lo) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - (v - lo) / spread * (height - 10) - 5:.1f}"
        for i, v in enumerate(values)
    )
    return (
        f'<figure><figcaption>{html.escape(title)}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">'
        f'<rect width="100%" height="100%" fill="#101418"/>'
        f'<polyline fill="none" stroke="{colour}" stroke-width="1" points="{points}"/>'
        f"</svg><br><small>{lo:,.2f} … {hi:,.2f}</small></figure>"
    )


def drawdown_series(equity: list[float]) -> list[float]:
    peak = float("-inf")
    out = []
    for v in equity:
        peak = max(peak, v)
        out.append(-(peak - v) / peak * 100 if peak > 0 else 0.0)
    return out


def write_html(run: StoredRun, path: Path) -> None:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]  # no stubs for pandas 3

    equity = [float(v) for _, v in run.equity]
    figures = pd.DataFrame(figures_table(run), columns=["Figure", "Strategy", "Buy and hold"])
    params = ", ".join(f"{k}={v}" for k, v in sorted(run.params.items())) or "defaults"
    title = f"Backtest {run.run_id}: {run.strategy} on {', '.join(run.symbols)}"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{run.timeframe.value} bars from {run.first_day} to {run.last_day} "
        f"({html.escape(run.source)}); parameters: {html.escape(params)}. Every fill paid "
        "brokerage, STT, exchange, SEBI, stamp and GST charges. Max drawdown of the strategy "
        f"is {max_drawdown(equity) * 100:.2f}%.</p>",
        figures.to_html(index=False, border=0, classes="figures"),
        _svg(equity, colour="#4fc3f7", title="Equity (₹)"),
        _svg(drawdown_series(equity), colour="#ef5350", title="Drawdown (%)"),
        "<h2>Trades</h2>",
        trades_frame(run).to_html(index=False, border=0, classes="trades"),
    ]
    style = (
        "body{font-family:sans-serif;background:#0b0e11;color:#e0e0e0;margin:2em}"
        "table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #333}"
        "th{text-align:left}figure{margin:1em 0}"
    )
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{style}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
