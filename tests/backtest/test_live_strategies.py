"""Configured strategies trade live on the paper broker through the app's order path."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import pytest

from app.settings import Settings, SettingsError, load_settings
from app.wiring import build_services
from services.clock import IST, ManualClock
from services.domain import Timeframe


def test_a_bad_strategy_in_settings_is_refused_with_the_reason(tmp_path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"strategies": [{"name": "sma_cross", "symbols": ["NSE:INFY"], '
                    '"params": {"fast": 40, "slow": 20}}]}')
    with pytest.raises(SettingsError, match="0 < fast < slow"):
        load_settings(path)


async def test_configured_strategy_trades_on_the_paper_broker() -> None:
    settings = Settings(
        # A fast feed: the simulated universe has thousands of instruments, INFY among them.
        ticks_per_second=8000, always_open=True, watchlist=["NSE:INFY"],
        strategies=[{"name": "sma_cross", "symbols": ["NSE:INFY"], "timeframe": "1m",
                     "params": {"fast": 2, "slow": 3}, "quantity": 3}],
    )
    clock = ManualClock(datetime(2026, 3, 10, 10, 0, tzinfo=IST))
    services = build_services(settings, clock)
    (runner,) = services.strategy_runners
    assert runner.strategy.timeframe is Timeframe.M1
    await services.start()
    try:
        for _ in range(3600):  # up to an hour of simulated time, a second at a time
            clock.advance(1)
            await asyncio.sleep(0.005)
            if runner.placed:
                break
    finally:
        with contextlib.suppress(Exception):
            await services.stop()
    assert runner.placed, f"no order in an hour (refused: {runner.refusals[:2]})"
    order = runner.placed[0]
    assert order.request.source == "strategy:sma_cross"
    assert order.request.tag.startswith("S1")
    assert order.key == "NSE:INFY" and order.quantity == 3
