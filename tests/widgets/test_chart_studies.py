"""Chart studies against published values, and the indicators menu, panes and drawings."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from services.clock import IST
from services.domain import Bar, Timeframe
from widgets.chart import ChartWidget
from widgets.chart.indicators import ema
from widgets.chart.studies import bollinger, macd, rsi, supertrend, vwap

# StockCharts ChartSchool, "Relative Strength Index (RSI)", the worked 14-period example
# (Wilder's smoothing): closes and the RSI values it tabulates from the 15th close on.
RSI_CLOSES = [  # the spreadsheet's four-decimal closes (the text rounds them to two)
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826,
    45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439,
]
RSI_EXPECTED = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97]


def test_rsi_matches_the_stockcharts_example() -> None:
    out = rsi(np.array(RSI_CLOSES), 14)
    assert np.isnan(out[:14]).all()
    assert out[14:] == pytest.approx(RSI_EXPECTED, abs=0.05)


def test_bollinger_is_sma_plus_minus_k_population_sd() -> None:
    c = np.random.default_rng(1).normal(100, 2, 200)
    mid, up, lo = bollinger(c, 20, 2.0)
    i = 150
    window = c[i - 19 : i + 1]
    assert mid[i] == pytest.approx(window.mean())
    assert up[i] - mid[i] == pytest.approx(2 * window.std(ddof=0))
    assert mid[i] - lo[i] == pytest.approx(2 * window.std(ddof=0))


def test_macd_is_the_ema_difference_with_a_signal_line() -> None:
    c = np.linspace(100, 120, 120) + np.sin(np.arange(120))
    line, signal, hist = macd(c)
    assert line[-1] == pytest.approx(ema(c, 12)[-1] - ema(c, 26)[-1])
    assert hist[-1] == pytest.approx(line[-1] - signal[-1])
    assert np.isnan(signal[:33]).all() and not np.isnan(signal[33])


def test_vwap_restarts_each_ist_day() -> None:
    day1 = datetime(2026, 1, 5, 9, 15, tzinfo=IST).timestamp()
    starts = np.array([day1, day1 + 60, day1 + 86_400, day1 + 86_460])
    h = np.array([11.0, 13.0, 21.0, 23.0])
    lo = np.array([9.0, 11.0, 19.0, 21.0])
    c = np.array([10.0, 12.0, 20.0, 22.0])
    v = np.array([100.0, 300.0, 50.0, 150.0])
    out = vwap(h, lo, c, v, starts)
    assert out.tolist() == pytest.approx([10.0, 11.5, 20.0, 21.5])


def test_supertrend_follows_a_trend_and_flips_on_a_reversal() -> None:
    up = np.linspace(100, 150, 60)
    down = np.linspace(150, 90, 60)
    c = np.concatenate([up, down])
    line, direction = supertrend(c + 1, c - 1, c, 10, 3.0)
    assert direction[50] == 1 and line[50] < c[50]
    assert direction[-1] == -1 and line[-1] > c[-1]


def _bars(n: int) -> list[Bar]:
    start = datetime(2026, 1, 5, 9, 15, tzinfo=IST)
    out = []
    for i in range(n):
        p = Decimal(100) + Decimal(i % 40) / 4
        when = start + timedelta(days=i // 375, minutes=i % 375)
        out.append(Bar("NSE:X", Timeframe.M1, when, p, p + 1, p - 1, p, 100 + i, True))
    return out


@pytest.fixture
def chart(qtbot):
    widget = ChartWidget()
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    widget.set_bars("NSE:X", Timeframe.M1, _bars(2_000))
    return widget


def test_indicators_menu_adds_overlays_and_oscillator_panes(chart, qtbot) -> None:
    chart._fill_indicators_menu()
    texts = [a.text() for a in chart.indicators_button.menu().actions()]
    for name in ("SMA", "EMA", "VWAP", "Bollinger", "RSI", "MACD", "Supertrend"):
        assert f"Add {name}…" in texts
    chart.studies.ask_params = lambda kind: kind.defaults  # the dialog's OK, unchanged
    rows = chart._graphics.ci.layout.rowCount()
    add = {a.text(): a for a in chart.indicators_button.menu().actions()}
    add["Add RSI…"].trigger()
    add["Add Bollinger…"].trigger()
    rsi_study, boll = chart.studies.studies
    assert rsi_study.pane is not None and chart._graphics.ci.layout.rowCount() == rows + 1
    assert boll.pane is None and len(boll.items) == 3
    for item in (*rsi_study.items, *boll.items):
        assert item.opts["clipToView"] and item.opts["autoDownsample"]
    y = rsi_study.items[0].yData
    assert np.nanmin(y) >= 0 and np.nanmax(y) <= 100
    chart._fill_indicators_menu()
    remove = [a for a in chart.indicators_button.menu().actions() if a.text().startswith("Remove")]
    assert [a.text() for a in remove] == ["Remove RSI (14)", "Remove Bollinger (20, 2)"]
    remove[0].trigger()
    assert [s.kind.name for s in chart.studies.studies] == ["Bollinger"]
    with pytest.raises(ValueError, match="positive parameters"):
        chart.studies.add("MACD", (12, 26))


def test_right_click_menu_draws_lines_that_are_saved_per_symbol(chart, qtbot) -> None:
    saved: list[tuple[str, list]] = []
    chart.studies.drawingsChanged.connect(lambda key, d: saved.append((key, d)))
    menu = chart.studies.context_menu(1_900.0, 105.5)
    actions = {a.text(): a for a in menu.actions()}
    assert "Indicators" in actions and "Reset zoom" in actions
    actions["Horizontal line at 105.50"].trigger()
    assert saved[-1] == ("NSE:X", [{"type": "hline", "price": 105.5}])
    actions["Trend line (click two points)"].trigger()
    assert chart.studies.click(1_800.0, 101.0) and chart.studies.click(1_950.0, 108.0)
    key, drawings = saved[-1]
    trend = drawings[-1]
    assert key == "NSE:X" and trend["type"] == "trend" and trend["t2"] > trend["t1"]
    assert not chart.studies.click(1_960.0, 109.0)  # back to normal clicks
    # Another symbol, then back: the window hands the stored drawings back.
    chart.set_bars("NSE:Y", Timeframe.M1, [])
    chart.studies.set_drawings([])
    chart.set_bars("NSE:X", Timeframe.M1, _bars(2_000))
    chart.studies.set_drawings(drawings)
    assert chart.studies.drawings() == drawings


def test_window_keeps_drawings_per_symbol_through_the_facade(qtbot, services, tmp_path) -> None:
    from widgets.main_window import MainWindow

    win = MainWindow(services, services.settings.watchlist, None)
    qtbot.addWidget(win)
    win.show_instrument("NSE:INFY")
    win.chart.studies.add_hline(1234.5)
    win.show_instrument("NSE:TCS")
    assert win.chart.studies.drawings() == []
    win.show_instrument("NSE:INFY")
    assert win.chart.studies.drawings() == [{"type": "hline", "price": 1234.5}]
    # A fresh session (same profile) reads them back from its file.
    from app.wiring import build_services

    again = build_services(services.settings)
    assert again.drawings("NSE:INFY") == [{"type": "hline", "price": 1234.5}]


def test_two_by_two_charts_linked_and_independent(qtbot, running, qloop) -> None:
    from PySide6.QtCore import QPoint, Qt

    from widgets.main_window import MainWindow

    win = MainWindow(running, running.settings.watchlist, None)
    qtbot.addWidget(win)
    win.show()
    multi = win.charts
    assert multi.count == 1 and multi.visible_charts() == [win.chart]
    assert multi.charts == [win.chart]  # the other three are made on first use (start-up)
    win.show_instrument("NSE:RELIANCE")
    qtbot.mouseClick(multi.grid_button, Qt.MouseButton.LeftButton)
    assert multi.count == 4
    # Linked: the new charts open on the instrument already shown, each at its timeframe.
    assert [c.key for c in multi.charts] == ["NSE:RELIANCE"] * 4
    assert all(len(c.series) > 0 for c in multi.charts)
    win.show_instrument("NSE:INFY")
    assert [c.key for c in multi.charts] == ["NSE:INFY"] * 4
    assert [c.timeframe.value for c in multi.charts] == ["1m", "5m", "15m", "1d"]
    multi.link.setChecked(False)
    third = multi.charts[2]
    qtbot.mouseClick(third._graphics.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(50, 50))
    assert multi.active == 2
    win.show_instrument("NSE:TCS")
    assert [c.key for c in multi.charts] == ["NSE:INFY", "NSE:INFY", "NSE:TCS", "NSE:INFY"]
    # Each chart gets its own timeframe's live bars.
    win.pump.start()
    before = [c.series.column("close").size for c in multi.charts]
    qloop.until(lambda: all(c.paint_count > 0 for c in multi.charts), what="four painted")
    assert all(len(c.series) > 0 for c in multi.charts) and before
    qtbot.mouseClick(multi.single_button, Qt.MouseButton.LeftButton)
    assert multi.count == 1 and multi.active == 0
    qloop.run(win.stop())
