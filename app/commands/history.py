"""``dalal data fetch|quote|candles|gaps|holidays``: market data from the configured providers.

``fetch`` fills the profile's history store from the providers in ``marketdata.providers``
(settings), with a progress bar; it resumes where an earlier run stopped and ``--repair``
fetches the days that are short. ``quote`` prints delayed snapshots. ``candles`` exports
what is stored (CSV or Parquet, exact prices, with provenance). ``gaps`` lists trading days
short of their session's bars.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.commands.vault import add_profile_args, guarded, unlock

if TYPE_CHECKING:
    from services.marketdata.router import MarketDataRouter
    from services.storage import Database

INTERVALS = ["1m", "5m", "15m", "1h", "1d"]


class _Bar:
    """A one-line progress bar on stderr (a plain line per step when not a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, done: int, total: int, message: str) -> None:
        width = 30
        filled = width * done // max(total, 1)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} days  {message}"
        if self.tty:
            print("\r" + line.ljust(len(self.last)), end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr)
        self.last = line

    def finish(self) -> None:
        if self.tty and self.last:
            print(file=sys.stderr)


def _router(args: argparse.Namespace, db: Database, profile: str) -> MarketDataRouter:
    from app.settings import load_settings
    from services.marketdata.service import open_router
    from services.security import CredentialStore
    from services.storage.paths import default_cache_dir

    settings = load_settings(getattr(args, "config", None))
    credentials = CredentialStore(profile, db, actor="cli")
    cache = (args.cache_dir or default_cache_dir()) / "marketdata"
    return open_router(db, settings.marketdata, credentials.get, cache_dir=cache)


@guarded
def fetch(args: argparse.Namespace) -> int:
    from services.domain import Timeframe
    from services.marketdata.service import day_range

    vault, db = unlock(args)
    try:
        router = _router(args, db, vault.paths.profile)
        if not router.configured:
            raise ValueError("no market-data provider configured: set marketdata.providers "
                             "in the settings (docs/data.md)")
        start, end = day_range(args.start, args.end, router.clock.now())
        bar = _Bar()

        async def run() -> Any:
            try:
                return await router.fetch(args.symbol, Timeframe(args.interval), start, end,
                                          progress=bar, resume=not args.restart,
                                          repair=args.repair)
            finally:
                await router.close()

        report = asyncio.run(run())
        bar.finish()
    finally:
        db.close()
    print(report.summary())
    for (lo, hi), why in report.unserved:
        print(f"not fetched: {lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M}: {why}",
              file=sys.stderr)
    if report.unserved and not report.stored and not report.skipped:
        return 1
    return 0


@guarded
def quote(args: argparse.Namespace) -> int:
    """Delayed snapshot quotes from the configured providers (NSE's website, Yahoo)."""
    from services.marketdata.errors import NoProvider

    vault, db = unlock(args)
    try:
        router = _router(args, db, vault.paths.profile)

        async def run() -> list[tuple[str, Any]]:
            out: list[tuple[str, Any]] = []
            try:
                for key in args.symbols:
                    try:
                        out.append((key, await router.quote(key)))
                    except NoProvider as exc:
                        out.append((key, exc))
            finally:
                await router.close()
            return out

        answers = asyncio.run(run())
        now = router.clock.now()
    finally:
        db.close()
    failed = 0
    for key, answer in answers:
        if isinstance(answer, Exception):
            failed += 1
            print(f"{key}\t{answer}", file=sys.stderr)
        else:
            print(f"{key}\t{answer.label(now)}")
    return 1 if failed else 0


def _rows(args: argparse.Namespace) -> tuple[list[tuple[Any, ...]], str]:
    from services.domain import Timeframe
    from services.marketdata.service import day_range
    from services.marketdata.store import HistoryStore

    _, db = unlock(args)
    try:
        start, end = day_range(args.start or "2000-01-01", args.end, datetime.now().astimezone())
        rows = HistoryStore(db).rows(args.symbol, Timeframe(args.interval), start, end)
    finally:
        db.close()
    return rows, f"{args.symbol} {args.interval}"


@guarded
def candles(args: argparse.Namespace) -> int:
    from services.marketdata.export import write_candles

    rows, what = _rows(args)
    if not rows:
        raise ValueError(f"no stored {what} candles in that range (fetch them with "
                         "`dalal data fetch`)")
    if args.format == "parquet" and args.output is None:
        raise ValueError("--format parquet needs --output PATH")
    write_candles(rows, args.format, args.output or sys.stdout)
    if args.output is not None:
        print(f"wrote {len(rows)} {what} candles to {args.output}", file=sys.stderr)
    return 0


@guarded
def gaps(args: argparse.Namespace) -> int:
    from services.calendar import IST
    from services.domain import Timeframe
    from services.marketdata.service import day_range
    from services.marketdata.store import HistoryStore

    _, db = unlock(args)
    try:
        start, end = day_range(args.start, args.end, datetime.now().astimezone())
        store = HistoryStore(db)
        last = (end - timedelta(microseconds=1)).astimezone(IST).date()
        short = store.gaps(args.symbol, Timeframe(args.interval),
                           start.astimezone(IST).date(), last)
    finally:
        db.close()
    for day in short:
        print(f"{day.day.isoformat()}\t{day.bars}/{day.expected}\t{day.provider or '-'}")
    if not short:
        print("no gaps")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fetch``, ``candles`` and ``gaps`` to ``dalal data``."""
    p = sub.add_parser("fetch", help="fetch history from the configured providers")
    p.add_argument("symbol", help="instrument key, e.g. NSE:INFY")
    p.add_argument("--interval", default="5m", choices=INTERVALS)
    p.add_argument("--from", dest="start", required=True, help="first day (YYYY-MM-DD, IST)")
    p.add_argument("--to", dest="end", help="last day (YYYY-MM-DD, IST; default: now)")
    p.add_argument("--repair", action="store_true", help="fetch again the days that are short")
    p.add_argument("--restart", action="store_true",
                   help="fetch every day again instead of resuming")
    add_profile_args(p)
    p.set_defaults(func=fetch)

    p = sub.add_parser("quote", help="delayed snapshot quotes (NSE website, Yahoo); never "
                                     "used to price an order")
    p.add_argument("symbols", nargs="+", metavar="symbol", help="instrument key, e.g. NSE:INFY")
    add_profile_args(p)
    p.set_defaults(func=quote)

    p = sub.add_parser("candles", help="export stored candles as CSV or Parquet")
    p.add_argument("symbol")
    p.add_argument("--interval", default="5m", choices=INTERVALS)
    p.add_argument("--from", dest="start", help="first day (default: all)")
    p.add_argument("--to", dest="end", help="last day (default: now)")
    p.add_argument("--format", default="csv", choices=["csv", "parquet"])
    p.add_argument("--output", "-o", type=_path, help="file to write (default: stdout, CSV)")
    add_profile_args(p)
    p.set_defaults(func=candles)

    p = sub.add_parser("gaps", help="trading days with fewer stored bars than the session")
    p.add_argument("symbol")
    p.add_argument("--interval", default="1m", choices=INTERVALS)
    p.add_argument("--from", dest="start", required=True)
    p.add_argument("--to", dest="end")
    add_profile_args(p)
    p.set_defaults(func=gaps)
    register_holidays(sub)


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text)


def bars_for_training(
    args: argparse.Namespace, db: Database, symbol: str, timeframe: Any, recorded: list[Any],
    need: int,
) -> list[Any]:
    """The bars ``dalal model train`` needs: those recorded from live ticks, and, when there
    are too few, history fetched from the configured providers (with a progress bar)."""
    from services.clock import SystemClock
    from services.marketdata.service import HistoryService, day_range

    if len(recorded) >= need:
        return recorded
    profile = _profile(args)
    router = _router(args, db, profile)
    if not router.configured:
        return recorded
    service = HistoryService(router, live=lambda key, tf: recorded, clock=SystemClock())
    bar = _Bar()

    async def run() -> list[Any]:
        try:
            if args.start:
                start, end = day_range(args.start, args.end, router.clock.now())
                await router.fetch(symbol, timeframe, start, end, progress=bar)
                assert router.store is not None
                stored = router.store.bars(symbol, timeframe, start, end)
                merged = {b.start: b for b in stored}
                merged.update((b.start, b) for b in recorded if start <= b.start < end)
                return [merged[t] for t in sorted(merged)]
            return await service.bars(symbol, timeframe, need, progress=bar, closed_only=True)
        finally:
            await router.close()

    bars = asyncio.run(run())
    bar.finish()
    if service.last_error:
        print(f"warning: {service.last_error}", file=sys.stderr)
    return bars


def _profile(args: argparse.Namespace) -> str:
    from app.commands.vault import make_vault

    return make_vault(args).paths.profile


@guarded
def holidays(args: argparse.Namespace) -> int:
    """Fetch NSE's trading-holiday list into the cache (or show the calendar in use)."""
    from datetime import date

    from app.settings import load_settings
    from services import calendar
    from services.marketdata.providers.nse import NseWebsite
    from services.storage.paths import default_cache_dir

    path = (args.cache_dir or default_cache_dir()) / calendar.CACHE_NAME
    if args.fetch:
        settings = load_settings(getattr(args, "config", None))
        site = NseWebsite(settings.marketdata.nse.endpoints())

        async def run() -> Any:
            try:
                return await site.holidays()
            finally:
                await site.close()

        calendar.save_cache(path, asyncio.run(run()))
        print(f"cached NSE's holiday list in {path}")
    cal = calendar.load_cache(path)
    year = args.year or datetime.now().astimezone().year
    provisional = ", provisional" if cal.is_provisional(date(year, 6, 1)) else ""
    print(f"NSE {year} ({cal.source}{provisional})")
    for day, name in sorted(cal.holidays.items()):
        if day.year == year:
            print(f"{day.isoformat()}\t{day:%a}\t{name}")
    for day, session in sorted(cal.specials.items()):
        if day.year == year:
            print(f"{day.isoformat()}\t{day:%a}\tspecial session {session.open:%H:%M}-"
                  f"{session.close:%H:%M} ({session.name})")
    return 0


def register_holidays(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("holidays", help="NSE trading holidays and special sessions in use")
    p.add_argument("--fetch", action="store_true",
                   help="fetch NSE's current list from nseindia.com and cache it")
    p.add_argument("--year", type=int, help="year to show (default: this year)")
    add_profile_args(p)
    p.set_defaults(func=holidays)
