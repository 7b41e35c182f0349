"""What ``dalal check-connections`` asks of Upstox: is it usable now, and if not, why.

Read-only: the session (a stored token that Upstox still accepts), the static IPs the
account has registered for orders (``GET /v2/user/ip``), the day's instrument master, and
one tick from Market Data Feed V3 within the timeout. Nothing is ordered. Whether *this*
machine's public address is one of them is not checked: that would mean asking a service
on the internet, and Upstox only says so on an order (UDAPI1154).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from services.broker import BrokerError
from services.brokers.ports import FeedMode
from services.brokers.upstox.config import UpstoxEndpoints
from services.bus import TICKS, EventBus
from services.clock import Clock, SystemClock

NAME = "upstox"


@dataclass(frozen=True, slots=True)
class Result:
    check: str
    ok: bool
    detail: str


async def _static_ip(execution: object) -> Result:
    """What Upstox has registered: orders from any other address are refused (UDAPI1154)."""
    ok, detail = await execution.static_ip_status()  # type: ignore[attr-defined]
    return Result("static IP", ok, detail)


async def check_upstox(
    secrets: object,
    symbol: str,
    within: float,
    *,
    clock: Clock | None = None,
    endpoints: UpstoxEndpoints | None = None,
) -> list[Result]:
    """Login, instruments and one tick; every failure carries the reason a trader can act on."""
    clock = clock or SystemClock()
    try:
        import upstox_client  # type: ignore[import-untyped]  # noqa: F401  (only: is it here?)
    except ImportError:
        reason = "the Upstox SDK (upstox-python-sdk) is not installed in this build"
        return [Result(c, False, reason) for c in ("login", "instruments", "ticker")]
    from services.brokers import registry

    bus = EventBus()
    bus.bind_loop(asyncio.get_running_loop())
    try:
        parts = registry.build(
            NAME,
            registry.BrokerContext(
                clock,
                bus,
                secrets=secrets,  # type: ignore[arg-type]
                endpoints=endpoints,
                options={"timeout": within},
            ),
        )
    except BrokerError as exc:
        return [Result("login", False, str(exc))]
    session, execution = parts.session, parts.execution
    if session is None or execution is None:
        return [Result("login", False, "no credential store: run `dalal credentials set upstox`")]
    if session.current(clock.now()) is None:
        reason = "not logged in today (tokens end at 03:30 IST): run `dalal login upstox`"
        return [Result(c, False, reason) for c in ("login", "instruments", "ticker")]
    results: list[Result] = []
    try:
        profile = await execution.profile()  # type: ignore[attr-defined]
        who = f"{profile.get('user_id', '?')} ({profile.get('user_name', '')})"
        results.append(
            Result("login", True, f"session valid for {who}; orders only from its static IP")
        )
    except BrokerError as exc:
        results.append(Result("login", False, str(exc)))
        return results
    results.append(await _static_ip(execution))
    if parts.instruments is None or parts.feed is None:
        return results
    try:
        master = await parts.instruments.fetch_master()
        results.append(Result("instruments", True, f"{len(master):,} instruments today"))
        master.broker_id(symbol)
    except BrokerError as exc:
        results.append(Result("instruments", False, str(exc)))
        results.append(Result("ticker", False, "no instrument master"))
        return results
    feed = parts.feed(master)
    ticks = bus.subscribe(TICKS, "check")
    feed.subscribe([symbol], FeedMode.LTP)
    started = time.monotonic()
    feed.start()
    try:
        got = await asyncio.wait_for(ticks.next_batch(), within)
        waited = time.monotonic() - started
        results.append(Result("ticker", True, f"{got[0].key} tick after {waited:.2f} s"))
    except TimeoutError:
        status = feed.status()
        if not status.connected:
            reason = f"could not connect within {within:g} s: {status.detail or 'no answer'}"
        else:
            reason = f"connected, but no tick within {within:g} s (market closed?)"
        results.append(Result("ticker", False, reason))
    finally:
        feed.stop()
    return results
