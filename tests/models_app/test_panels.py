"""The Models and Signals panels on the real runtime (offscreen), and chart markers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from PySide6.QtCore import QSettings

from app.wiring import build_services
from models.registry import Stage
from models.signals import SIGNALS, Signal
from services.domain import Timeframe
from services.storage import Database
from tests.models_app.conftest import SYMBOL, quiet_settings, runtime_for
from tests.widgets.conftest import LoopRunner, make_settings, qloop  # noqa: F401
from widgets.main_window import MainWindow
from widgets.models_panel import ModelsPanel
from widgets.signals_panel import SignalsPanel


def _signal(key: str, minute: int, direction: int, *, shadow: bool = False) -> Signal:
    start = datetime(2025, 3, 3, 4, 0, tzinfo=UTC) + timedelta(minutes=minute)
    p = 0.7 if direction > 0 else 0.3
    return Signal(key, Timeframe.M1, start, Decimal("1500.50"), direction, p, 0.4, 1.0,
                  (("mom", 2 if shadow else 1),), start, (("ab-1", "challenger" if shadow
                                                           else "champion"),), shadow)


def test_signals_panel_lists_newest_first_with_arm_and_shadow(qtbot) -> None:
    panel = SignalsPanel()
    qtbot.addWidget(panel)
    panel.apply_signals([_signal(SYMBOL, 0, 1), _signal(SYMBOL, 1, -1),
                         _signal(SYMBOL, 1, 1, shadow=True)])
    assert panel.rowCount() == 3
    assert panel.text(0, "Arm") == "challenger (shadow) · ab-1"
    assert panel.text(1, "Direction").startswith("▼ DOWN")
    assert panel.text(2, "Direction").startswith("▲ UP")
    assert panel.text(2, "Models") == "mom v1" and panel.text(2, "P(up)") == "0.700"


def test_models_panel_trains_promotes_rolls_back_and_shows_ab_evidence(
    qtbot, qloop: LoopRunner, database: Database  # noqa: F811
) -> None:
    services = build_services(quiet_settings(), database=database)
    rt = runtime_for(services, database)
    panel = ModelsPanel(rt, default_symbol=SYMBOL)
    qtbot.addWidget(panel)
    panel.show()
    asked: list[str] = []
    answer = [True]

    def confirm(title: str, text: str) -> bool:
        asked.append(text)
        return answer[0]

    panel.confirm = confirm
    seen_progress: list[int] = []
    panel.progress.valueChanged.connect(seen_progress.append)
    try:
        panel.model_type.setCurrentText("logistic_regression")
        for version in (1, 2):
            panel.train_button.click()
            qloop.until(lambda v=version: len(panel.records) == v and not panel.busy,
                        timeout=60, what=f"v{version} trained and listed")
        assert panel.progress.format() == "done" and max(seen_progress) >= 2
        assert [r.version for r in panel.records] == [2, 1]
        assert panel.text(1, "Stage") == "dev" and panel.text(1, "Always up") != "–"

        for version, stage in ((1, "staging"), (1, "production"), (2, "staging"),
                               (2, "production")):
            panel.select("momentum", version)
            assert panel.promote_button.text() == f"Promote to {stage}…"
            panel.promote_button.click()
            qloop.until(lambda v=version, s=stage: any(
                r.version == v and r.stage.value == s for r in panel.records) and not panel.busy,
                what=f"v{version} {stage}")
        assert "will trade" in asked[-1]
        assert {r.version: r.stage for r in panel.records} == {2: Stage.PRODUCTION,
                                                               1: Stage.ARCHIVED}

        panel.select("momentum", 2)
        answer[0] = False
        panel.rollback_button.click()  # declined: nothing happens
        qloop.for_seconds(0.2)
        assert {r.version: r.stage for r in panel.records}[2] is Stage.PRODUCTION
        answer[0] = True
        panel.rollback_button.click()
        qloop.until(lambda: {r.version: r.stage for r in panel.records}[1] is Stage.PRODUCTION,
                    what="rolled back to v1")
        history = [panel.history_table.item(0, c).text() for c in range(6)]
        assert history[2] == "1" and "rolled back" not in history[5]  # restored v1 first
        assert any("rolled back" in panel.history_table.item(r, 5).text()
                   for r in range(panel.history_table.rowCount()))

        test = qloop.run(rt.ab_start("momentum", 1, 2, shadow=True))
        panel.refresh()
        qloop.until(lambda: panel.ab_table.rowCount() == 1, what="A/B row")
        row = [panel.ab_table.item(0, c).text() for c in range(8)]
        assert row[0] == f"{test.test_id} (shadow)"
        assert row[2] == "v1: 0/0" and row[3] == "v2: 0/0"
        assert row[4] == "0.00 / 20" or row[4].endswith("/ 20")
        assert row[6].startswith("collecting") and row[7] == "running"
    finally:
        panel.stop()
        qloop.run(rt.stop())


def test_models_panel_without_a_database_says_so(qtbot) -> None:
    panel = ModelsPanel(None)
    qtbot.addWidget(panel)
    assert not panel.train_button.isEnabled()
    assert "encrypted profile" in panel.message.text()


@pytest.fixture
def window(qtbot, qloop, tmp_path):  # noqa: F811
    services = build_services(make_settings())
    store = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    win = MainWindow(services, services.settings.watchlist, store)
    qtbot.addWidget(win)
    qloop.run(services.start())
    win.show()
    qtbot.waitExposed(win)
    win.start()
    yield win
    qloop.run(win.stop())
    qloop.run(services.stop())


def test_a_signal_on_the_bus_shows_as_a_chart_marker_for_the_selected_symbol(
    window, qloop: LoopRunner  # noqa: F811
) -> None:
    qloop.until(lambda: window.chart.key is not None, what="a chart symbol")
    key = window.chart.key
    bars = window.facade.history(key, window.chart.timeframe)
    last = bars[-1]
    other = "NSE:TCS" if key != "NSE:TCS" else "NSE:INFY"
    before = len(window.chart.marker_points())
    bus = window.facade.bus
    signal = Signal(key, window.chart.timeframe, last.start, last.close, -1, 0.2, 0.6, 1.0,
                    (("mom", 1),), last.start)
    bus.publish(SIGNALS, signal)
    bus.publish(SIGNALS, Signal(other, Timeframe.M1, last.start, last.close, 1, 0.8, 0.6, 1.0,
                                (("mom", 1),), last.start))
    qloop.until(lambda: window.signals_panel.rowCount() == 2, what="both signals listed")
    points = window.chart.marker_points()
    assert len(points) == before + 1  # only the chart's own symbol is marked
    assert points[-1][2] == "sell" and points[-1][1] == pytest.approx(float(last.close))
    assert "Signals" in window.docks and "Models" in window.docks
