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
