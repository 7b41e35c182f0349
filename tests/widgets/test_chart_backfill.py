"""With a market-data provider configured, the chart fills its past from real history (the
Yahoo fake) in the background and redraws, and the status bar names the provider."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from app.settings import Settings
from app.wiring import AppServices, build_services
from services.clock import ManualClock
from services.storage import Database
from tests.fakes.marketdata import FakeMarketData
from tests.marketdata.conftest import NOW
from tests.widgets.conftest import TEST_WATCHLIST, LoopRunner
from widgets.main_window import MainWindow


@pytest.fixture
def fake() -> Iterator[FakeMarketData]:
    with FakeMarketData(now=NOW) as server:
        yield server


@pytest.fixture
def backed(qloop: LoopRunner, tmp_path: Path, fake: FakeMarketData) -> Iterator[AppServices]:
    db = Database.open(tmp_path / "terminal.db", os.urandom(32), create=True)
    settings = Settings.model_validate({
        "seed": 7, "always_open": True, "ticks_per_second": 200, "watchlist": TEST_WATCHLIST,
        "models_enabled": False,
        "marketdata": {"providers": ["yfinance"], "yahoo_url": f"http://127.0.0.1:{fake.port}"},
    })
    services = build_services(settings, ManualClock(NOW), database=db)
    yield services
    qloop.run(services.stop())
    db.close()


def test_the_chart_backfills_real_history_and_the_status_bar_shows_the_provider(
    qtbot, qloop: LoopRunner, backed: AppServices, tmp_path: Path, fake: FakeMarketData
) -> None:
    from services.marketdata.providers.yahoo import forget_responses

    forget_responses()
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    win = MainWindow(backed, backed.settings.watchlist, store)
    qtbot.addWidget(win)
    qloop.run(backed.start())
    win.show()
    qtbot.waitExposed(win)
    win.start()
    try:
        win.show_instrument("NSE:INFY")
        chart = win.chart
        # Real sessions before today's (synthetic-free) live bars: the first bar is days back.
        qloop.until(lambda: len(chart._series) >= 250, timeout=60, what="backfilled chart")
        assert fake.count("query2.finance.yahoo.com", "INFY.NS") >= 1
        assert chart._series.bars[0].start < NOW.replace(hour=15, minute=30)  # real session
        win._timeframe_changed("15m")  # 300 bars of 15m: twelve sessions back
        qloop.until(lambda: len(chart._series) >= 250 and chart._series.bars[0].start.date()
                    < NOW.date(), timeout=60, what="backfilled 15m chart")
        qloop.until(lambda: "yfinance" in win.status.connection_text("data:yfinance"),
                    what="the provider in the status bar")
        assert "connected" in win.status.connection_text("data:yfinance")
        if os.environ.get("DALAL_SCREENSHOT"):
            win.grab().save(os.environ["DALAL_SCREENSHOT"])
    finally:
        qloop.run(win.stop())
