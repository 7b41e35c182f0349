"""One window paint per UI frame, however many charts the frame touched (widgets/frame.py)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from tests.test_chart import KEY, make_bars
from widgets.chart import ChartWidget
from widgets.chart.multi import MultiChart
from widgets.frame import FramePresenter


class PaintCounter(QObject):
    """Paint events of ``targets``, and the window paints (UpdateRequests) that got through."""

    def __init__(self, targets: list[QWidget], window: QWidget | None = None) -> None:
        super().__init__()
        self.paints = 0
        self.window_paints = 0
        self._window = window
        for target in [*targets, *([window] if window is not None else [])]:
            target.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        elif event.type() == QEvent.Type.UpdateRequest and watched is self._window:
            self.window_paints += 1
        return False


@pytest.fixture
def four(qtbot: QtBot) -> tuple[QWidget, MultiChart]:
    window = QWidget()
    qtbot.addWidget(window)
    charts = MultiChart(ChartWidget())
    QVBoxLayout(window).addWidget(charts)
    charts.set_count(4)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    bars = make_bars(300)
    for chart in charts.charts:
        chart.set_bars(KEY, bars[0].timeframe, bars)
        chart.set_previous_close(bars[-2].close)
    for _ in range(5):  # the first paints and layouts settle
        QApplication.processEvents()
    return window, charts


def _live(charts: MultiChart, step: int) -> None:
    for chart in charts.charts:
        last = chart.series.bars[-1]
        close = last.close + Decimal(step) / 4
        bar = dataclasses.replace(
            last, close=close, high=max(last.high, close), low=min(last.low, close),
            volume=last.volume + 100, closed=False,
        )  # fmt: skip
        assert chart.update_bar(bar)


def test_a_frame_over_four_charts_paints_each_once_inside_present(four):
    window, charts = four
    viewports = [c._graphics.viewport() for c in charts.charts]
    counter = PaintCounter(viewports, window)  # filters first: sees what the presenter passes
    presenter = FramePresenter(window, lambda: [c.graphics_scene() for c in charts.charts])
    for step in range(1, 6):
        counter.paints = counter.window_paints = 0
        _live(charts, step)
        presenter.present()
        # Painted before present() returned, all four, in one paint of the window.
        assert (counter.paints, counter.window_paints) == (4, 1)
        for _ in range(5):
            QApplication.processEvents()
        # Nothing left for Qt to paint again: the auto-range ran before the paint.
        assert counter.paints == 4


def test_without_the_presenter_qt_painted_the_charts_later(four):
    """The behaviour the presenter replaces: each scene's queued update paints on its own."""
    _window, charts = four
    viewports = [c._graphics.viewport() for c in charts.charts]
    counter = PaintCounter(viewports, _window)
    _live(charts, 1)
    assert counter.paints == 0
    for _ in range(5):
        QApplication.processEvents()
    assert counter.paints >= 4
    assert counter.window_paints >= 4  # one per scene


def test_outside_a_frame_nothing_is_held(four):
    window, charts = four
    FramePresenter(window, lambda: [c.graphics_scene() for c in charts.charts])
    counter = PaintCounter([charts.charts[0]._graphics.viewport()])
    charts.charts[0].show_last_bars(50)  # a zoom: no pump frame involved
    for _ in range(5):
        QApplication.processEvents()
    assert counter.paints >= 1


def test_between_frames_an_update_waits_for_the_next_frames_paint(four):
    """A timer's update (the clock, the risk panel) while frames are coming: one paint."""
    window, charts = four
    counter = PaintCounter([], window)
    presenter = FramePresenter(
        window, lambda: [c.graphics_scene() for c in charts.charts], hold_seconds=30.0
    )
    _live(charts, 1)
    presenter.present()  # frames are coming
    counter.window_paints = 0
    charts.charts[0].show_last_bars(50)  # an update from outside the pump
    for _ in range(5):
        QApplication.processEvents()
    assert counter.window_paints == 0
    assert presenter.held_between_frames >= 1
    _live(charts, 2)
    presenter.present()
    assert counter.window_paints == 1  # the held update and the frame's, in one paint
    for _ in range(5):
        QApplication.processEvents()
    assert counter.window_paints == 1


def test_a_held_update_is_painted_when_no_frame_comes(four, qtbot):
    window, charts = four
    counter = PaintCounter([charts.charts[0]._graphics.viewport()], window)
    presenter = FramePresenter(
        window, lambda: [c.graphics_scene() for c in charts.charts], hold_seconds=1.0
    )
    _live(charts, 1)
    presenter.present()  # the last frame: the feed stops here
    counter.paints = counter.window_paints = 0
    charts.charts[0].show_last_bars(50)
    for _ in range(5):
        QApplication.processEvents()
    assert counter.paints == 0  # held: a frame may still come
    qtbot.waitUntil(lambda: counter.paints >= 1, timeout=5000)  # by the fallback timer
    assert counter.window_paints >= 1
