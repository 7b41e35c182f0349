"""``dalal check-connections``: every registered broker, and for each configured one: does
the login, the instrument master and the feed work? Prints a table with the reason for each
failure; exit status 1 if any failed.

The paper broker and its simulator are always checked; a live broker when the settings
choose it or its credentials are configured (the others are listed as not configured). Live
brokers are checked read-only through their ports: an authenticated read (funds), the day's
master, and one tick from the feed within the timeout. Nothing is ordered.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.commands.vault import add_profile_args, guarded, make_vault, unlock

if TYPE_CHECKING:
    from app.settings import Settings
    from services.brokers.ports import SecretStore


@dataclass(frozen=True, slots=True)
class Check:
    broker: str
    check: str
    ok: bool
    detail: str


def render(checks: list[Check]) -> str:
    rows = [("BROKER", "CHECK", "RESULT", "DETAIL")] + [
        (c.broker, c.check, "OK" if c.ok else "FAIL", c.detail) for c in checks
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
        for r in rows
    )


async def check_paper(settings: Settings, symbol: str, per_check: float) -> list[Check]:
    from app.settings import Settings as SettingsModel
    from app.wiring import build_services

    paper = SettingsModel.model_validate(
        {**settings.model_dump(), "broker": "paper", "feed": "simulator"}
    )
    services = build_services(paper)
    checks = [Check("paper", "login", True, "built-in, no login needed")]
    key = symbol if services.instrument(symbol) is not None else paper.watchlist[0]
    universe = len(list(services.instruments))
    checks.append(Check("paper", "instruments", True, f"{universe:,} simulated; {key}"))
    from services.bus import TICKS

    ticks = services.bus.subscribe(TICKS, "check", lossless=True)
    started = time.monotonic()
    await services.start()
    try:
        tick = None
        async with asyncio.timeout(per_check):
            while tick is None:
                tick = next((t for t in await ticks.next_batch() if t.key == key), None)
    except TimeoutError:
        pass
    finally:
        await services.stop()
    if tick is None:
        checks.append(Check("paper", "ticker", False, f"no tick within {per_check:g} s"))
    else:
        waited = time.monotonic() - started
        checks.append(
            Check("paper", "ticker", True, f"{key} {tick.last_price} after {waited:.2f} s")
        )
    return checks


async def check_live(
    settings: Settings, name: str, secrets: SecretStore | None, symbol: str, per_check: float
) -> list[Check]:
    """A live broker, read-only, through its ports: the session (an authenticated read),
    the instrument master (``symbol`` listed) and one tick of ``symbol`` from its feed."""
    from services.broker import BrokerError
    from services.brokers import registry
    from services.brokers.ports import FeedMode
    from services.bus import TICKS, EventBus
    from services.clock import SystemClock

    clock = SystemClock()
    bus = EventBus()
    rejected: list[str] = []
    checks: list[Check] = []
    try:
        parts = registry.build(
            name,
            registry.BrokerContext(
                clock,
                bus,
                secrets=secrets,
                settings=settings.broker_section(name),
                on_session_expired=lambda: rejected.append("expired"),
            ),
        )
    except BrokerError as exc:
        return [Check(name, "login", False, str(exc))]
    if not parts.logged_in:
        reason = f"not logged in today: run `dalal login {name}`"
        return [Check(name, c, False, reason) for c in ("login", "instruments", "ticker")]
    expired = f"the session has expired: log in again (`dalal login {name}`)"
    try:
        if parts.execution is not None:
            funds = await asyncio.wait_for(parts.execution.funds(), per_check)
            detail = f"session valid; available cash {funds.available_cash}"
        else:
            detail = "session stored"
        checks.append(Check(name, "login", True, detail))
    except (BrokerError, TimeoutError) as exc:
        checks.append(Check(name, "login", False, expired if rejected else str(exc) or "timeout"))
    # A broker that reports the static IPs registered for API orders (Upstox) says so.
    static_ip = getattr(parts.execution, "static_ip_status", None)
    if static_ip is not None and not rejected:
        try:
            ok, detail = await asyncio.wait_for(static_ip(), per_check)
        except TimeoutError:
            ok, detail = False, "the registered static IPs could not be read in time"
        checks.append(Check(name, "static IP", ok, detail))
    master = None
    try:
        if parts.instruments is None:
            raise BrokerError("no instrument master")
        master = await asyncio.wait_for(parts.instruments.fetch_master(), per_check * 4)
        inst = master.instrument(symbol)
        checks.append(
            Check(
                name,
                "instruments",
                True,
                f"{len(master):,} listed; {symbol} lot {inst.lot_size} tick {inst.tick_size}",
            )
        )
    except (BrokerError, TimeoutError) as exc:
        detail = expired if rejected else str(exc) or "timeout"
        checks.append(Check(name, "instruments", False, detail))
    if master is None or parts.feed is None or symbol not in master:
        reason = "no feed" if parts.feed is None else f"{symbol} is not in the master"
        checks.append(Check(name, "ticker", False, expired if rejected else reason))
        return checks
    bus.bind_loop(asyncio.get_running_loop())
    ticks = bus.subscribe(TICKS, "check")
    feed = parts.feed(master)
    feed.subscribe([symbol], FeedMode.LTP)
    started = time.monotonic()
    feed.start()
    try:
        got = await asyncio.wait_for(ticks.next_batch(), per_check)
        waited = time.monotonic() - started
        checks.append(Check(name, "ticker", True, f"{got[0].key} tick after {waited:.2f} s"))
    except TimeoutError:
        if rejected:
            reason = f"the broker refused the stream: {expired}"
        elif not feed.status().connected:
            reason = f"could not connect to the feed within {per_check:g} s"
        else:
            reason = f"connected, but no tick within {per_check:g} s (market closed?)"
        checks.append(Check(name, "ticker", False, reason))
    finally:
        feed.stop()
    return checks


def configured(settings: Settings, name: str, secrets: SecretStore | None) -> bool:
    """Chosen in the settings, or with credentials in the settings or the keyring."""
    has_keyring = secrets is not None and secrets.get(name) is not None
    section = settings.broker_section(name)
    chosen = name in (settings.broker, settings.data_feed)
    return chosen or bool(section.get("api_key")) or has_keyring


async def run_checks(
    settings: Settings, secrets: SecretStore | None, *, symbol: str | None, per_check: float
) -> list[Check]:
    """Every registered broker: paper is always checked, a live broker when configured."""
    from services.brokers import registry

    key = symbol or settings.watchlist[0]
    checks = await check_paper(settings, key, per_check)
    for entry in registry.entries():
        if not entry.live:
            continue
        if configured(settings, entry.name, secrets):
            checks += await check_live(settings, entry.name, secrets, key, per_check)
        else:
            checks.append(
                Check(
                    entry.name,
                    "-",
                    True,
                    f"{entry.title}: not configured (`dalal credentials set {entry.name}`)",
                )
            )
    return checks


@guarded
def check_connections(args: argparse.Namespace) -> int:
    from app.cli import load_cli_settings
    from services.security import CredentialStore

    settings = load_cli_settings(args)
    vault = make_vault(args)
    db = None
    secrets = None
    if vault.exists:
        vault, db = unlock(args)
        secrets = CredentialStore(vault.paths.profile, db, actor="cli")
    try:
        checks = asyncio.run(
            run_checks(settings, secrets, symbol=args.symbol, per_check=args.timeout)
        )
    finally:
        if db is not None:
            db.close()
    print(render(checks))
    return 0 if all(c.ok for c in checks) else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pathlib import Path

    p = subparsers.add_parser(
        "check-connections",
        help="check the login, the instrument master and the ticker of each configured broker",
    )
    p.add_argument(
        "--symbol", default=None, help="instrument to take a tick of (default: first watched)"
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per check (default 5)")
    p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_profile_args(p)
    p.set_defaults(func=check_connections)
