"""A chart in the real window fills with real history from a provider (the Yahoo fake, driven
through yfinance) and the status bar names the provider. ``DALAL_SCREENSHOT_DIR`` keeps the
picture (docs/screenshots/chart-history.png)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from app.settings import Settings
from app.wiring import build_services
from services.calendar import IST
from services.clock import ManualClock
from services.storage import Database
from tests.fakes.marketdata import FakeMarketData
from tests.marketdata.conftest import NOW
from widgets.main_window import MainWindow

KEY = bytes(range(32))


@pytest.fixture
def fake() -> Iterator[FakeMarketData]:
    from services.marketdata.providers.yahoo import forget_responses

    forget_responses()
    with FakeMarketData() as server:
        server.now = NOW
        yield server


def test_a_chart_shows_provider_history_and_the_status_bar_names_the_provider(
    qtbot, qloop, fake: FakeMarketData, tmp_path: Path
) -> None:
    settings = Settings.model_validate({
        "seed": 7, "always_open": False, "models_enabled": False,
        "watchlist": ["NSE:INFY", "NSE:TCS", "NSE:RELIANCE"],
        "marketdata": {"providers": ["yfinance"], "yahoo_url": f"http://127.0.0.1:{fake.port}"},
    })
    with Database.open(tmp_path / "terminal.db", KEY, create=True) as db:
        services = build_services(settings, ManualClock(NOW), database=db)
        win = MainWindow(services, settings.watchlist,
                         QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat))
        qtbot.addWidget(win)
        qloop.run(services.start())
        win.resize(1366, 768)
        win.show()
        qtbot.waitExposed(win)
        win.start()
        try:
            win.watchlist.select_key("NSE:INFY")
            chart = win.chart
            qloop.until(lambda: chart.key == "NSE:INFY" and len(chart._series) >= 250,
                        timeout=60, what="Yahoo's history in the chart")
            # Real session bars: the newest one closes Friday's session at 15:30.
            last = chart._series.bars[-1]
            ends = (last.start + timedelta(seconds=chart.timeframe.seconds)).astimezone(IST)
            assert (ends.date(), ends.hour, ends.minute) == (NOW.date(), 15, 30)
            assert last.closed
            qloop.until(lambda: "yfinance connected" in win.status.connection_text(
                "data:yfinance"), what="the provider in the status bar")
            shots = Path(os.environ.get("DALAL_SCREENSHOT_DIR") or tmp_path)
            assert win.grab().save(str(shots / "chart-history.png"))
        finally:
            qloop.run(win.stop())
            qloop.run(services.stop())
