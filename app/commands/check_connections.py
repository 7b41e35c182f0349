"""``dalal check-connections``: for each configured broker, does login, a quote and the
ticker work? Prints a table with the reason for each failure; exit status 1 if any failed.

The paper broker and its simulator are always checked; Zerodha Kite when the settings choose
it or an API key is configured. Kite is checked read-only: the profile (is the access token
valid?), one quote, and one tick from the ticker within the timeout. Nothing is ordered.
Angel One likewise when its credentials are stored or an API key is configured: the day's
session (profile), one last price and one tick from SmartWebSocketV2. Upstox when its
credentials are stored: the session, the day's master and one Feed V3 tick
(services/brokers/upstox/check.py).
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
    from services.brokers.kite.session import SecretStore


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

    paper = SettingsModel.model_validate({**settings.model_dump(), "broker": "paper"})
    services = build_services(paper)
    checks = [Check("paper", "login", True, "built-in, no login needed")]
    key = symbol if services.instrument(symbol) is not None else paper.watchlist[0]
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
        checks.append(Check("paper", "quote", False, f"no simulated price for {key}"))
        checks.append(Check("paper", "ticker", False, f"no tick within {per_check:g} s"))
    else:
        checks.append(Check("paper", "quote", True, f"{key} {tick.last_price}"))
        waited = time.monotonic() - started
        checks.append(Check("paper", "ticker", True, f"first tick after {waited:.2f} s"))
    return checks


async def check_kite(
    settings: Settings, secrets: SecretStore | None, symbol: str, per_check: float
) -> list[Check]:
    """Login validity, a quote and one tick, each with the reason when it fails."""
    from app.kite_runtime import endpoints_for
    from services.broker import BrokerError
    from services.brokers.kite.execution import KiteBroker
    from services.brokers.kite.feed import KiteStream
    from services.brokers.kite.session import KiteSecrets
    from services.bus import TICKS, EventBus
    from services.clock import SystemClock

    name = "kite"
    clock = SystemClock()
    try:
        keys = KiteSecrets(secrets) if secrets is not None else None
        api_key = keys.api_key(settings.kite.api_key) if keys else settings.kite.api_key
        if not api_key:
            raise BrokerError("no API key configured")
        token = keys.valid_token(clock.now()) if keys else None
    except BrokerError as exc:
        return [Check(name, "login", False, str(exc))]
    if token is None:
        reason = "not logged in today: run `dalal login kite`"
        return [Check(name, c, False, reason) for c in ("login", "quote", "ticker")]
    broker = KiteBroker(api_key, token, endpoints=endpoints_for(settings), timeout=per_check)
    checks: list[Check] = []
    try:
        profile = await broker.profile()
        who = f"{profile.get('user_id', '?')} ({profile.get('user_name', '')})"
        checks.append(Check(name, "login", True, f"session valid for {who}"))
    except BrokerError as exc:
        checks.append(Check(name, "login", False, str(exc)))
    try:
        tick = (await broker.quote([symbol]))[symbol]
        checks.append(Check(name, "quote", True, f"{symbol} {tick.last_price}"))
    except (BrokerError, KeyError) as exc:
        checks.append(Check(name, "quote", False, str(exc) or f"no quote for {symbol}"))
    # The ticker: one tick for ``symbol`` within the timeout.
    try:
        exchange = symbol.partition(":")[0]
        master = await broker.instruments(exchange)
        tokens = {int(i.token): i.key for i in master.instruments if i.key == symbol}
        if not tokens:
            raise BrokerError(f"{symbol} is not in Kite's instrument master")
    except BrokerError as exc:
        checks.append(Check(name, "ticker", False, str(exc)))
        return checks
    loop = asyncio.get_running_loop()
    bus = EventBus()
    bus.bind_loop(loop)
    ticks = bus.subscribe(TICKS, "check")
    rejected: list[str] = []
    stream = KiteStream(
        api_key,
        token,
        bus,
        tokens,
        root=endpoints_for(settings).ticker,
        on_session_rejected=lambda: rejected.append("403"),
    )
    stream.subscribe(tokens, "ltp")
    started = time.monotonic()
    stream.start()
    try:
        got = await asyncio.wait_for(ticks.next_batch(), per_check)
        checks.append(
            Check(
                name, "ticker", True, f"{got[0].key} tick after {time.monotonic() - started:.2f} s"
            )
        )
    except TimeoutError:
        if rejected:
            reason = "Kite refused the ticker connection (403): the session has expired"
        elif not stream.connected:
            reason = f"could not connect to the ticker within {per_check:g} s"
        else:
            reason = f"connected, but no tick within {per_check:g} s (market closed?)"
        checks.append(Check(name, "ticker", False, reason))
    finally:
        stream.stop()
    return checks


async def check_breeze(
    settings: Settings, secrets: SecretStore | None, symbol: str, per_check: float
) -> list[Check]:
    """The session (one funds call), a quote and one tick from the Socket.IO stream."""
    from services.brokers.breeze import config as breeze
    from services.brokers.breeze.execution import BreezeExecution
    from services.brokers.breeze.session import BreezeSecrets
    from services.brokers.errors import BrokerError
    from services.brokers.ports import FeedMode
    from services.brokers.registry import BrokerContext
    from services.bus import TICKS, EventBus
    from services.clock import SystemClock

    name = breeze.NAME
    clock = SystemClock()
    if secrets is None or BreezeSecrets(secrets).token() is None:
        reason = "not logged in today: run `dalal login breeze`"
        return [Check(name, c, False, reason) for c in ("login", "quote", "ticker")]
    bus = EventBus()
    bus.bind_loop(asyncio.get_running_loop())
    try:
        parts = breeze.build(
            BrokerContext(
                clock,
                bus,
                secrets=secrets,
                endpoints=settings.breeze.endpoints(),
                options={"timeout": per_check},
            )
        )
    except BrokerError as exc:
        return [Check(name, "login", False, str(exc))]
    execution = parts.execution
    assert isinstance(execution, BreezeExecution)
    checks: list[Check] = []
    try:
        await execution.funds()
        checks.append(Check(name, "login", True, "session valid"))
    except BrokerError as exc:
        checks.append(Check(name, "login", False, str(exc)))
    try:
        price = await execution.last_price(symbol)
        checks.append(Check(name, "quote", True, f"{symbol} {price}"))
    except BrokerError as exc:
        checks.append(Check(name, "quote", False, str(exc)))
    if parts.feed is None:
        return checks
    try:
        feed = parts.feed(await execution.masters.get())
        feed.subscribe([symbol], FeedMode.QUOTE)
    except BrokerError as exc:
        checks.append(Check(name, "ticker", False, str(exc)))
        return checks
    ticks = bus.subscribe(TICKS, "check")
    started = time.monotonic()
    feed.start()
    try:
        got = await asyncio.wait_for(ticks.next_batch(), per_check)
        waited = time.monotonic() - started
        checks.append(Check(name, "ticker", True, f"{got[0].key} tick after {waited:.2f} s"))
    except TimeoutError:
        status = feed.status()
        if status.connected:
            reason = f"connected, but no tick within {per_check:g} s (market closed?)"
        else:
            reason = status.detail or f"could not connect within {per_check:g} s"
        checks.append(Check(name, "ticker", False, reason))
    finally:
        feed.stop()
    return checks


def breeze_configured(secrets: SecretStore | None) -> bool:
    return secrets is not None and secrets.get("breeze") is not None


def kite_configured(settings: Settings, secrets: SecretStore | None) -> bool:
    from services.brokers.kite.session import CREDENTIALS

    has_keyring = secrets is not None and secrets.get(CREDENTIALS) is not None
    return settings.broker == "kite" or bool(settings.kite.api_key) or has_keyring


async def check_angelone(
    settings: Settings, secrets: SecretStore | None, symbol: str, per_check: float
) -> list[Check]:
    """Angel One read-only: the day's session (profile), one last price, one tick."""
    from app.angelone import build_parts
    from services.broker import BrokerError
    from services.brokers.angelone.execution import AngelExecution
    from services.brokers.ports import FeedMode
    from services.bus import TICKS, EventBus
    from services.clock import SystemClock

    name = "angelone"
    clock = SystemClock()
    bus = EventBus()
    bus.bind_loop(asyncio.get_running_loop())
    try:
        parts = build_parts(settings, secrets, clock, timeout=per_check, bus=bus)
        session = parts.session
        token = session.current(clock.now()) if session is not None else None
    except BrokerError as exc:
        return [Check(name, "login", False, str(exc))]
    if token is None:
        reason = "not logged in today: run `dalal login angelone`"
        return [Check(name, c, False, reason) for c in ("login", "quote", "ticker")]
    execution = parts.execution
    assert isinstance(execution, AngelExecution)
    checks: list[Check] = []
    try:
        profile = await execution.profile()
        who = f"{profile.get('clientcode', '?')} ({profile.get('name', '')})"
        checks.append(Check(name, "login", True, f"session valid for {who}"))
    except BrokerError as exc:
        checks.append(Check(name, "login", False, str(exc)))
    try:
        price = await asyncio.wait_for(execution.ltp(symbol), per_check * 4)
        checks.append(Check(name, "quote", True, f"{symbol} {price}"))
    except (BrokerError, TimeoutError) as exc:
        checks.append(Check(name, "quote", False, str(exc) or f"no price for {symbol}"))
    if parts.feed is None or parts.instruments is None:
        return checks
    try:
        master = await parts.instruments.fetch_master()
        feed = parts.feed(master)
        feed.subscribe([symbol], FeedMode.LTP)
    except BrokerError as exc:
        checks.append(Check(name, "ticker", False, str(exc)))
        return checks
    ticks = bus.subscribe(TICKS, "check")
    started = time.monotonic()
    feed.start()
    try:
        got = await asyncio.wait_for(ticks.next_batch(), per_check)
        elapsed = time.monotonic() - started
        checks.append(Check(name, "ticker", True, f"{got[0].key} tick after {elapsed:.2f} s"))
    except TimeoutError:
        status = feed.status()
        if not status.connected:
            reason = f"could not connect to the stream within {per_check:g} s"
            if status.detail:
                reason += f" ({status.detail})"
        else:
            reason = f"connected, but no tick within {per_check:g} s (market closed?)"
        checks.append(Check(name, "ticker", False, reason))
    finally:
        await asyncio.to_thread(feed.stop)
    return checks


def upstox_configured(secrets: SecretStore | None) -> bool:
    from services.brokers.upstox.session import CREDENTIALS

    return secrets is not None and secrets.get(CREDENTIALS) is not None


async def check_upstox(
    settings: Settings, secrets: SecretStore | None, symbol: str, per_check: float
) -> list[Check]:
    from services.brokers.upstox.check import check_upstox as run

    results = await run(secrets, symbol, per_check, endpoints=settings.upstox.endpoints())
    return [Check("upstox", r.check, r.ok, r.detail) for r in results]


async def run_checks(
    settings: Settings, secrets: SecretStore | None, *, symbol: str | None, per_check: float
) -> list[Check]:
    key = symbol or settings.watchlist[0]
    checks = await check_paper(settings, key, per_check)
    if kite_configured(settings, secrets):
        checks += await check_kite(settings, secrets, key, per_check)
    if breeze_configured(secrets):
        checks += await check_breeze(settings, secrets, key, per_check)
    from app.angelone import configured as angelone_configured

    if angelone_configured(settings, secrets):
        checks += await check_angelone(settings, secrets, key, per_check)
    if upstox_configured(secrets):
        checks += await check_upstox(settings, secrets, key, per_check)
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
        help="check login, a quote and the ticker of each configured broker",
    )
    p.add_argument("--symbol", default=None, help="instrument to quote (default: first watched)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per check (default 5)")
    p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_profile_args(p)
    p.set_defaults(func=check_connections)
