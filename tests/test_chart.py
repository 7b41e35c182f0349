"""The chart widget: rendering, live updates, visible-window painting, overlays, read-out."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from PySide6 import QtCore, QtGui

from services.clock import IST
from services.domain import Bar, Timeframe
from widgets.chart import ChartWidget
from widgets.chart.indicators import ema, ema_at, sma, sma_at

KEY = "NSE:INFY"
T0 = datetime(2025, 3, 10, 9, 15, tzinfo=IST)


def make_bars(n: int, *, seed: int = 1, timeframe: Timeframe = Timeframe.M1) -> list[Bar]:
    rnd = random.Random(seed)
    price = 150_000  # paise
    out = []
    for i in range(n):
        o = price
        c = o + rnd.randint(-300, 300)
        h = max(o, c) + rnd.randint(0, 150)
        lo = min(o, c) - rnd.randint(0, 150)
        price = c
        out.append(
            Bar(
                KEY,
                timeframe,
                T0 + timedelta(seconds=i * timeframe.seconds),
                Decimal(o) / 100,
                Decimal(h) / 100,
                Decimal(lo) / 100,
                Decimal(c) / 100,
                rnd.randint(1_000, 50_000),
                closed=True,
            )
        )
    return out


@pytest.fixture
def chart(qtbot):
    widget = ChartWidget()
    qtbot.addWidget(widget)
    widget.resize(1000, 600)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def pixels(image: QtGui.QImage) -> np.ndarray:
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB32)
    arr = np.frombuffer(image.constBits(), dtype=np.uint32, count=image.width() * image.height())
    return arr & 0xFFFFFF


def colour_count(arr: np.ndarray, name: str) -> int:
    return int((arr == QtGui.QColor(name).rgb() & 0xFFFFFF).sum())


def test_set_bars_renders_candles(chart, qtbot):
    blank = pixels(chart.grab().toImage())
    assert colour_count(blank, "#26a69a") == colour_count(blank, "#ef5350") == 0
    chart.set_bars(KEY, Timeframe.M1, make_bars(300))
    image = pixels(chart.grab().toImage())
    assert colour_count(image, "#26a69a") > 2_000  # up candles
    assert colour_count(image, "#ef5350") > 2_000  # down candles
    assert len(np.unique(image)) > 50
    assert colour_count(image, "#131722") > image.size // 2  # dark background dominates
    assert chart.paint_count > 0
    # the view shows the tail of the history, not all of it
    left, right = chart.price_plot.getViewBox().viewRange()[0]
    assert 100 <= right - left <= 140
    assert left < 299 < right


def test_update_bar_same_start_replaces_last_candle(chart):
    bars = make_bars(200)
    chart.set_bars(KEY, Timeframe.M1, bars)
    last = bars[-1]
    new_close = last.close + Decimal("7.35")
    updated = Bar(KEY, Timeframe.M1, last.start, last.open, max(last.high, new_close),
                  last.low, new_close, last.volume + 500)
    assert chart.update_bar(updated)
    assert len(chart.series) == 200
    assert chart.series.column("close")[-1] == pytest.approx(float(new_close))
    assert chart.series.column("volume")[-1] == last.volume + 500
    assert chart.series.bars[-1] is updated
    assert chart.readout_text().split(" C ")[1].startswith(f"{new_close:.2f}")


def test_update_bar_new_start_appends_and_follows_right_edge(chart):
    bars = make_bars(200)
    chart.set_bars(KEY, Timeframe.M1, bars)
    left, right = chart.price_plot.getViewBox().viewRange()[0]
    nxt = Bar(KEY, Timeframe.M1, bars[-1].start + timedelta(minutes=1), Decimal("1500"),
              Decimal("1501"), Decimal("1499"), Decimal("1500.5"), 10)
    assert chart.update_bar(nxt)
    assert len(chart.series) == 201
    assert chart.series.column("close")[-1] == 1500.5
    left2, right2 = chart.price_plot.getViewBox().viewRange()[0]
    assert (left2, right2) == pytest.approx((left + 1, right + 1))


def test_update_bar_does_not_follow_when_user_scrolled_back(chart):
    bars = make_bars(300)
    chart.set_bars(KEY, Timeframe.M1, bars)
    chart.price_plot.setXRange(50, 150, padding=0)
    nxt = Bar(KEY, Timeframe.M1, bars[-1].start + timedelta(minutes=1), Decimal("1500"),
              Decimal("1501"), Decimal("1499"), Decimal("1500.5"), 10)
    chart.update_bar(nxt)
    assert chart.price_plot.getViewBox().viewRange()[0] == pytest.approx([50, 150])


def test_update_bar_ignores_stale_and_foreign_bars(chart):
    bars = make_bars(50)
    chart.set_bars(KEY, Timeframe.M1, bars)
    old = bars[10]
    assert not chart.update_bar(Bar(KEY, Timeframe.M1, old.start - timedelta(hours=1), old.open,
                                    old.high, old.low, old.close, 1))
    other = Bar("NSE:TCS", Timeframe.M1, bars[-1].start, old.open, old.high, old.low, old.close, 1)
    assert not chart.update_bar(other)
    wrong_tf = Bar(KEY, Timeframe.M5, bars[-1].start, old.open, old.high, old.low, old.close, 1)
    assert not chart.update_bar(wrong_tf)
    assert len(chart.series) == 50
    assert chart.series.bars[-1] is bars[-1]


def test_only_visible_bars_are_painted(chart, qtbot):
    chart.set_bars(KEY, Timeframe.M1, make_bars(5_000))
    chart.price_plot.setXRange(2_000, 2_100, padding=0)
    before = chart.paint_count
    chart.repaint()
    qtbot.waitUntil(lambda: chart.paint_count > before)
    painted = chart.candles.painted_bars
    assert 95 <= painted <= 110, painted


def test_live_updates_do_not_repaint_history(chart, qtbot):
    """A frame after update_bar paints about a screenful, with 5,000 bars of history."""
    bars = make_bars(5_000)
    chart.set_bars(KEY, Timeframe.M1, bars)
    last = bars[-1]
    chart.update_bar(Bar(KEY, Timeframe.M1, last.start, last.open, last.high, last.low,
                         last.low, last.volume + 1))
    before = chart.paint_count
    chart.repaint()
    qtbot.waitUntil(lambda: chart.paint_count > before)
    assert chart.candles.painted_bars < 200


def test_sma_matches_hand_computed_values():
    values = [1, 2, 3, 4, 5, 6]
    out = sma(values, 3)
    assert np.isnan(out[:2]).all()
    assert out[2:].tolist() == pytest.approx([2.0, 3.0, 4.0, 5.0])
    assert sma([10, 20], 3).tolist() == pytest.approx([math.nan, math.nan], nan_ok=True)
    with pytest.raises(ValueError):
        sma(values, 0)


def test_ema_is_seeded_by_sma_then_recursive():
    values = [2, 4, 6, 8, 12, 9]
    out = ema(values, 3)  # alpha = 2 / 4 = 0.5
    assert np.isnan(out[:2]).all()
    # seed: mean(2, 4, 6) = 4; then 0.5*8 + 0.5*4 = 6; 0.5*12 + 0.5*6 = 9; 0.5*9 + 0.5*9 = 9
    assert out[2:].tolist() == pytest.approx([4.0, 6.0, 9.0, 9.0])
    out5 = ema([1, 2, 3, 4, 5, 6, 7], 5)  # alpha = 1/3, seed mean(1..5) = 3
    assert out5[4] == pytest.approx(3.0)
    assert out5[5] == pytest.approx(3 + (6 - 3) / 3)  # 4.0
    assert out5[6] == pytest.approx(4 + (7 - 4) / 3)  # 5.0


def test_incremental_indicator_steps_match_full_recompute():
    rng = np.random.default_rng(3)
    closes = 1000 + np.cumsum(rng.normal(size=400))
    full_sma, full_ema = sma(closes, 20), ema(closes, 50)
    running = np.full(400, np.nan)
    for i in range(400):
        running[i] = ema_at(closes, running, i, 50)
        assert sma_at(closes, i, 20) == pytest.approx(full_sma[i], nan_ok=True)
    assert running == pytest.approx(full_ema, nan_ok=True)


def test_overlays_follow_live_updates(chart):
    bars = make_bars(300)
    chart.set_bars(KEY, Timeframe.M1, bars)
    chart.set_overlays(sma=(20,), ema=(50,))
    nxt = Bar(KEY, Timeframe.M1, bars[-1].start + timedelta(minutes=1), Decimal("1600"),
              Decimal("1610"), Decimal("1590"), Decimal("1605"), 10)
    chart.update_bar(nxt)
    closes = [float(b.close) for b in [*bars, nxt]]
    values = chart.overlay_values()
    assert values["SMA 20"][-1] == pytest.approx(sma(closes, 20)[-1])
    assert values["EMA 50"][-1] == pytest.approx(ema(closes, 50)[-1])
    assert np.isnan(values["EMA 50"][48]) and not np.isnan(values["EMA 50"][49])


def test_readout_follows_crosshair_and_reverts_to_last_bar(chart, qtbot):
    bars = make_bars(300)
    chart.set_bars(KEY, Timeframe.M1, bars)
    qtbot.wait(10)
    last = bars[-1]
    assert chart.readout_text().startswith(f"O {last.open:.2f} H {last.high:.2f}")
    target = bars[250]
    vb = chart.price_plot.getViewBox()
    pos = vb.mapViewToScene(QtCore.QPointF(250.2, float(target.close)))
    chart.on_scene_mouse_moved(pos)
    assert chart.readout_text() == (
        f"O {target.open:.2f} H {target.high:.2f} L {target.low:.2f} C {target.close:.2f} "
        f"V {target.volume / 1000:.1f}K"
    )
    chart.on_scene_mouse_moved(QtCore.QPointF(-50, -50))  # off the plots
    assert chart.readout_text().startswith(f"O {last.open:.2f}")


def test_timeframe_button_click_emits(chart, qtbot):
    chart.set_bars(KEY, Timeframe.M1, make_bars(10))
    with qtbot.waitSignal(chart.timeframeChanged, timeout=1000) as blocker:
        qtbot.mouseClick(chart.timeframe_buttons["5m"], QtCore.Qt.MouseButton.LeftButton)
    assert blocker.args == ["5m"]
    assert chart.timeframe_buttons["5m"].isChecked()
    assert not chart.timeframe_buttons["1m"].isChecked()


def test_set_bars_checks_timeframe_button_without_emitting(chart, qtbot):
    with qtbot.assertNotEmitted(chart.timeframeChanged):
        chart.set_bars(KEY, Timeframe.M15, make_bars(10, timeframe=Timeframe.M15))
    assert chart.timeframe_buttons["15m"].isChecked()


def test_markers_land_on_the_bar_containing_their_time(chart):
    bars = make_bars(100)
    chart.set_bars(KEY, Timeframe.M1, bars)
    chart.add_markers([
        (bars[40].start + timedelta(seconds=30), bars[40].low, "buy"),
        (bars[70].start, bars[70].high, "sell"),
        (bars[0].start - timedelta(minutes=5), bars[0].low, "buy"),  # before history: dropped
    ])
    assert chart.marker_points() == [
        (40.0, float(bars[40].low), "buy"),
        (70.0, float(bars[70].high), "sell"),
    ]
    with pytest.raises(ValueError):
        chart.add_markers([(bars[1].start, bars[1].low, "hold")])


def test_time_axis_labels_ist_clock_times(chart):
    chart.set_bars(KEY, Timeframe.M1, make_bars(300))
    axis = chart.volume_plot.getAxis("bottom")
    levels = axis.tickValues(180, 299, 900)
    values = levels[0][1]
    assert values, "no ticks"
    labels = axis.tickStrings(values, 1.0, 1.0)
    assert all(len(s) == 5 and s[2] == ":" for s in labels), labels
    # round clock times: bar 180 is 12:15 IST, so labels fall on the quarter hour or finer
    assert all(int(s[3:]) % 5 == 0 for s in labels), labels


def _change_pct(line: str) -> str:
    return line.rsplit("(", 1)[1].split("%", 1)[0]


def test_header_change_is_the_days_change_like_the_watchlist(chart, qtbot):
    from services.domain import Depth, Tick

    yesterday = [replace_day(b, -1) for b in make_bars(50, seed=3)]
    today = make_bars(30, seed=4)
    chart.set_bars(KEY, Timeframe.M1, [*yesterday, *today])
    last = today[-1]
    # Today's change is measured from yesterday's last close...
    base = yesterday[-1].close
    assert _change_pct(chart.readout_line()) == f"{(last.close - base) * 100 / base:+.2f}"
    # ...and once the feed says what the previous close was, from it: the watchlist's Chg %.
    prev_close = Decimal("1490.00")
    chart.set_previous_close(prev_close)
    assert _change_pct(chart.readout_line()) == f"{(last.close - prev_close) * 100 / prev_close:+.2f}"  # noqa: E501
    tick = Tick(KEY, last.start, last.close, 1, 1, last.open, last.high, last.low, prev_close,
                Depth((), ()))  # fmt: skip
    assert _change_pct(chart.readout_line()) == f"{tick.change_percent:+.2f}"


def replace_day(bar: Bar, days: int) -> Bar:
    from dataclasses import replace

    return replace(bar, start=bar.start + timedelta(days=days))


def test_crosshair_shows_price_and_time_on_the_axes(chart, qtbot):
    bars = make_bars(300)
    chart.set_bars(KEY, Timeframe.M1, bars)
    qtbot.wait(10)
    vb = chart.price_plot.getViewBox()
    chart.on_scene_mouse_moved(vb.mapViewToScene(QtCore.QPointF(250.2, 1501.37)))
    price, time = chart.crosshair_labels()
    assert price == "1501.37"
    assert time == f"{bars[250].start:%a %d %b %H:%M}"


def test_a_live_bar_beyond_the_view_refits_it_and_one_inside_repaints_only_itself(chart, qtbot):
    import dataclasses

    from PySide6.QtWidgets import QApplication

    bars = make_bars(300)
    chart.set_bars(KEY, bars[0].timeframe, bars)
    qtbot.waitUntil(lambda: chart.paint_count > 0)
    for _ in range(5):
        QApplication.processEvents()
    vb = chart.price_plot.getViewBox()
    viewport = chart._graphics.viewport()
    painted: list[int] = []

    class Areas(QtCore.QObject):
        def eventFilter(self, watched, event):  # type: ignore[no-untyped-def]
            if event.type() == QtCore.QEvent.Type.Paint:
                painted.append(sum(r.width() * r.height() for r in event.region()))
            return False

    last = chart.series.bars[-1]
    inside = dataclasses.replace(last, close=(last.high + last.low) / 2, volume=last.volume + 1)
    assert chart.update_bar(inside)  # the first after the view moved: it re-fits, all of it
    for _ in range(5):
        QApplication.processEvents()
    areas = Areas()
    viewport.installEventFilter(areas)
    inside = dataclasses.replace(
        inside, close=inside.close + Decimal("0.05"), volume=last.volume + 2
    )
    assert chart.update_bar(inside)
    qtbot.waitUntil(lambda: bool(painted))
    assert max(painted) < 0.25 * viewport.width() * viewport.height()

    high = vb.viewRange()[1][1]
    top = Decimal(f"{high:.2f}") + 25
    beyond = dataclasses.replace(inside, high=top, close=top)
    assert chart.update_bar(beyond)
    for _ in range(5):
        QApplication.processEvents()
    assert vb.viewRange()[1][1] >= float(top)  # the pane grew to show the new high
    viewport.removeEventFilter(areas)
