"""The two profiled chart costs stay fixed: overlays clip to the view and downsample after
being added to the plot, and the time axis buckets days over the visible window only."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from services.clock import IST
from services.domain import Bar, Timeframe
from widgets.chart import ChartWidget


def _bars(n: int) -> list[Bar]:
    start = datetime(2026, 1, 5, 9, 15, tzinfo=IST)
    out = []
    for i in range(n):  # 375 one-minute bars a session, one session a day
        p = Decimal(100 + (i % 50))
        when = start + timedelta(days=i // 375, minutes=i % 375)
        out.append(Bar("NSE:X", Timeframe.M1, when, p, p + 1, p - 1, p, 10, True))
    return out


def test_overlays_keep_clip_to_view_and_downsampling_after_add(qtbot):
    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.set_overlays(sma=(20,), ema=(50,))
    for overlay in chart._overlays:
        assert overlay.item.opts["clipToView"] is True
        assert overlay.item.opts["autoDownsample"] is True


def test_axis_ticks_over_a_window_of_a_long_series(qtbot):
    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.resize(1200, 600)
    chart.set_bars("NSE:X", Timeframe.M1, _bars(20_000))
    axis = chart._time_axis
    ticks = axis.tickValues(15_000.0, 15_400.0, 1000.0)
    values = np.array(ticks[0][1])
    assert len(values) >= 3 and ((values >= 15_000) & (values <= 15_401)).all()
    # Day starts win over round hours: every 375-bar session start inside the window is a tick.
    day_starts = [i for i in range(15_000, 15_401) if i % 375 == 0]
    assert set(day_starts) <= set(values.astype(int).tolist())


def test_the_price_pane_fits_its_lines_without_asking_each_curve(qtbot):
    """A falling market leaves the EMA and the upper Bollinger band above every candle in
    view: the y range still takes them in, from the candles' bounds, while the curves stay
    out of pyqtgraph's per-frame bounds walk."""
    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.resize(1000, 600)
    chart.show()
    start = datetime(2026, 1, 5, 9, 15, tzinfo=IST)
    bars = []
    for i in range(400):
        p = Decimal(1000 - 2 * max(0, i - 300))  # flat, then down 2 a bar for 100 bars
        bars.append(Bar("NSE:X", Timeframe.M1, start + timedelta(minutes=i), p, p + 1, p - 1,
                        p, 10, True))  # fmt: skip
    chart.set_bars("NSE:X", Timeframe.M1, bars)
    band = chart.studies.add("Bollinger", (20, 2.0))
    chart.show_last_bars(60)
    qtbot.waitUntil(lambda: chart.paint_count > 0)
    vb = chart.price_plot.getViewBox()
    vb.updateAutoRange()
    low, high = vb.viewRange()[1]
    rows = chart.series.visible_slice(*vb.viewRange()[0])
    ema50 = chart.overlay_values()["EMA 50"][rows]
    upper = band.shown[0][rows]
    candles_high = float(chart.series.column("high")[rows].max())
    assert np.nanmax(ema50) > candles_high + 10  # the case this test is about
    assert high >= np.nanmax(ema50) and high >= np.nanmax(upper)
    assert low <= float(chart.series.column("low")[rows].min())
    lines = [o.item for o in chart._overlays] + band.items
    assert not any(item in vb.addedItems for item in lines)


def test_axes_that_show_no_values_compute_no_ticks(qtbot):
    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.set_bars("NSE:X", Timeframe.M1, _bars(2_000))
    for axis in (chart.price_plot.getAxis("bottom"), chart.volume_plot.getAxis("right")):
        assert axis._tickLevels == []
    for plot in (chart.price_plot, chart.volume_plot):
        assert not plot.getAxis("right").autoSIPrefix
