"""``dalal backtest``: a strategy over stored or simulated history, on the live order path."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from app.commands.vault import add_profile_args, guarded, unlock

if TYPE_CHECKING:
    from models.registry import ModelRegistry
    from services.domain import Bar, Timeframe
    from services.storage import Database
    from services.strategies.base import Strategy

ACTOR = "cli"


def _params(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param wants NAME=VALUE, not {pair!r}")
        out[key] = value
    return out


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{flag} wants a date like 2026-11-02, not {text!r}") from None


def _progress(done: int) -> None:
    if sys.stderr.isatty():
        print(f"\rreplayed {done:,} bars", end="", file=sys.stderr, flush=True)


@guarded
def backtest_cmd(args: argparse.Namespace) -> int:
    from services.backtest import Backtest, BacktestConfig, statistics
    from services.backtest.data import NoBars
    from services.backtest.report import figures_table, write_csv, write_html
    from services.backtest.store import BacktestStore, as_run
    from services.domain import Timeframe
    from services.instruments import InstrumentRegistry, bundled_universe
    from services.strategies import build_strategy

    if args.list:
        _vault, profile_db = unlock(args)
        try:
            runs = BacktestStore(profile_db).runs()
        finally:
            profile_db.close()
        if not runs:
            print("no backtests kept in this profile yet")
        for run in runs:
            total = run.stats.get("total_return")
            shown = f"{total * 100:+.2f}%" if isinstance(total, int | float) else "—"
            print(f"{run.run_id}  {run.strategy:10} {','.join(run.symbols):24} "
                  f"{run.timeframe.value:>3} {run.first_day}..{run.last_day}  {shown}")
        return 0
    if not args.strategy or not args.symbols or not args.start or not args.end:
        raise ValueError("backtest needs --strategy, --symbols, --from and --to (or --list)")
    first, last = _day(args.start, "--from"), _day(args.end, "--to")
    if last < first:
        raise ValueError("--to is before --from")
    keys = [k.strip() for k in args.symbols.split(",") if k.strip()]
    timeframe = Timeframe(args.interval)
    try:
        capital = Decimal(args.capital)
    except InvalidOperation:
        raise ValueError(f"--capital wants a number of rupees, not {args.capital!r}") from None
    params = _params(args.param)
    if args.grid:
        return _sweep(args, keys, timeframe, first, last, params)
    model_stack = contextlib.ExitStack()
    db: Database | None = None
    strategy: Strategy
    if args.strategy.startswith("model:"):
        from app.commands.model import opened

        models, _harness, db = model_stack.enter_context(opened(args))
    else:
        strategy = build_strategy(
            args.strategy, params, quantity=args.quantity, product=args.product,
            timeframe=timeframe.value,
        )
        if not args.no_save or args.source == "stored":
            _vault, db = unlock(args)
            model_stack.callback(db.close)
    try:
        bars = _load_bars(args.source, db, keys, timeframe, first, last)
        if args.strategy.startswith("model:"):
            strategy = _model_strategy(models, args.strategy, timeframe, args, bars)
        registry = InstrumentRegistry(bundled_universe(last)[0])
        config = BacktestConfig(opening_balance=capital, tariff=args.tariff)
        result = asyncio.run(
            Backtest(strategy, registry, bars[0].start, config).run_bars(bars, _progress)
        )
        if sys.stderr.isatty():
            print(file=sys.stderr)
        stats = statistics(result)
        run = as_run(
            result, stats, params={**params, "quantity": args.quantity, "product": args.product},
            timeframe=timeframe, first_day=first, last_day=last, source=args.source,
        )
        if db is not None and not args.no_save:
            BacktestStore(db).save(run)
    except NoBars as e:
        raise ValueError(str(e)) from None
    finally:
        model_stack.close()
    print(f"{run.strategy} on {', '.join(keys)}: {result.bars:,} {timeframe.value} bars, "
          f"{len(result.fills)} fills, {len(result.refusals)} refused by the risk checks")
    print(f"{'':18} {'strategy':>14} {'buy and hold':>14}")
    for label, mine, theirs in figures_table(run):
        print(f"{label:18} {mine:>14} {theirs:>14}")
    if args.csv:
        write_csv(run, args.csv)
        print(f"trades written to {args.csv}")
    if args.html:
        write_html(run, args.html)
        print(f"report written to {args.html}")
    if not args.no_save:
        print(f"kept in the profile as {run.run_id}")
    return 0


def _model_strategy(
    models: ModelRegistry, spec: str, timeframe: Timeframe, args: argparse.Namespace,
    bars: list[Bar],
) -> Strategy:
    """``model:ID`` (its production version) or ``model:ID@VERSION`` as a strategy."""
    from models.inference import Predictor
    from models.strategy import ModelStrategy
    from services.domain import Product

    model_id, _, version_text = spec.removeprefix("model:").partition("@")
    if version_text:
        if not version_text.isdigit():
            raise ValueError(f"model versions are numbers: {spec!r}")
        record = models.get(model_id, int(version_text))
    else:
        found = models.production(model_id)
        if found is None:
            raise ValueError(
                f"model {model_id!r} has no production version; give one as "
                f"model:{model_id}@VERSION (see dalal model list)"
            )
        record = found
    if record.timeframe is not timeframe:
        raise ValueError(
            f"{record.label} was trained on {record.timeframe.value} bars; use --interval "
            f"{record.timeframe.value}"
        )
    strategy = ModelStrategy(
        Predictor(models.load(record.model_id, record.version)), timeframe,
        quantity=args.quantity, product=Product(args.product), name=f"model:{record.label}",
    )
    if strategy.prepare(bars) == 0:
        raise ValueError(f"{record.label}: too few bars to compute its features")
    return strategy


def _load_bars(
    source: str,
    db: Database | None,
    keys: list[str],
    timeframe: Timeframe,
    first: date,
    last: date,
) -> list[Bar]:
    """Stored history (fetched, else recorded live bars), or the simulator's when asked."""
    from services.backtest.data import NoBars, simulator_bars, span
    from services.marketdata.store import HistoryStore

    try:
        if source == "simulator":
            return simulator_bars(keys, timeframe, first, last)
        assert db is not None
        start, end = span(first, last)
        store = HistoryStore(db)
        bars: list[Bar] = []
        for key in keys:
            found = store.bars(key, timeframe, start, end) or db.bars.between(
                key, timeframe, start, end
            )
            if not found:
                raise NoBars(
                    f"no stored {timeframe.value} bars for {key} from {first} to {last}: "
                    f"fetch them with `dalal data fetch {key} --interval {timeframe.value} "
                    f"--from {first} --to {last}`, or use --source simulator"
                )
            bars.extend(found)
        return bars
    except NoBars as e:
        raise ValueError(str(e)) from None


def _axes(pairs: list[str]) -> dict[str, list[int]]:
    axes: dict[str, list[int]] = {}
    for pair in pairs:
        name, sep, values = pair.partition("=")
        try:
            axes[name] = [int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            axes[name] = []
        if not sep or not name or not axes[name]:
            raise ValueError(f"--grid wants NAME=V1,V2,... with whole numbers, not {pair!r}")
    return axes


def _sweep(
    args: argparse.Namespace,
    keys: list[str],
    timeframe: Timeframe,
    first: date,
    last: date,
    fixed: dict[str, str],
) -> int:
    from app.settings import load_settings
    from services.backtest import BacktestConfig
    from services.backtest.sweep import grid, sweep

    cluster = args.cluster or load_settings(args.config).cluster
    axes = _axes(args.grid)
    configs = [{**{k: int(v) for k, v in fixed.items()}, **c} for c in grid(axes)]
    if args.source == "stored":
        _vault, db = unlock(args)
        try:
            bars = _load_bars("stored", db, keys, timeframe, first, last)
        finally:
            db.close()
    else:
        bars = _load_bars("simulator", None, keys, timeframe, first, last)
    common: dict[str, object] = {
        "quantity": args.quantity, "product": args.product, "timeframe": timeframe.value
    }
    where = cluster or f"{args.jobs} local process(es)"
    print(f"sweeping {len(configs)} configurations of {args.strategy} on {where}")
    results = sweep(
        args.strategy, configs, common, bars,
        BacktestConfig(opening_balance=Decimal(args.capital), tariff=args.tariff),
        cluster=cluster, n_jobs=args.jobs,
    )
    ranked = sorted(results, key=lambda r: r.stats["end_equity"], reverse=True)
    print(f"{'parameters':28} {'return':>9} {'sharpe':>7} {'max dd':>7} {'trades':>6} "
          f"{'charges':>10}")
    for r in ranked:
        s = r.stats
        sharpe = f"{s['sharpe']:.2f}" if s["sharpe"] is not None else "—"
        label = " ".join(f"{k}={v}" for k, v in sorted(r.params.items()))
        print(f"{label:28} {s['total_return'] * 100:8.2f}% {sharpe:>7} "
              f"{s['max_drawdown'] * 100:6.2f}% {s['trades']:>6} {s['charges']:>10,.2f}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "backtest",
        help="replay a strategy over history through the live order path",
        description="Replays stored (or the simulator's) bars through the strategy, the "
        "order manager, the risk checks, paper matching and charges.",
    )
    p.add_argument("--strategy", help="sma_cross, orb, or model:ID[@VERSION] (a registered model)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="strategy parameter (sma_cross: fast, slow; orb: minutes)")
    p.add_argument("--symbols", help="comma-separated keys, e.g. NSE:INFY,NSE:TCS")
    p.add_argument("--from", dest="start", metavar="DATE", help="first day (YYYY-MM-DD)")
    p.add_argument("--to", dest="end", metavar="DATE", help="last day (YYYY-MM-DD)")
    p.add_argument("--interval", default="5m", choices=["1m", "5m", "15m", "30m", "1h", "1d"])
    p.add_argument("--quantity", type=int, default=1, help="order quantity (default 1)")
    p.add_argument("--product", default="MIS", choices=["MIS", "CNC", "NRML"])
    p.add_argument("--capital", default="1000000", help="opening cash in rupees")
    p.add_argument("--tariff", default="zerodha", help="whose brokerage is charged")
    p.add_argument("--source", default="stored", choices=["stored", "simulator"],
                   help="stored history (default) or the simulator's deterministic history")
    p.add_argument("--csv", type=Path, help="write the trades as CSV")
    p.add_argument("--html", type=Path, help="write a self-contained HTML report")
    p.add_argument("--no-save", action="store_true", help="do not keep the run in the profile")
    p.add_argument("--list", action="store_true", help="list the runs kept in the profile")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                   help="sweep a parameter over values (repeat for a grid)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the sweep on dask: tcp://host:8786, or local:N processes")
    p.add_argument("--jobs", type=int, default=1, help="local processes for a sweep")
    add_profile_args(p)
    p.set_defaults(func=backtest_cmd)
