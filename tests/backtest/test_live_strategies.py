"""Configured strategies trade live on the paper broker through the app's order path."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from app.settings import Settings, SettingsError, load_settings
from app.wiring import build_services
from services.bus import TICKS
from services.clock import IST, ManualClock
from services.domain import Tick, Timeframe


def test_a_bad_strategy_in_settings_is_refused_with_the_reason(tmp_path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"strategies": [{"name": "sma_cross", "symbols": ["NSE:INFY"], '
                    '"params": {"fast": 40, "slow": 20}}]}')
    with pytest.raises(SettingsError, match="0 < fast < slow"):
        load_settings(path)


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_configured_strategy_trades_on_the_paper_broker() -> None:
    """INFY's minutes fall then rise: the SMA(2)/SMA(3) crossover buys through the app's
    order path. Ticks go on the bus as a feed's would (the simulator barely runs), so the
    test takes the same time on a busy machine as on a quiet one."""
    settings = Settings(
        ticks_per_second=1, always_open=True, watchlist=["NSE:INFY"],
        strategies=[{"name": "sma_cross", "symbols": ["NSE:INFY"], "timeframe": "1m",
                     "params": {"fast": 2, "slow": 3}, "quantity": 3}],
    )
    start = datetime(2026, 3, 10, 10, 0, tzinfo=IST)
    clock = ManualClock(start)
    services = build_services(settings, clock)
    (runner,) = services.strategy_runners
    assert runner.strategy.timeframe is Timeframe.M1
    base = services.references["NSE:INFY"].price
    await services.start()
    try:
        # The services' tasks subscribe when they first run.
        await until(lambda: "bar-builder" in services.bus.subscribers(TICKS))
        # One tick every 20 s; closes per minute step 0, -1, -2, -3, 0, +4 (in rupees).
        steps = [0, -1, -2, -3, 0, 4, 5, 6]
        for n in range(len(steps) * 3):
            at = start + timedelta(seconds=20 * n)
            clock.set(at)
            price = base + Decimal(steps[n // 3])
            services.bus.publish(TICKS, Tick("NSE:INFY", at, price, 1, 100 + n, base,
                                             max(base, price), min(base, price), base))
            await until(lambda p=price: [b.close for b in services.bars.bars(
                "NSE:INFY", Timeframe.M1)[-1:]] == [p])
            if runner.placed:
                break
        await until(lambda: bool(runner.placed or runner.refusals))
    finally:
        with contextlib.suppress(Exception):
            await services.stop()
    assert runner.placed, f"no order (refused: {runner.refusals[:2]})"
    order = runner.placed[0]
    assert order.request.source == "strategy:sma_cross"
    assert order.request.tag.startswith("S1")
    assert order.key == "NSE:INFY" and order.quantity == 3
